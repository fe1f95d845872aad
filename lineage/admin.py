"""Lineage in the admin: drawings on version and dataset pages (panels of the registry's
admin), raw events read-only."""

from __future__ import annotations

import logging
import math
from collections import Counter

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from rest_framework.throttling import ScopedRateThrottle

from core.admin import Panel, ReadOnlyAdmin
from core.api import CACHE_UNAVAILABLE
from core.errors import Conflict, NotFound
from lineage import nodes, services
from lineage.models import Edge, EventState, LineageEvent
from lineage.selectors import edges_visible_to, events_visible_to, lineage_svg
from registry.admin import DatasetAdmin, ModelVersionAdmin
from registry.models import Dataset, ModelVersion

logger = logging.getLogger(__name__)


def _version_node(version: ModelVersion) -> str:
    return nodes.model_id(version.model.name, version.version)


def _dataset_base(dataset: Dataset) -> str:
    return nodes.dataset_id(dataset.namespace, dataset.name)


def _drawing(node_of, by_base: bool):
    """A panel's render: the drawing around the object's node, scaled to the page."""

    def render(obj, viewer):
        node = node_of(obj)
        svg = lineage_svg([node], node, by_base=by_base, viewer=viewer)
        return _figure(svg, _full_size_url(obj))

    return render


def _full_size(node_of, by_base: bool):
    """A panel's URLs: the drawing at full size, for who may see the object."""

    def urls(model_admin) -> list:
        def view(request, object_id):
            obj = model_admin.get_object(request, object_id)
            if obj is None or not model_admin.has_view_permission(request, obj):
                raise Http404
            node = node_of(obj)
            return _svg(
                lineage_svg([node], node, by_base=by_base, full_size=True, viewer=request.user)
            )

        meta = model_admin.model._meta
        return [
            path(
                "<path:object_id>/lineage.svg",
                model_admin.admin_site.admin_view(view),
                name=f"{meta.app_label}_{meta.model_name}_lineage_svg",
            )
        ]

    return urls


ModelVersionAdmin.panels.register(
    Panel(
        name="lineage",
        label="Lineage (upstream and downstream)",
        title="Lineage",
        render=_drawing(_version_node, by_base=False),
        css=["lineage/drawing.css"],
        urls=_full_size(_version_node, by_base=False),
    )
)
DatasetAdmin.panels.register(
    Panel(
        name="lineage",
        label="Lineage (all versions)",
        title="Lineage",
        render=_drawing(_dataset_base, by_base=True),
        css=["lineage/drawing.css"],
        urls=_full_size(_dataset_base, by_base=True),
    )
)


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


def _full_size_url(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_lineage_svg", args=[obj.pk])


def _svg(svg: str) -> HttpResponse:
    if not svg.startswith("<svg"):
        raise Http404(svg)
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


# Reasons of events rejected again that the remap action spells out (the rest: the list)
REASONS_SHOWN = 3


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
        "reason_in_short",
        "submitted_by",
    ]
    list_filter = ["state", "kind", "event_type", "job_namespace"]
    search_fields = ["job_name", "job_namespace", "run_id", "event_hash"]
    # newest first, and the dates to drill into are those of the first column
    ordering = ["-received_at", "-id"]
    date_hierarchy = "received_at"
    actions = ["remap"]

    @admin.display(description="reason")
    def reason_in_short(self, obj):
        return Truncator(obj.reason).chars(90)

    # The API's remap limit (LINEAGE_REMAP_RATE): one count per caller for both
    throttle_scope = "lineage-remap"

    def has_remap_permission(self, request):
        """Offered to pipelines (their own rejected events) and holders of the remap
        permission (anyone's), as the service decides."""
        user = request.user
        return user.has_perm(services.REMAP_PERMISSION) or user.has_perm(services.INGEST_PERMISSION)

    @admin.action(description="Map selected rejected events again", permissions=["remap"])
    def remap(self, request, queryset):
        throttle = ScopedRateThrottle()
        try:
            allowed = throttle.allow_request(request, self)
        except CACHE_UNAVAILABLE:
            logger.warning("cache unavailable: the remap limit cannot be counted", exc_info=True)
            messages.error(
                request,
                "The cache that counts the remap limit (CACHE_URL) is unavailable; "
                "nothing was mapped again. Try again later.",
            )
            return
        if not allowed:
            messages.error(
                request,
                "Too many requests to map events again (LINEAGE_REMAP_RATE); try again in "
                f"{math.ceil(throttle.wait() or 1)} seconds.",
            )
            return
        ids = list(queryset.values_list("pk", flat=True)[: services.REMAP_MAX + 1])
        if not ids:  # no id posted names an event this user may see
            messages.warning(request, "None of the selected events is there to map again.")
            return
        if len(ids) > services.REMAP_MAX:
            messages.warning(request, f"Select at most {services.REMAP_MAX} events at a time.")
            return
        try:
            events = services.lineage_events_remap(actor=request.user, ids=ids)
        except (Conflict, NotFound, PermissionDenied) as exc:
            messages.warning(request, str(exc))  # about the selection (the API's `ids`)
            return
        states = Counter(event.state for event in events)
        messages.success(
            request,
            f"{len(events)} event(s) put back to pending: "
            + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
            + " now.",
        )
        again = [event for event in events if event.state == EventState.REJECTED]
        for event in again[:REASONS_SHOWN]:
            messages.warning(
                request,
                f"Event #{event.pk} was rejected again: {Truncator(event.reason).chars(300)}",
            )
        if len(again) > REASONS_SHOWN:
            messages.warning(
                request,
                f"{len(again) - REASONS_SHOWN} more rejected again: filter the list by state "
                "to read why.",
            )

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
