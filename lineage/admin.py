"""Lineage in the admin: drawings on version and dataset pages, raw events read-only."""

from __future__ import annotations

import contextvars

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin
from lineage import nodes
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
    """The registry's version admin, with its lineage drawn."""

    readonly_fields = [*ModelVersionAdmin.readonly_fields, "lineage"]

    class Media:
        css = {"all": ["lineage/drawing.css"]}

    fieldsets = [*ModelVersionAdmin.fieldsets, ("Lineage", {"fields": ["lineage"]})]

    @admin.display(description="Lineage (upstream and downstream)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        node = nodes.model_id(obj.model.name, obj.version)
        return _figure(lineage_svg([node], node, viewer=_viewer.get()), _full_size_url(self, obj))

    def get_urls(self):
        return _full_size_urls(self) + super().get_urls()

    def lineage_svg_view(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        node = nodes.model_id(obj.model.name, obj.version)
        return _svg(lineage_svg([node], node, full_size=True, viewer=request.user))


admin.site.unregister(Dataset)


@admin.register(Dataset)
class LineageDatasetAdmin(ViewerDrawingMixin, DatasetAdmin):
    readonly_fields = [*DatasetAdmin.readonly_fields, "lineage"]

    class Media:
        css = {"all": ["lineage/drawing.css"]}

    @admin.display(description="Lineage (all versions)")
    def lineage(self, obj):
        if obj.pk is None:
            return "-"
        base = nodes.dataset_id(obj.namespace, obj.name)
        return _figure(
            lineage_svg([base], base, by_base=True, viewer=_viewer.get()), _full_size_url(self, obj)
        )

    def get_urls(self):
        return _full_size_urls(self) + super().get_urls()

    def lineage_svg_view(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        base = nodes.dataset_id(obj.namespace, obj.name)
        return _svg(lineage_svg([base], base, by_base=True, full_size=True, viewer=request.user))


def _figure(svg: str, full_size_url: str):
    """The drawing, scaled to the page, and a link to it at full size."""
    if not svg.startswith("<svg"):
        return svg  # a sentence saying why there is no drawing
    link = format_html(
        '<p class="lineage-full-size"><a href="{}" target="_blank" rel="noopener">'
        "Open the drawing at full size</a></p>",
        full_size_url,
    )
    # every label in the drawing is escaped by lineage.drawing
    return mark_safe(f'<div class="lineage-figure">{svg}</div>{link}')  # noqa: S308


def _full_size_url(model_admin, obj) -> str:
    meta = model_admin.model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_lineage_svg", args=[obj.pk])


def _full_size_urls(model_admin) -> list:
    meta = model_admin.model._meta
    return [
        path(
            "<path:object_id>/lineage.svg",
            model_admin.admin_site.admin_view(model_admin.lineage_svg_view),
            name=f"{meta.app_label}_{meta.model_name}_lineage_svg",
        )
    ]


def _svg(svg: str) -> HttpResponse:
    if not svg.startswith("<svg"):
        raise Http404(svg)
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


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
