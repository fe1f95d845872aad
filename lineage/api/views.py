"""Lineage endpoints: OpenLineage ingestion (Marquez-compatible) and graph queries.

Thin: a request's body is read by core.api's parser, its query by the serializers below;
reads go through lineage.selectors, writes through lineage.services, and Marquez's response
shapes are lineage.marquez's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.api import AnyTypeJSONParser
from core.errors import error_body
from core.moments import in_utc
from lineage import drawing, graph, marquez, nodes, selectors, services
from lineage.models import EventState
from registry.models import Stage


def _error(status_code: int, message: str, field: str | None = None, code: str = "invalid"):
    return Response(error_body(message, code, field), status=status_code)


def _document(request) -> Any:
    """The request's JSON document. DRF hands an empty body to no parser, so it is refused
    here, as the parser refuses it: 400, not a 422 listing every missing field."""
    if request.stream is None:
        raise ParseError("Request body is empty; a JSON document is required.")
    return request.data


def _not_found(ref) -> Response:
    return _error(404, f"Node {ref.id} does not exist.", field="nodeId", code="not_found")


def _refusal(exc: Exception) -> tuple[int, list[dict]]:
    """(status, errors in the common shape) of an event refused at accept time."""
    if isinstance(exc, services.ModelRefused):
        return 403, [{"field": exc.field, "message": str(exc), "code": "permission_denied"}]
    return 422, [{**e, "code": "invalid"} for e in exc.errors]


class CanReadLineage(BasePermission):
    message = "Reading lineage needs the 'lineage.view_edge' permission (every role has it)."

    def has_permission(self, request, view):
        return bool(
            request.user
            and request.user.is_authenticated
            and request.user.has_perm("lineage.view_edge")
        )


# --- query parameters ------------------------------------------------------------------------


class NodeQuery(serializers.Serializer):
    """A node — `nodeId`, or `type` with namespace, name (version, field) — and a depth.
    Validated data: `node` (a nodes.NodeRef) and `depth`."""

    nodeId = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    type = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    namespace = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    runId = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    version = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    field = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    depth = serializers.CharField(required=False)

    def __init__(self, *args, default_depth: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_depth = default_depth

    def validate_depth(self, value: str) -> int:
        try:
            depth = int(value)
        except ValueError as exc:
            raise ValidationError("Must be a whole number.") from exc
        if not 1 <= depth <= settings.LINEAGE_MAX_DEPTH:
            raise ValidationError(f"Must be between 1 and {settings.LINEAGE_MAX_DEPTH}.")
        return depth

    def validate(self, data: dict) -> dict:
        return {"node": _node(data), "depth": data.get("depth", self.default_depth)}


def _node(data: dict) -> nodes.NodeRef:
    if data.get("nodeId"):
        try:
            return selectors.dataset_named_with_hash(nodes.parse(data["nodeId"]))
        except ValueError as exc:
            raise ValidationError({"nodeId": str(exc)}) from exc
    kind = data.get("type")
    if kind not in nodes.KINDS:
        raise ValidationError({"nodeId": "Give nodeId, or type with namespace and name."})
    if kind == "run":
        field = "name" if data.get("name") else "runId"
        run_id = data.get(field, "")
        if not nodes.is_run_id(run_id):
            raise ValidationError({field: "type=run needs runId (or name): the run id, a UUID."})
        return nodes.NodeRef(kind="run", name=run_id)
    if kind == "model":
        version = data.get("version", "")
        if not version.isdigit() or not data.get("name"):
            raise ValidationError({"version": "type=model needs name and a version number."})
        return nodes.NodeRef(kind="model", name=data["name"], version=version)
    if not data.get("namespace") or not data.get("name"):
        raise ValidationError({"namespace": f"type={kind} needs namespace and name."})
    if kind == "datasetField" and not data.get("field"):
        raise ValidationError({"field": "type=datasetField needs field."})
    return nodes.NodeRef(
        kind=kind,
        namespace=data["namespace"],
        name=data["name"],
        version=data.get("version") if kind == "dataset" else None,
        field=data.get("field"),
    )


class WalkQuery(NodeQuery):
    format = serializers.ChoiceField(
        choices=["json", "graphml", "svg"],
        required=False,
        default="json",
        error_messages={"invalid_choice": "Must be json, graphml or svg."},
    )

    def validate(self, data: dict) -> dict:
        return {**super().validate(data), "format": data.get("format", "json")}


class EventsQuery(serializers.Serializer):
    before = serializers.CharField(required=False, allow_blank=True)
    after = serializers.CharField(required=False, allow_blank=True)
    state = serializers.ChoiceField(
        choices=EventState.values,
        required=False,
        allow_blank=True,
        error_messages={"invalid_choice": f"Must be one of {', '.join(EventState.values)}."},
    )
    mine = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        allow_blank=True,
        error_messages={"invalid_choice": "Must be true or false."},
    )
    sortDirection = serializers.ChoiceField(
        choices=["asc", "desc"],
        required=False,
        default="desc",
        error_messages={"invalid_choice": "Must be asc or desc."},
    )
    limit = serializers.IntegerField(
        required=False,
        default=100,
        min_value=1,
        max_value=1000,
        error_messages={"invalid": "Must be a whole number from 1 to 1000."},
    )
    offset = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=10**9,
        error_messages={"invalid": "Must be a whole number from 0 to 10⁹."},
    )

    @staticmethod
    def _moment(value: str):
        try:
            moment = parse_datetime(value)
        except ValueError:  # well-formed but impossible: 2026-02-30, hour 25
            moment = None
        moment = moment and in_utc(moment)  # None beyond the calendar in UTC
        if moment is None:
            raise ValidationError("Must be an ISO-8601 date-time that exists.")
        return moment

    def validate_before(self, value: str):
        return self._moment(value) if value else None

    def validate_after(self, value: str):
        return self._moment(value) if value else None

    def validate(self, data: dict) -> dict:
        return {
            "before": data.get("before"),
            "after": data.get("after"),
            "state": data.get("state") or None,
            "mine": data.get("mine") == "true",
            "ascending": data.get("sortDirection", "desc") == "asc",
            "limit": data["limit"],
            "offset": data["offset"],
        }


def _query(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.query_params.dict(), **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- schema ----------------------------------------------------------------------------------

ERRORS = inline_serializer(
    "LineageErrors", fields={"errors": serializers.ListField(child=serializers.DictField())}
)
GRAPH = inline_serializer(
    "MarquezGraph", fields={"graph": serializers.ListField(child=serializers.DictField())}
)
NODE_PARAMS = [
    OpenApiParameter(
        "nodeId",
        str,
        description="e.g. dataset:{namespace}:{name}[#version], "
        "job:{namespace}:{name}, run:{uuid}, model:{name}:{version}, "
        "datasetField:{namespace}:{name}:{field}",
    ),
    OpenApiParameter(
        "type",
        str,
        enum=list(nodes.KINDS),
        description="With namespace and name: an unambiguous alternative to nodeId",
    ),
    OpenApiParameter("namespace", str),
    OpenApiParameter("name", str),
    OpenApiParameter("version", str, description="Dataset version, or model version number"),
    OpenApiParameter("field", str, description="Field name (type=datasetField)"),
    OpenApiParameter("depth", int, description="Hops to follow (default 10)"),
]


def _too_large(exc: selectors.TooLarge, hint: str) -> ValidationError:
    return ValidationError({"depth": f"The result is too large: {exc}. {hint}"})


class OpenLineageParser(AnyTypeJSONParser):
    """What OpenLineage clients post. NaN and ±Infinity are read as the strings Java clients
    (Jackson) send for them, "NaN", "Infinity" and "-Infinity": the Python client writes them
    bare (e.g. a data-quality facet's statistics of an empty column), which is not JSON, and
    refusing them would cost the whole event."""

    nonfinite_as_strings = True


# --- views -----------------------------------------------------------------------------------


class LineageView(APIView):
    """POST: ingest one OpenLineage event. GET: the Marquez-shaped graph around a node."""

    parser_classes = [OpenLineageParser]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "POST" else [CanReadLineage()]

    @extend_schema(
        operation_id="lineage_ingest",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            201: None,
            400: ERRORS,
            401: ERRORS,
            403: ERRORS,
            413: ERRORS,
            415: ERRORS,
            422: ERRORS,
            503: ERRORS,
        },
        description="Accepts a RunEvent, DatasetEvent or JobEvent exactly as OpenLineage "
        "clients send it (optionally gzip). 201 with an empty body, also for a duplicate.",
    )
    def post(self, request):
        payload = _document(request)
        if isinstance(payload, list):
            return _error(
                400,
                "A JSON array was sent; post one event here, or a list to /api/v1/lineage/batch.",
            )
        result = services.lineage_events_accept(actor=request.user, payloads=[payload])
        if result.refused:
            code, errors = _refusal(result.refused[0])
            return Response({"errors": errors}, status=code)
        return HttpResponse(status=201)

    @extend_schema(
        operation_id="lineage_graph",
        parameters=NODE_PARAMS,
        responses={200: GRAPH, 400: ERRORS, 404: ERRORS},
        description="Marquez's graph shape: nodes (DATASET, JOB, MODEL, DATASET_FIELD) with "
        "inEdges and outEdges, within `depth` job hops in both directions.",
    )
    def get(self, request):
        query = _query(NodeQuery, request, default_depth=20)
        ref, depth = query["node"], query["depth"]
        if ref.kind == "datasetField":  # Marquez's column lineage: field-level edges
            given = "depth" in request.query_params  # else twice the job hops, at most 50
            return self._columns(request, ref, depth if given else min(depth * 2, 50))
        if ref.kind == "model" and not selectors.model_visible(request.user, ref.name):
            return _not_found(ref)
        try:
            found = selectors.marquez_lineage(
                ref, depth=depth, user=request.user, max_nodes=settings.LINEAGE_MAX_NODES
            )
        except LookupError:
            return _not_found(ref)
        except selectors.TooLarge as exc:
            raise _too_large(exc, "Use a smaller depth.") from exc
        datasets = selectors.datasets_by_node(marquez.dataset_nodes(found))
        return Response({"graph": marquez.graph(found, marquez.dataset_data(datasets))})

    def _columns(self, request, ref, depth: int) -> Response:
        try:
            sub = selectors.subgraph(
                ref,
                user=request.user,
                directions=["up", "down"],
                depth=depth,
                max_nodes=settings.LINEAGE_MAX_NODES,
            )
        except selectors.TooLarge as exc:
            raise _too_large(exc, "Use a smaller depth (the cap is LINEAGE_MAX_NODES).") from exc
        if sub is None:
            return _not_found(ref)
        run_jobs = selectors.run_jobs(sub.nodes)
        collapsed = {nodes.base_of(n) for n in sub.nodes if not n.startswith("run:")}
        datasets = selectors.datasets_by_node(marquez.dataset_nodes(collapsed))
        return Response(
            {"graph": marquez.collapsed_graph(sub, ref, run_jobs, marquez.dataset_data(datasets))}
        )


class BatchView(APIView):
    """POST a JSON array of events; each is stored atomically on its own."""

    parser_classes = [OpenLineageParser]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="lineage_ingest_batch",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: inline_serializer(
                "BatchResult",
                fields={
                    "status": serializers.ChoiceField(choices=["success", "partial_success"]),
                    "summary": serializers.DictField(),
                    "failed_events": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ERRORS,
            401: ERRORS,
            403: ERRORS,
            413: ERRORS,
            415: ERRORS,
        },
    )
    def post(self, request):
        payload = _document(request)
        if not isinstance(payload, list):
            return _error(400, "The batch endpoint takes a JSON array of events.")
        if len(payload) > settings.LINEAGE_MAX_BATCH_EVENTS:
            return _error(
                413,
                f"A batch holds at most {settings.LINEAGE_MAX_BATCH_EVENTS} events.",
                code="too_large",
            )
        result = services.lineage_events_accept(actor=request.user, payloads=payload)
        failed = []
        for index, exc in sorted(result.refused.items()):
            code, errors = _refusal(exc)
            failed.append(
                {
                    "index": index,
                    "status": code,
                    "reason": "; ".join(
                        f"{e['field']}: {e['message']}" if e["field"] else e["message"]
                        for e in errors
                    ),
                    "errors": errors,
                    "retriable": False,
                }
            )
        return Response(
            {
                "status": "success" if not failed else "partial_success",
                "summary": {
                    "received": len(payload),
                    "successful": len(payload) - len(failed),
                    "failed": len(failed),
                    "retriable": 0,
                    "non_retriable": len(failed),
                },
                "failed_events": failed,
            }
        )


class EventsView(APIView):
    """The raw events as received, newest first by default (Marquez's listing)."""

    permission_classes = [CanReadLineage]

    @extend_schema(
        operation_id="lineage_events",
        parameters=[
            OpenApiParameter("before", OpenApiTypes.DATETIME),
            OpenApiParameter("after", OpenApiTypes.DATETIME),
            OpenApiParameter("sortDirection", str, enum=["asc", "desc"]),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
            OpenApiParameter("state", str, enum=EventState.values),
            OpenApiParameter("mine", OpenApiTypes.BOOL, description="Only events you posted"),
        ],
        description="Raw events as received (Marquez's listing), those naming a model you may "
        "not see left out; `mapping[i]` is the id of `events[i]`, its state in the graph "
        "(pending, mapped, rejected) and the reason of a rejection.",
        responses={
            200: inline_serializer(
                "LineageEvents",
                fields={
                    "events": serializers.ListField(child=serializers.DictField()),
                    "mapping": serializers.ListField(child=serializers.DictField()),
                    "totalCount": serializers.IntegerField(),
                },
            ),
            400: ERRORS,
        },
    )
    def get(self, request):
        total, page = selectors.events_page(request.user, **_query(EventsQuery, request))
        return Response(
            {
                "events": [payload for _, payload, _, _ in page],
                "mapping": [
                    {"id": pk, "state": state, "reason": reason} for pk, _, state, reason in page
                ],
                "totalCount": total,
            }
        )


class RemapBody(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=services.REMAP_MAX,
    )


class CanRemapLineage(CanReadLineage):
    message = (
        "Mapping events again needs read access to lineage (the 'lineage.view_edge' "
        "permission), as well as posting them or 'lineage.change_lineageevent'."
    )


class RemapView(APIView):
    """Put rejected events back to pending, to be mapped again (at most LINEAGE_REMAP_RATE
    requests per caller)."""

    permission_classes = [CanRemapLineage]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "lineage-remap"

    @extend_schema(
        operation_id="lineage_events_remap",
        request=RemapBody,
        description="Map rejected events again once what refused them has changed (a grant, a "
        "limit): each goes back to pending and is mapped as when it was posted. Your own "
        "events (with the pipeline permission), or any with `lineage.change_lineageevent`. All "
        "or nothing, checked in this order: 404 an id unknown to you, 403 someone else's "
        "event, 409 an event that is not rejected. `mapping[i]` is the state of the i-th "
        "event (by id) after the request; where mapping runs in the background, `pending` "
        "until it has. 429 past LINEAGE_REMAP_RATE requests per caller (30 a minute unless "
        "the deployment sets another; the admin action's count too), with Retry-After in "
        "seconds.",
        parameters=[
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                response=[429, 503],
                description="Seconds to wait before asking again.",
            )
        ],
        responses={
            200: inline_serializer(
                "LineageRemapped",
                fields={
                    "remapped": serializers.IntegerField(),
                    "mapping": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ERRORS,
            403: ERRORS,
            404: ERRORS,
            409: ERRORS,
            429: ERRORS,
            503: ERRORS,
        },
    )
    def post(self, request):
        body = RemapBody(data=_document(request))
        body.is_valid(raise_exception=True)
        events = services.lineage_events_remap(actor=request.user, ids=body.validated_data["ids"])
        return Response(
            {
                "remapped": len(events),
                "mapping": [{"id": e.pk, "state": e.state, "reason": e.reason} for e in events],
            }
        )


class WalkView(APIView):
    """Upstream or downstream of a node, as node-link JSON, GraphML or SVG."""

    permission_classes = [CanReadLineage]
    direction = "up"

    @extend_schema(
        parameters=[*NODE_PARAMS, OpenApiParameter("format", str, enum=["json", "graphml", "svg"])],
        responses={200: OpenApiTypes.OBJECT, 400: ERRORS, 404: ERRORS},
    )
    def get(self, request):
        query = _query(WalkQuery, request)
        ref = query["node"]
        try:
            sub = selectors.subgraph(
                ref,
                user=request.user,
                directions=[self.direction],
                depth=query["depth"],
                max_nodes=settings.LINEAGE_MAX_NODES,
            )
        except selectors.TooLarge as exc:
            raise _too_large(exc, "Use a smaller depth (the cap is LINEAGE_MAX_NODES).") from exc
        if sub is None:
            return _not_found(ref)
        if query["format"] == "graphml":
            return HttpResponse(graph.graphml(sub), content_type="application/graphml+xml")
        if query["format"] == "svg":
            svg = drawing.draw(sub, focus=ref.id, run_jobs=selectors.run_jobs(sub.nodes))
            return HttpResponse(svg, content_type="image/svg+xml")
        return Response(graph.node_link(sub))


class UpstreamView(WalkView):
    direction = "up"


class DownstreamView(WalkView):
    direction = "down"


STAGE_ORDER = {Stage.PRODUCTION: 0, Stage.STAGING: 1, Stage.DEVELOPMENT: 2, Stage.ARCHIVED: 3}


class ImpactView(APIView):
    """Every model version downstream of a dataset (any version, or a given one)."""

    permission_classes = [CanReadLineage]

    @extend_schema(
        parameters=NODE_PARAMS[:5],
        responses={
            200: inline_serializer(
                "Impact",
                fields={
                    "node": serializers.CharField(),
                    "models": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ERRORS,
            404: ERRORS,
        },
    )
    def get(self, request):
        ref = _query(NodeQuery, request)["node"]
        if ref.kind != "dataset":
            raise ValidationError(
                {"nodeId": "Impact is asked of a dataset: dataset:{ns}:{name}[#version]."}
            )
        try:
            start, by_base, _ = selectors.resolve_start(ref)
        except LookupError:
            return _not_found(ref)
        model_nodes = selectors.downstream_models(start, by_base=by_base)
        rows = selectors.impacted_versions(request.user, model_nodes)
        rows.sort(key=lambda row: (STAGE_ORDER.get(row[2], 9), row[0], row[1]))
        return Response(
            {
                "node": ref.id,
                "models": [
                    {
                        "node": nodes.model_id(name, version),
                        "model": name,
                        "version": version,
                        "stage": stage,
                        "risk_tier": risk_tier,
                    }
                    for name, version, stage, risk_tier in rows
                ],
            }
        )
