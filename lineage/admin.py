"""Lineage in the admin: drawings on version and dataset pages, raw events read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin
from lineage import nodes, services
from lineage.models import Edge, LineageEvent
from lineage.selectors import lineage_svg
from registry.admin import DatasetAdmin, ModelVersionAdmin
from registry.models import Dataset, ModelVersion

admin.site.unregister(ModelVersion)


@admin.register(ModelVersion)
class LineageModelVersionAdmin(ModelVersionAdmin):
    """The registry's version admin, with its lineage drawn and training runs linked."""

    readonly_fields = [*ModelVersionAdmin.readonly_fields, "lineage"]
    fieldsets = [*ModelVersionAdmin.fieldsets, ("Lineage", {"fields": ["lineage"]})]

    @admin.display(description="Lineage (upstream and downstream)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        node = nodes.model_id(obj.model.name, obj.version)
        return mark_safe(lineage_svg([node], node))  # noqa: S308 - every label is escaped

    def save_form(self, request, form, change):
        version = super().save_form(request, form, change)
        services.model_version_link_run(actor=request.user, version=version)
        return version


admin.site.unregister(Dataset)


@admin.register(Dataset)
class LineageDatasetAdmin(DatasetAdmin):
    readonly_fields = [*DatasetAdmin.readonly_fields, "lineage"]

    @admin.display(description="Lineage (all versions)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        base = nodes.dataset_id(obj.namespace, obj.name)
        return mark_safe(lineage_svg([base], base, by_base=True))  # noqa: S308


@admin.register(LineageEvent)
class LineageEventAdmin(ReadOnlyAdmin):
    """Raw events as received: read-only, never deleted."""

    list_display = [
        "received_at",
        "kind",
        "event_type",
        "job_namespace",
        "job_name",
        "run_id",
        "submitted_by",
    ]
    list_filter = ["kind", "event_type", "job_namespace"]
    search_fields = ["job_name", "job_namespace", "run_id", "event_hash"]
    date_hierarchy = "event_time"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Edge)
class EdgeAdmin(LineageEventAdmin):
    list_display = ["source", "relation", "target", "created_at"]
    list_filter = ["relation"]
    search_fields = ["source", "target"]
    date_hierarchy = None
