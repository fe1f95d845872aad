"""Lineage ingestion in two steps.

Accept: `lineage_events_accept` checks what an event alone can tell (the contract, the limits,
the caller's role, a `modelgov_model` facet naming a model the caller may not use), stores the
raw event durably as `pending` and returns; the API answers 201.

Map: after commit, `lineage_events_map` claims pending events (oldest event time first,
skipping events another mapper holds), maps them into the registry and the graph in one
transaction, and marks each `mapped` or `rejected` with its reason. Inputs resolve by event
time, not arrival: the graph built from a set of events does not depend on their order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_deferred, audit_record, audit_record_many
from core.canonical import canonical_json
from core.db import insert_new
from core.errors import Conflict
from lineage import graph, nodes, selectors
from lineage.models import (
    VERSION_RELATIONS,
    Edge,
    EventState,
    LineageEvent,
    ModelMention,
    Relation,
)
from lineage.openlineage import DatasetRef, EventInvalid, Limits, ParsedEvent, parse_event
from registry import services as registry
from registry.models import ModelVersion, RegisteredModel, Run, RunState
from registry.permissions import ADD_MODEL, can_change_model, can_view_model

INGEST_PERMISSION = "lineage.add_lineageevent"
EXTERNAL_VERSION = "external"  # a dataset state no tracked run produced


class CycleRefused(EventInvalid):
    """The event would close a cycle in the graph over versions; nothing from it is kept."""

    def __init__(self, path: list[str]):
        super().__init__(
            [
                {
                    "field": None,
                    "message": "This event would close a cycle in the lineage graph over versions: "
                    + " → ".join(path),
                }
            ]
        )
        self.path = path


class ModelRefused(PermissionDenied):
    """A `modelgov_model` facet names a model the poster may not register versions of. The
    message is the same whether the model is hidden from the poster, visible but not theirs
    to change, or does not exist and the poster may not register models: a refusal never
    confirms that a model the poster cannot see exists."""

    def __init__(self, name: str, field_path: str):
        self.field = field_path
        super().__init__(
            f"You may not register versions of a model named '{name}': register it first, or "
            "ask its owner for change permission."
        )


def limits() -> Limits:
    return Limits(
        max_datasets=settings.LINEAGE_MAX_DATASETS,
        max_facet_depth=settings.LINEAGE_MAX_FACET_DEPTH,
    )


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def event_hash(payload: Any) -> str:
    """Identity of an event for de-duplication: canonical JSON with nulls removed, so the same
    event re-sent by a client (sorted or unsorted keys, escaped or raw UTF-8) matches."""
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def _canonical(payload: Any) -> str:
    try:
        text = canonical_json(payload)
    except ValueError as exc:  # a number beyond a float (1e400 reads as infinity)
        raise EventInvalid(
            [{"field": _infinite_at(payload), "message": "must be a finite number"}]
        ) from exc
    if "null" in text:  # else no value is null: nothing to strip (the usual case)
        text = canonical_json(_strip_nulls(payload))
    return text


def _infinite_at(payload: Any) -> str | None:
    """The dotted path of the first non-finite number in the payload."""
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or None
        if isinstance(value, dict):
            stack += [(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    return None


# --- accept ----------------------------------------------------------------------------------


@dataclass
class Accepted:
    """The outcome of one accept call: the events stored now (each with its index in the
    request), how many were already stored, and the refusals by index."""

    stored: list[tuple[int, LineageEvent]] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    refused: dict[int, Exception] = field(default_factory=dict)


def _check_size(payload: dict, text: str) -> None:
    cap = settings.LINEAGE_MAX_EVENT_BYTES
    size = len(text.encode("utf-8"))
    if size <= cap:
        return
    parts: dict[str, Any] = {
        key: value for key, value in payload.items() if key not in ("run", "job")
    }
    for key in ("run", "job"):
        if isinstance(payload.get(key), dict):
            parts.update({f"{key}.{k}": v for k, v in payload[key].items()})
    largest = max(parts, key=lambda key: len(canonical_json(parts[key])), default=None)
    raise EventInvalid(
        [
            {
                "field": largest,
                "message": f"The event is {size} bytes; at most {cap} bytes "
                f"(LINEAGE_MAX_EVENT_BYTES) are accepted. '{largest}' is its largest part.",
            }
        ]
    )


def model_refusal(actor: AbstractBaseUser, name: str, field_path: str) -> ModelRefused | None:
    """Why `actor` may not register a version of the model `name` (None when it may)."""
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        return None if actor.has_perm(ADD_MODEL) else ModelRefused(name, field_path)
    if not can_view_model(actor, model) or not can_change_model(actor, model):
        return ModelRefused(name, field_path)
    return None


def _model_facets(parsed: ParsedEvent) -> list[tuple[str, str]]:
    """(model name, field path) of each `modelgov_model` facet of the event's outputs."""
    return [
        (ref.model["name"], f"outputs.{index}.facets.modelgov_model.name")
        for index, ref in enumerate(parsed.outputs)
        if ref.model is not None
    ]


def lineage_events_accept(*, actor: AbstractBaseUser, payloads: Sequence[Any]) -> Accepted:
    """Check each event on its own and store those that pass as `pending` (one statement; an
    event already stored is a duplicate, a success that writes nothing). Mapping follows after
    commit. Refusals (EventInvalid, ModelRefused) are returned by index, not raised."""
    if not actor.has_perm(INGEST_PERMISSION):
        raise PermissionDenied(
            f"Posting lineage needs the pipeline role or the '{INGEST_PERMISSION}' permission."
        )
    result = Accepted()
    rows: list[tuple[int, LineageEvent, list[str]]] = []
    seen: dict[str, int] = {}
    for index, payload in enumerate(payloads):
        try:
            parsed = parse_event(payload, limits())
            text = _canonical(payload)
            _check_size(payload, text)
            names = _model_facets(parsed)
            for name, path in names:
                refusal = model_refusal(actor, name, path)
                if refusal is not None:
                    raise refusal
        except (EventInvalid, ModelRefused) as exc:
            result.refused[index] = exc
            continue
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest in seen:
            result.duplicates.append(index)
            continue
        seen[digest] = index
        event = LineageEvent(
            event_hash=digest,
            kind=parsed.kind,
            event_type=parsed.event_type or "",
            event_time=parsed.event_time,
            run_id=parsed.run_id,
            job_namespace=parsed.job_namespace or "",
            job_name=parsed.job_name or "",
            producer=parsed.producer[:1000],
            payload=payload,
            submitted_by=actor,
            state=EventState.PENDING,
        )
        rows.append((index, event, sorted({name for name, _ in names})))
    if rows:
        _store(actor, rows, result)
    if result.stored:
        schedule_mapping()
    return result


@transaction.atomic
def _store(actor: AbstractBaseUser, rows: list, result: Accepted) -> None:
    # INSERT … ON CONFLICT (event_hash) DO NOTHING RETURNING: only the events this statement
    # stored come back; the others were stored before (or by a concurrent post): duplicates.
    returned = insert_new(
        [event for _, event, _ in rows],
        fields=(
            "event_hash",
            "kind",
            "event_type",
            "event_time",
            "received_at",
            "run_id",
            "job_namespace",
            "job_name",
            "producer",
            "payload",
            "submitted_by",
            "state",
            "reason",
        ),
        unique_fields=("event_hash",),
        returning=("id", "event_hash"),
    )
    ids = {digest: pk for pk, digest in returned}
    mentions = []
    for index, event, names in rows:
        pk = ids.get(event.event_hash)
        if pk is None:
            result.duplicates.append(index)
            continue
        event.pk = pk
        event._state.adding = False
        result.stored.append((index, event))
        mentions += [ModelMention(event_id=pk, model_name=name) for name in names]
    if mentions:
        ModelMention.objects.bulk_create(mentions)
    audit_record_many(
        actor=actor,
        records=[
            {
                "action": "lineage.event.accepted",
                "target": event,
                "changes": {
                    "kind": event.kind,
                    "event_type": event.event_type,
                    "event_time": event.event_time.isoformat(),
                    "state": [None, EventState.PENDING],
                },
            }
            for _, event in result.stored
        ],
    )


def schedule_mapping() -> None:
    """Map what was just accepted: inline with the embedded default (no broker), so the graph
    shows it at once; otherwise a Celery task enqueued when the accepting transaction commits
    (a beat task sweeps up anything left)."""
    from lineage import tasks

    if settings.LINEAGE_MAP_INLINE:
        lineage_events_map_all()
    else:
        tasks.map_lineage_events.delay_on_commit()


# --- map -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapResult:
    mapped: int
    rejected: int

    @property
    def claimed(self) -> int:
        return self.mapped + self.rejected


REFUSALS = (EventInvalid, ValidationError, PermissionDenied, Conflict)


def lineage_events_map(*, limit: int | None = None) -> MapResult:
    """Claim up to `limit` pending events, oldest event time first (`FOR UPDATE SKIP LOCKED`:
    concurrent mappers take disjoint batches), and map them in one transaction. Each event is
    marked mapped, or rejected with its reason (e.g. a cycle); both are audited. A mapper
    that dies mid-batch rolls back and leaves the batch pending for the next one."""
    limit = limit or settings.LINEAGE_MAP_BATCH
    with transaction.atomic(), audit_deferred():
        batch = list(
            LineageEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=EventState.PENDING)
            .select_related("submitted_by")
            .order_by("event_time", "id")[:limit]
        )
        if not batch:
            return MapResult(0, 0)
        now = timezone.now()
        records = []
        for event in batch:
            actor = event.submitted_by
            try:
                with transaction.atomic():
                    summary = _map_event(actor, event)
            except REFUSALS as exc:
                event.state, event.reason = EventState.REJECTED, _reason(exc)
                summary = {"reason": event.reason}
            else:
                event.state, event.reason = EventState.MAPPED, ""
            event.mapped_at = now
            records.append(
                {
                    "actor": actor,
                    "action": f"lineage.event.{event.state}",
                    "target": event,
                    "changes": {"state": [EventState.PENDING, event.state], **summary},
                }
            )
        LineageEvent.objects.bulk_update(batch, ["state", "reason", "mapped_at"])
        for record in records:
            audit_record(**record)
    rejected = sum(1 for event in batch if event.state == EventState.REJECTED)
    return MapResult(len(batch) - rejected, rejected)


def lineage_events_map_all(*, max_batches: int = 1000) -> MapResult:
    """Map pending events batch after batch until none is left (or `max_batches` ran)."""
    mapped = rejected = 0
    for _ in range(max_batches):
        result = lineage_events_map()
        mapped, rejected = mapped + result.mapped, rejected + result.rejected
        if not result.claimed:
            break
    return MapResult(mapped, rejected)


def _reason(exc: Exception) -> str:
    if isinstance(exc, EventInvalid):
        return "; ".join(
            f"{e['field']}: {e['message']}" if e.get("field") else e["message"] for e in exc.errors
        )
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(getattr(exc, "detail", exc))


def _map_event(actor: AbstractBaseUser, event: LineageEvent) -> dict[str, Any]:
    """Fold one stored event into the registry and the graph; its summary for the audit."""
    parsed = parse_event(event.payload, limits())
    mapper = _Mapper(actor, parsed)
    summary: dict[str, Any] = {"kind": parsed.kind, "event_type": parsed.event_type}
    if parsed.kind == "RunEvent":
        mapper.run_event(summary)
    elif parsed.kind == "DatasetEvent":
        datasets = mapper.datasets([parsed.dataset])
        if parsed.dataset.version:
            registry.dataset_versions_ensure(
                actor=actor,
                wanted=[
                    (
                        datasets[parsed.dataset.key],
                        parsed.dataset.version,
                        parsed.dataset.fields,
                        None,
                    )
                ],
            )
    else:  # JobEvent: declared, design-time lineage; no run, so no versioned edges
        registry.job_ensure(actor=actor, namespace=parsed.job_namespace, name=parsed.job_name)
        mapper.datasets(parsed.inputs + parsed.outputs)
    summary["edges"] = mapper.added
    if mapper.repointed:
        summary["repointed"] = mapper.repointed
    return summary


class _Mapper:
    """One event's mapping: registry entities through the registry's services, edges here."""

    def __init__(self, actor: AbstractBaseUser, parsed: ParsedEvent):
        self.actor, self.parsed = actor, parsed
        self.added = 0
        self.repointed = 0

    def datasets(self, refs: list[DatasetRef]) -> dict:
        return registry.datasets_sync(
            actor=self.actor, schemas=[(ref.key, ref.fields) for ref in refs]
        )

    def run_event(self, summary: dict) -> None:
        actor, parsed = self.actor, self.parsed
        at = parsed.event_time
        job = registry.job_ensure(actor=actor, namespace=parsed.job_namespace, name=parsed.job_name)
        parent = None
        if parsed.parent_run_id is not None:
            parent = Run.objects.filter(run_id=parsed.parent_run_id).first()
            if parent is None:
                parent_job = registry.job_ensure(
                    actor=actor, namespace=parsed.parent_job[0], name=parsed.parent_job[1]
                )
                parent = registry.run_record_event(
                    actor=actor,
                    job=parent_job,
                    run_id=parsed.parent_run_id,
                    state=RunState.OTHER,
                    event_time=at,
                )
        run = registry.run_record_event(
            actor=actor,
            job=job,
            run_id=parsed.run_id,
            state=parsed.event_type or RunState.OTHER,
            event_time=at,
            facets=parsed.run_facets,
            parent=parent,
            external_id=parsed.run_id_original or "",
        )
        run_node = nodes.run_id(run.run_id)
        edges: set[tuple[str, str, str]] = set()
        if parent is not None:
            edges.add((nodes.run_id(parent.run_id), run_node, Relation.PARENT))
        datasets = self.datasets(parsed.inputs + parsed.outputs)
        wanted = [
            (datasets[ref.key], ref.version or f"run:{run.run_id}", ref.fields, run)
            for ref in parsed.outputs
        ] + [
            (datasets[ref.key], ref.version, ref.fields, None)
            for ref in parsed.inputs
            if ref.version
        ]
        registry.dataset_versions_ensure(actor=actor, wanted=wanted)
        # Outputs first: their write time may re-point readers of other runs.
        outputs = [
            (
                run_node,
                nodes.dataset_id(ref.namespace, ref.name, ref.version or f"run:{run.run_id}"),
            )
            for ref in parsed.outputs
        ]
        written = self._timed_edges(outputs, Relation.OUTPUT, at)
        input_nodes = []
        for ref in parsed.inputs:
            if ref.version:
                node = nodes.dataset_id(ref.namespace, ref.name, ref.version)
                edges.add((node, run_node, Relation.INPUT))
            else:
                node = self._read(datasets[ref.key], ref, run_node, at)
            input_nodes.append(node)
        for ref in parsed.outputs:
            for in_ns, in_name, in_field, out_field in ref.column_lineage:
                edges.add(
                    (
                        nodes.field_id(in_ns, in_name, in_field),
                        nodes.field_id(ref.namespace, ref.name, out_field),
                        Relation.COLUMN,
                    )
                )
            if ref.model is not None:
                model_version = _register_model(actor, ref.model, run)
                model_node = nodes.model_id(model_version.model.name, model_version.version)
                edges.add((run_node, model_node, Relation.OUTPUT))
                for node in input_nodes:
                    edges.add((node, model_node, Relation.TRAINED_ON))
                summary.setdefault("models", []).append(model_node)
        self.added += add_edges(edges)
        for base, version_node in written:
            self.repointed += _repoint_readers(actor, base, version_node, at, run_node)

    def _timed_edges(
        self, pairs: list[tuple[str, str]], relation: str, at: datetime
    ) -> list[tuple[str, str]]:
        """Add output edges stamped with the write time, or move an edge's time earlier (the
        earliest event of the run that names the output is when it was written): the
        (dataset base, version node) pairs whose write time is new or earlier."""
        if not pairs:
            return []
        source = pairs[0][0]
        targets = [t for _, t in pairs]
        stored = dict(
            Edge.objects.filter(source=source, target__in=targets, relation=relation).values_list(
                "target", "at"
            )
        )
        new = {(source, t, relation) for t in targets if t not in stored}
        self.added += add_edges(new, at=at)
        earlier = [t for t in targets if t in stored and (stored[t] is None or at < stored[t])]
        if earlier:
            Edge.objects.filter(source=source, target__in=earlier, relation=relation).update(at=at)
        return [(nodes.base_of(t), t) for t in targets if t not in stored or t in earlier]

    def _read(self, dataset, ref: DatasetRef, run_node: str, at: datetime) -> str:
        """The version node an unversioned input reads: the latest version of the dataset
        written at or before `at` by another run, else `external`; the input edge is stamped
        with the read time (the earliest event of the run that names the input)."""
        base = nodes.dataset_id(ref.namespace, ref.name)
        stored = (
            Edge.objects.filter(
                relation=Relation.INPUT, target=run_node, source_base=base, at__isnull=False
            )
            .values_list("pk", "source", "at")
            .first()
        )
        if stored is not None and stored[2] <= at:
            return stored[1]
        node = version_at(base, at, run_node)
        if node is None:
            registry.dataset_versions_ensure(
                actor=self.actor, wanted=[(dataset, EXTERNAL_VERSION, None, None)]
            )
            node = nodes.dataset_id(ref.namespace, ref.name, EXTERNAL_VERSION)
        if stored is None:
            self.added += add_edges({(node, run_node, Relation.INPUT)}, at=at)
            return node
        pk, old, _ = stored
        if old != node:
            _move_input(self.actor, pk, old, node, run_node)
            self.repointed += 1
        Edge.objects.filter(pk=pk).update(at=at)
        return node


def version_at(base: str, at: datetime, reader: str) -> str | None:
    """The node of the latest version of the dataset `base` written at or before `at` by a run
    other than `reader` (ties: the greatest node id), or None."""
    return (
        Edge.objects.filter(relation=Relation.OUTPUT, target_base=base, at__lte=at)
        .exclude(source=reader)
        .order_by("-at", "-target")
        .values_list("target", flat=True)
        .first()
    )


def _repoint_readers(
    actor: AbstractBaseUser, base: str, version_node: str, written_at: datetime, writer: str
) -> int:
    """After a version of `base` was written at `written_at` (an event that may have arrived
    after its readers'), re-point every time-resolved read of `base` at or after that time to
    the version it now resolves to. Each re-point is audited."""
    moved = 0
    readers = Edge.objects.filter(
        relation=Relation.INPUT, source_base=base, at__isnull=False, at__gte=written_at
    ).exclude(target=writer)
    for pk, source, target, read_at in readers.values_list("pk", "source", "target", "at"):
        node = version_at(base, read_at, target)
        if node is not None and node != source:
            moved += _move_input(actor, pk, source, node, target)
    return moved


def _move_input(actor: AbstractBaseUser, pk: int, old: str, new: str, run_node: str) -> int:
    """Re-point one input edge (and the trained-on edges of the run's models) from version
    `old` to version `new`, unless that would close a cycle or the edge exists already."""
    models = list(
        Edge.objects.filter(
            source=run_node, relation=Relation.OUTPUT, target__startswith="model:"
        ).values_list("target", flat=True)
    )
    wanted = [(new, run_node)] + [(new, m) for m in models]
    reach = {n: r & {new} for n, r in selectors.reaches([run_node, *models]).items()}
    if graph.find_cycle(wanted, reach) is not None:
        return 0
    if Edge.objects.filter(source=new, target=run_node, relation=Relation.INPUT).exists():
        return 0
    Edge.objects.filter(pk=pk).update(source=new)
    Edge.objects.filter(source=old, target__in=models, relation=Relation.TRAINED_ON).exclude(
        target__in=Edge.objects.filter(source=new, relation=Relation.TRAINED_ON).values("target")
    ).update(source=new)
    audit_record(
        actor=actor,
        action="lineage.edge.repointed",
        object_type="lineage.edge",
        object_id=str(pk),
        object_repr=f"{old} → {run_node}",
        changes={"source": [old, new], "target": run_node},
    )
    return 1


def _register_model(actor: AbstractBaseUser, facet: dict, run: Run) -> ModelVersion:
    name = facet["name"]
    refusal = model_refusal(actor, name, "modelgov_model.name")
    if refusal is not None:
        raise refusal
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        model = registry.registered_model_create(actor=actor, name=name)
    sha = facet.get("sha256", "")
    uri = facet.get("artifactUri", "")
    existing = model.versions.filter(
        training_run=run, artifact_sha256=sha, artifact_uri=uri
    ).first()
    if existing is not None:
        return existing
    return registry.model_version_create(
        actor=actor,
        model=model,
        artifact_uri=uri,
        artifact_sha256=sha,
        framework=facet.get("framework", ""),
        metrics=facet.get("metrics", {}),
        training_run=run,
    )


def model_version_link_run(*, actor: AbstractBaseUser, version: ModelVersion) -> None:
    """Edges for a version registered through the API with a training run: the run produced
    it, and it was trained on the run's inputs."""
    if version.training_run is None:
        return
    run_node = nodes.run_id(version.training_run.run_id)
    model_node = nodes.model_id(version.model.name, version.version)
    edges = {(run_node, model_node, Relation.OUTPUT)}
    for source in Edge.objects.filter(target=run_node, relation=Relation.INPUT).values_list(
        "source", flat=True
    ):
        edges.add((source, model_node, Relation.TRAINED_ON))
    add_edges(edges)


def _model_of(node: str) -> str:
    return node.split(":", 2)[1] if node.startswith("model:") else ""


def add_edges(edges: set[tuple[str, str, str]], *, at: datetime | None = None) -> int:
    """Insert edges (stored ones skipped), refusing with CycleRefused if the graph over
    versions would cycle; returns how many were given."""
    if not edges:
        return 0
    versioned = [(s, t) for s, t, r in edges if r in VERSION_RELATIONS]
    if versioned:
        # A new cycle runs new edge, stored path, new edge, …: stored stretches lead from the
        # target of a new edge to the source of one, so only those reaches are needed.
        sources = {s for s, _ in versioned}
        reach = {
            node: reached & sources
            for node, reached in selectors.reaches(sorted({t for _, t in versioned})).items()
        }
        path = graph.find_cycle(versioned, reach)
        if path is not None:
            raise CycleRefused(path)
    Edge.objects.bulk_create(
        [
            Edge(
                source=s,
                target=t,
                relation=r,
                source_base=nodes.base_of(s),
                target_base=nodes.base_of(t),
                model_name=_model_of(s) or _model_of(t),
                at=at,
            )
            for s, t, r in sorted(edges)
        ],
        ignore_conflicts=True,
    )
    return len(edges)


__all__ = [
    "CycleRefused",
    "EventInvalid",
    "MapResult",
    "ModelRefused",
    "lineage_events_accept",
    "lineage_events_map",
    "lineage_events_map_all",
    "model_version_link_run",
]
