"""Lineage ingestion: one OpenLineage event → registry entities, edges, and the raw record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, OperationalError, connection, transaction

from audit.services import audit_deferred, audit_record
from core.canonical import canonical_json
from core.db import insert_new
from lineage import graph, nodes, selectors
from lineage.models import VERSION_RELATIONS, Edge, LineageEvent, Relation
from lineage.openlineage import DatasetRef, EventInvalid, Limits, ParsedEvent, parse_event
from registry import services as registry
from registry.models import ModelVersion, RegisteredModel, Run, RunState

INGEST_PERMISSION = "lineage.add_lineageevent"
RETRIES = 3
EXTERNAL_VERSION = "external"  # a dataset state no tracked run produced


@dataclass
class IngestResult:
    event: LineageEvent
    duplicate: bool


class CycleRefused(EventInvalid):
    """The event would close a cycle over versions; nothing from it is stored."""

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
    text = canonical_json(payload)
    if "null" in text:  # else no value is null: nothing to strip (the usual case)
        text = canonical_json(_strip_nulls(payload))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lineage_event_ingest(*, actor: AbstractBaseUser, payload: Any) -> IngestResult:
    """Validate and store one event; a duplicate is a success that writes nothing."""
    if not (actor.has_perm(INGEST_PERMISSION)):
        raise PermissionDenied(
            f"Posting lineage needs the pipeline role or the '{INGEST_PERMISSION}' permission."
        )
    parsed = parse_event(payload, limits())
    digest = event_hash(payload)
    for attempt in range(1, RETRIES + 1):
        try:
            return _ingest(actor, payload, parsed, digest)
        except IntegrityError:
            # A concurrent post of the same event won the unique event_hash: a duplicate.
            existing = LineageEvent.objects.filter(event_hash=digest).first()
            if existing is None:
                raise
            return IngestResult(existing, duplicate=True)
        except OperationalError as exc:
            # Concurrent events about the same datasets may deadlock; the loser retries.
            deadlock = getattr(exc.__cause__, "sqlstate", None) in ("40P01", "40001")
            if not deadlock or attempt == RETRIES:
                raise
    raise AssertionError("unreachable")


EVENT_FIELDS = (
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
)


@transaction.atomic
def _ingest(
    actor: AbstractBaseUser, payload: Any, parsed: ParsedEvent, digest: str
) -> IngestResult:
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
    )
    # The raw event first, skipped if its hash is stored: a duplicate (also one a concurrent
    # post committed while this one waited on the unique index) writes nothing.
    inserted = insert_new([event], fields=EVENT_FIELDS, unique_fields=("event_hash",))
    if not inserted:
        return IngestResult(LineageEvent.objects.get(event_hash=digest), duplicate=True)
    event.pk = inserted[0][0]
    event._state.adding = False
    event._state.db = connection.alias
    # Every audit event of the ingestion goes in with one statement at the end.
    with audit_deferred():
        edges: set[tuple[str, str, str]] = set()
        summary: dict[str, Any] = {"kind": parsed.kind, "event_type": parsed.event_type}
        if parsed.kind == "RunEvent":
            _map_run_event(actor, parsed, edges, summary)
        elif parsed.kind == "DatasetEvent":
            datasets = _map_datasets(actor, [parsed.dataset])
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
            _map_datasets(actor, parsed.inputs + parsed.outputs)
        _add_edges(edges)
        summary["edges"] = len(edges)
        audit_record(actor=actor, action="lineage.event.ingested", target=event, changes=summary)
    return IngestResult(event, duplicate=False)


def _map_datasets(actor: AbstractBaseUser, refs: list[DatasetRef]) -> dict:
    """The datasets of these references, catalogued on first sight, features synced to the
    schemas given: (namespace, name) → Dataset."""
    return registry.datasets_sync(actor=actor, schemas=[(ref.key, ref.fields) for ref in refs])


def _map_run_event(actor, parsed: ParsedEvent, edges: set, summary: dict) -> None:
    job = registry.job_ensure(actor=actor, namespace=parsed.job_namespace, name=parsed.job_name)
    parent = None
    if parsed.parent_run_id is not None:
        parent_job = registry.job_ensure(
            actor=actor, namespace=parsed.parent_job[0], name=parsed.parent_job[1]
        )
        parent = Run.objects.filter(
            run_id=parsed.parent_run_id
        ).first() or registry.run_record_event(
            actor=actor,
            job=parent_job,
            run_id=parsed.parent_run_id,
            state=RunState.OTHER,
            event_time=parsed.event_time,
        )
    run = registry.run_record_event(
        actor=actor,
        job=job,
        run_id=parsed.run_id,
        state=parsed.event_type or RunState.OTHER,
        event_time=parsed.event_time,
        facets=parsed.run_facets,
        parent=parent,
        external_id=parsed.run_id_original or "",
    )
    run_node = nodes.run_id(run.run_id)
    if parent is not None:
        edges.add((nodes.run_id(parent.run_id), run_node, Relation.PARENT))
    datasets = _map_datasets(actor, parsed.inputs + parsed.outputs)
    # Unversioned inputs read the latest version not written by this same run (a run that
    # reads and writes one dataset reads version n and writes n+1: never a cycle), or the
    # "external" state when there is none.
    versions = registry.dataset_versions_ensure(
        actor=actor,
        wanted=[(datasets[ref.key], ref.version, ref.fields, None) for ref in parsed.inputs]
        + [
            (datasets[ref.key], ref.version or f"run:{run.run_id}", ref.fields, run)
            for ref in parsed.outputs
        ],
        not_produced_by=run,
        fallback=EXTERNAL_VERSION,
    )
    input_versions = [version.version for version, _ in versions[: len(parsed.inputs)]]
    input_nodes = []
    for ref, version in zip(parsed.inputs, input_versions, strict=True):
        node = nodes.dataset_id(ref.namespace, ref.name, version)
        input_nodes.append(node)
        edges.add((node, run_node, Relation.INPUT))
    for ref in parsed.outputs:
        version = ref.version or f"run:{run.run_id}"
        edges.add((run_node, nodes.dataset_id(ref.namespace, ref.name, version), Relation.OUTPUT))
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


def _register_model(actor, facet: dict, run: Run) -> ModelVersion:
    name = facet["name"]
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
    _add_edges(edges)


def _add_edges(edges: set[tuple[str, str, str]]) -> None:
    """Insert edges, refusing (and rolling back everything) if the version graph would cycle."""
    if not edges:
        return
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
    insert_new(
        [
            Edge(
                source=s,
                target=t,
                relation=r,
                source_base=nodes.base_of(s),
                target_base=nodes.base_of(t),
            )
            for s, t, r in sorted(edges)
        ],
        fields=("source", "target", "relation", "source_base", "target_base", "created_at"),
        unique_fields=("source", "target", "relation"),
        returning=(),
    )
