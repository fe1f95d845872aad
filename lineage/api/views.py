"""Lineage endpoints: OpenLineage ingestion (Marquez-compatible) and graph queries."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import PayloadTooLarge, parse_json_body
from lineage import drawing, graph, nodes, selectors, services
from lineage.models import EventState
from registry.models import Dataset, ModelVersion, Run, Stage

# What OpenLineage clients send; no Content-Type at all is read as JSON too.
EVENT_CONTENT_TYPES = ("application/json", "text/plain", "application/octet-stream")


def read_events_body(request) -> Any:
    """The request's JSON document, through the API's one parser (gzip-aware)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type and content_type.split(";")[0].strip().lower() not in EVENT_CONTENT_TYPES:
        raise UnsupportedMediaType(
            content_type, detail=f"Content-Type {content_type!r} is not supported; send JSON."
        )
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge() from exc
    return parse_json_body(raw, content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""))


def _error(status_code: int, message: str, field: str | None = None, code: str = "invalid"):
    return Response(
        {"errors": [{"field": field, "message": message, "code": code}]}, status=status_code
    )


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


def _node_from_query(params) -> nodes.NodeRef:
    if params.get("nodeId"):
        try:
            return nodes.parse(params["nodeId"])
        except ValueError as exc:
            raise ValidationError({"nodeId": str(exc)}) from exc
    kind = params.get("type")
    if kind not in nodes.KINDS:
        raise ValidationError({"nodeId": "Give nodeId, or type with namespace and name."})
    if kind == "run":
        return nodes.NodeRef(kind="run", name=params.get("name") or params.get("runId", ""))
    if kind == "model":
        version = params.get("version", "")
        if not version.isdigit() or not params.get("name"):
            raise ValidationError({"version": "type=model needs name and a version number."})
        return nodes.NodeRef(kind="model", name=params["name"], version=version)
    if not params.get("namespace") or not params.get("name"):
        raise ValidationError({"namespace": f"type={kind} needs namespace and name."})
    if kind == "datasetField" and not params.get("field"):
        raise ValidationError({"field": "type=datasetField needs field."})
    return nodes.NodeRef(
        kind=kind,
        namespace=params["namespace"],
        name=params["name"],
        version=params.get("version") if kind == "dataset" else None,
        field=params.get("field"),
    )


def _depth(params, default: int = 10) -> int:
    raw = params.get("depth", default)
    try:
        depth = int(raw)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"depth": "Must be a whole number."}) from exc
    if not 1 <= depth <= settings.LINEAGE_MAX_DEPTH:
        raise ValidationError({"depth": f"Must be between 1 and {settings.LINEAGE_MAX_DEPTH}."})
    return depth


def _subgraph(request, *, direction: str, default_depth: int = 10):
    ref = _node_from_query(request.query_params)
    depth = _depth(request.query_params, default_depth)
    try:
        start, by_base, relations = selectors.resolve_start(ref)
    except LookupError:
        return ref, None
    if ref.kind == "model" and not _model_visible(request.user, ref):
        return ref, None
    directions = ["up", "down"] if direction == "both" else [direction]
    rows: set = set()
    try:
        for way in directions:
            rows |= set(
                selectors.walk(
                    start,
                    direction=way,
                    depth=depth,
                    relations=relations,
                    max_nodes=settings.LINEAGE_MAX_NODES,
                    by_base=by_base,
                )
            )
    except selectors.TooLarge as exc:
        raise ValidationError(
            {
                "depth": f"The result is too large: {exc}. Use a smaller depth "
                f"(the cap is LINEAGE_MAX_NODES)."
            }
        ) from exc
    rows = selectors.hide_invisible_models(sorted(rows), request.user)
    start_nodes = start if not by_base else [ref.id]
    return ref, graph.digraph(rows, nodes=[] if by_base else start_nodes)


def _model_visible(user, ref) -> bool:
    from registry.selectors import models_visible_to

    return models_visible_to(user).filter(name=ref.name).exists()


class LineageView(APIView):
    """POST: ingest one OpenLineage event. GET: the Marquez-shaped graph around a node."""

    parser_classes: list = []

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
        payload = read_events_body(request)
        if isinstance(payload, list):
            return _error(
                400,
                "A JSON array was sent; post one event here, or a list to /api/v1/lineage/batch.",
                code="invalid",
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
        ref = _node_from_query(request.query_params)
        depth = _depth(request.query_params, 20)
        if ref.kind == "datasetField":  # Marquez's column lineage: field-level edges
            ref, sub = _subgraph(request, direction="both", default_depth=min(depth * 2, 50))
            if sub is None:
                return _not_found(ref)
            return Response({"graph": marquez_graph(sub, ref)})
        if ref.kind == "model" and not _model_visible(request.user, ref):
            return _not_found(ref)
        try:
            found = selectors.marquez_lineage(
                ref, depth=depth, user=request.user, max_nodes=settings.LINEAGE_MAX_NODES
            )
        except LookupError:
            return _not_found(ref)
        except selectors.TooLarge as exc:
            raise ValidationError(
                {"depth": f"The result is too large: {exc}. Use a smaller depth."}
            ) from exc
        return Response({"graph": _marquez_nodes(found)})


def _not_found(ref) -> Response:
    return _error(404, f"Node {ref.id} does not exist.", field="nodeId", code="not_found")


NODE_TYPES = {
    "dataset": "DATASET",
    "job": "JOB",
    "model": "MODEL",
    "run": "RUN",
    "datasetField": "DATASET_FIELD",
}


def _marquez_nodes(found: dict[str, dict[str, set]]) -> list[dict]:
    """Marquez's node shape, nodes sorted by id, edges sorted."""
    datasets = _dataset_data([n for n in found if n.startswith("dataset:")])
    out = []
    for node_id in sorted(found):
        links = found[node_id]
        data = datasets.get(node_id) or _plain_data(node_id)
        if node_id.startswith("job:"):
            data = _job_data(node_id, links)
        out.append(
            {
                "id": node_id,
                "type": NODE_TYPES[node_id.split(":", 1)[0]],
                "data": data,
                "inEdges": [{"origin": o, "destination": node_id} for o in sorted(links["in"])],
                "outEdges": [{"origin": node_id, "destination": d} for d in sorted(links["out"])],
            }
        )
    return out


def _job_data(node_id: str, links: dict[str, set]) -> dict:
    ref = nodes.parse(node_id)

    def ids(found):
        return [
            {"namespace": r.namespace, "name": r.name}
            for r in (nodes.parse(n) for n in sorted(found) if n.startswith("dataset:"))
        ]

    return {
        "id": {"namespace": ref.namespace, "name": ref.name},
        "type": "BATCH",
        "name": ref.name,
        "simpleName": ref.name.rsplit(".", 1)[-1],
        "namespace": ref.namespace,
        "inputs": ids(links["in"]),
        "outputs": ids(links["out"]),
    }


def marquez_graph(sub, ref) -> list[dict]:
    """Collapse versions into datasets and runs into jobs, in Marquez's node shape."""
    run_ids = [n.split(":", 1)[1] for n in sub.nodes if n.startswith("run:")]
    job_of = {
        str(run_id): nodes.job_id(ns, name)
        for run_id, ns, name in Run.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "job__namespace", "job__name"
        )
    }

    def collapse(node: str) -> str:
        if node.startswith("run:"):
            return job_of.get(node.split(":", 1)[1], node)
        return nodes.base_of(node)

    collapsed: dict[str, dict[str, set]] = {}
    for node in sub.nodes:
        collapsed.setdefault(collapse(node), {"in": set(), "out": set()})
    if ref.kind in ("dataset", "job", "datasetField"):
        collapsed.setdefault(nodes.base_of(ref.id), {"in": set(), "out": set()})
    for source, target in sub.edges:
        a, b = collapse(source), collapse(target)
        if a != b:
            collapsed[a]["out"].add(b)
            collapsed[b]["in"].add(a)
    datasets = _dataset_data([n for n in collapsed if n.startswith("dataset:")])
    out = []
    for node_id in sorted(collapsed):
        kind = node_id.split(":", 1)[0]
        out.append(
            {
                "id": node_id,
                "type": {
                    "dataset": "DATASET",
                    "job": "JOB",
                    "model": "MODEL",
                    "run": "RUN",
                    "datasetField": "DATASET_FIELD",
                }[kind],
                "data": datasets.get(node_id) or _plain_data(node_id),
                "inEdges": [
                    {"origin": o, "destination": node_id} for o in sorted(collapsed[node_id]["in"])
                ],
                "outEdges": [
                    {"origin": node_id, "destination": d} for d in sorted(collapsed[node_id]["out"])
                ],
            }
        )
    return out


def _plain_data(node_id: str) -> dict:
    try:
        ref = nodes.parse(node_id)
    except ValueError:
        return {"id": node_id}
    data = {"namespace": ref.namespace, "name": ref.name}
    if ref.kind == "model":
        data["version"] = int(ref.version)
    if ref.kind == "datasetField":
        data = {"namespace": ref.namespace, "dataset": ref.name, "field": ref.field}
    return data


def _dataset_data(ids: list[str]) -> dict[str, dict]:
    wanted = {}
    for node_id in ids:
        ref = nodes.parse(node_id)
        wanted[(ref.namespace, ref.name)] = node_id
    if not wanted:
        return {}
    names = {name for _, name in wanted}
    out = {}
    for dataset in Dataset.objects.filter(name__in=names).prefetch_related("features"):
        node_id = wanted.get((dataset.namespace, dataset.name))
        if node_id is None:
            continue
        out[node_id] = {
            "id": {"namespace": dataset.namespace, "name": dataset.name},
            "type": "DB_TABLE",
            "name": dataset.name,
            "physicalName": dataset.name,
            "namespace": dataset.namespace,
            "description": dataset.description or None,
            "createdAt": dataset.created_at.isoformat(),
            "fields": [
                {
                    "name": f.name,
                    "type": f.dtype or None,
                    "tags": [],
                    "description": f.description or None,
                }
                for f in dataset.features.all()
            ],
            "tags": ["PII"] if dataset.contains_pii else [],
        }
    return out


class BatchView(APIView):
    """POST a JSON array of events; each is stored atomically on its own."""

    parser_classes: list = []
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
        payload = read_events_body(request)
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
        "not see left out; `mapping[i]` is the state of `events[i]` in the graph (pending, "
        "mapped, rejected) and the reason of a rejection.",
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
        params = request.query_params
        qs = selectors.events_visible_to(request.user)
        for key, lookup in (("before", "event_time__lt"), ("after", "event_time__gt")):
            if params.get(key):
                try:
                    moment = parse_datetime(params[key])
                except ValueError:  # well-formed but impossible: 2026-02-30, hour 25
                    moment = None
                if moment is None:
                    raise ValidationError({key: "Must be an ISO-8601 date-time that exists."})
                qs = qs.filter(**{lookup: moment})
        if params.get("state"):
            if params["state"] not in EventState.values:
                raise ValidationError({"state": f"Must be one of {', '.join(EventState.values)}."})
            qs = qs.filter(state=params["state"])
        if params.get("mine"):
            if params["mine"] not in ("true", "false"):
                raise ValidationError({"mine": "Must be true or false."})
            if params["mine"] == "true":
                qs = qs.filter(submitted_by=request.user)
        direction = params.get("sortDirection", "desc")
        if direction not in ("asc", "desc"):
            raise ValidationError({"sortDirection": "Must be asc or desc."})
        try:
            limit = int(params.get("limit", 100))
            offset = int(params.get("offset", 0))
        except ValueError as exc:
            raise ValidationError({"limit": "limit and offset are whole numbers."}) from exc
        if not 1 <= limit <= 1000 or not 0 <= offset <= 10**9:
            raise ValidationError({"limit": "limit is 1–1000 and offset 0–10⁹."})
        order = ["event_time", "id"] if direction == "asc" else ["-event_time", "-id"]
        total = qs.count()
        page = list(
            qs.order_by(*order).values_list("payload", "state", "reason")[offset : offset + limit]
        )
        return Response(
            {
                "events": [payload for payload, _, _ in page],
                "mapping": [{"state": state, "reason": reason} for _, state, reason in page],
                "totalCount": total,
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
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "graphml", "svg"):
            raise ValidationError({"format": "Must be json, graphml or svg."})
        ref, sub = _subgraph(request, direction=self.direction)
        if sub is None:
            return _error(404, f"Node {ref.id} does not exist.", field="nodeId", code="not_found")
        if fmt == "graphml":
            return HttpResponse(graph.graphml(sub), content_type="application/graphml+xml")
        if fmt == "svg":
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
        from registry.selectors import models_visible_to

        ref = _node_from_query(request.query_params)
        if ref.kind != "dataset":
            raise ValidationError(
                {"nodeId": "Impact is asked of a dataset: dataset:{ns}:{name}[#version]."}
            )
        try:
            start, by_base, _ = selectors.resolve_start(ref)
        except LookupError:
            return _error(404, f"Node {ref.id} does not exist.", field="nodeId", code="not_found")
        model_nodes = selectors.downstream_models(start, by_base=by_base)
        wanted = {}
        for node in model_nodes:
            parsed = nodes.parse(node)
            wanted.setdefault(parsed.name, set()).add(int(parsed.version))
        # Plain rows, not model instances: a widely used dataset feeds thousands of versions.
        versions = ModelVersion.objects.filter(
            model__in=models_visible_to(request.user).filter(name__in=list(wanted))
        ).values_list("model__name", "version", "stage", "model__risk_tier")
        rows = [row for row in versions if row[1] in wanted.get(row[0], ())]
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
