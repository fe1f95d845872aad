"""Lineage in the admin: drawings on version and dataset pages, raw events read-only."""

from __future__ import annotations

import contextvars

from django.contrib import admin
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin
from lineage import nodes, services
from lineage.models import Edge, LineageEvent
from lineage.selectors import edges_visible_to, events_visible_to, lineage_svg
from registry.admin import DatasetAdmin, ModelVersionAdmin
from registry.models import Dataset, ModelVersion

# Who is looking at the page being rendered: drawings leave out the models they may not see.
_viewer: contextvars.ContextVar = contextvars.ContextVar("lineage_admin_viewer", default=None)


class ViewerDrawingMixin:
    """Renders the change page while the viewer is known to the drawing (the admin renders
    its read-only fields lazily, after the view returned)."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        token = _viewer.set(request.user)
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _viewer.reset(token)


admin.site.unregister(ModelVersion)


@admin.register(ModelVersion)
class LineageModelVersionAdmin(ViewerDrawingMixin, ModelVersionAdmin):
    """The registry's version admin, with its lineage drawn and training runs linked."""

    readonly_fields = [*ModelVersionAdmin.readonly_fields, "lineage"]
    fieldsets = [*ModelVersionAdmin.fieldsets, ("Lineage", {"fields": ["lineage"]})]

    @admin.display(description="Lineage (upstream and downstream)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        node = nodes.model_id(obj.model.name, obj.version)
        drawing = lineage_svg([node], node, viewer=_viewer.get())
        return mark_safe(drawing)  # noqa: S308 - every label is escaped

    def save_form(self, request, form, change):
        version = super().save_form(request, form, change)
        services.model_version_link_run(actor=request.user, version=version)
        return version


admin.site.unregister(Dataset)


@admin.register(Dataset)
class LineageDatasetAdmin(ViewerDrawingMixin, DatasetAdmin):
    readonly_fields = [*DatasetAdmin.readonly_fields, "lineage"]

    @admin.display(description="Lineage (all versions)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        base = nodes.dataset_id(obj.namespace, obj.name)
        drawing = lineage_svg([base], base, by_base=True, viewer=_viewer.get())
        return mark_safe(drawing)  # noqa: S308 - every label is escaped


@admin.register(LineageEvent)
class LineageEventAdmin(ReadOnlyAdmin):
    """Raw events as received: read-only, never deleted; those naming a model the viewer may
    not see are neither listed nor shown."""

    list_display = [
        "received_at",
        "kind",
        "event_type",
        "job_namespace",
        "job_name",
        "run_id",
        "state",
        "submitted_by",
    ]
    list_filter = ["state", "kind", "event_type", "job_namespace"]
    search_fields = ["job_name", "job_namespace", "run_id", "event_hash"]
    date_hierarchy = "event_time"

    def get_queryset(self, request):
        return events_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Edge)
class EdgeAdmin(ReadOnlyAdmin):
    """Edges read-only; those touching a model version the viewer may not see are hidden."""

    list_display = ["source", "relation", "target", "at", "created_at"]
    list_filter = ["relation"]
    search_fields = ["source", "target"]

    def get_queryset(self, request):
        return edges_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
