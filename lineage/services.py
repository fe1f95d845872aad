"""Lineage ingestion in two steps.

Accept: `lineage_events_accept` checks what an event alone can tell (the contract, the limits,
the caller's role, a `modelgov_model` facet naming a model the caller may not use), stores the
raw event durably as `pending` with one INSERT and returns; the API answers 201. The stored
row records who posted what and when; the audit records each event as it is mapped (one
event per poster and batch) or rejected.

Map: after commit, `lineage_events_map` claims pending events (oldest event time first,
skipping events another mapper holds), maps them into the registry and the graph in one
transaction, and marks each `mapped` or `rejected` with its reason. Inputs resolve by event
time, not arrival: the graph built from a set of events does not depend on their order.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db import Error as DbError
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from audit.services import audit_record, audit_record_many
from core.api import NonFinite
from core.canonical import canonical_json
from core.db import insert_new, plan_each_statement
from core.errors import Conflict, Forbidden, Invalid, NotFound
from lineage import graph, nodes, selectors
from lineage.models import (
    VERSION_RELATIONS,
    Edge,
    EventState,
    LineageEvent,
    ModelMention,
    Relation,
)
from lineage.openlineage import (
    FACET_KEYS,
    INTERPRETED_FACETS,
    STORED,
    DatasetRef,
    EventInvalid,
    Limits,
    ParsedEvent,
    parse_event,
)
from registry import ingest
from registry import services as registry
from registry.models import ModelVersion, RegisteredModel, Run, RunState
from registry.permissions import ADD_MODEL, can_change_model, can_view_model

logger = logging.getLogger(__name__)

INGEST_PERMISSION = "lineage.add_lineageevent"
# Putting anyone's rejected events back to pending (a poster may its own); no role has it.
REMAP_PERMISSION = "lineage.change_lineageevent"
REMAP_MAX = 1000  # events per request
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
            [{"field": _first_at(payload, _infinite), "message": "must be a finite number"}]
        ) from exc
    # PostgreSQL's text and jsonb cannot hold the NUL character: refused here, by field, so
    # that it does not fail the INSERT of every event posted with it. (JSON writes it as an
    # escape: the quick test also matches an escaped backslash before "u0000", so the walk
    # decides.)
    if "\\u0000" in text:
        found = _first_at(payload, _holds_nul)
        if found is not None:
            raise EventInvalid(
                [{"field": found, "message": "must not contain the NUL character (\\u0000)"}]
            )
    if "NaN" in text or "Infinity" in text:  # the quick test; the walk decides
        found = _first_at(payload, _misplaced_nonfinite)
        if found is not None:
            raise EventInvalid(
                [
                    {
                        "field": found,
                        "message": "NaN and Infinity are accepted only inside facets modelgov "
                        "stores without reading; here a string or a finite number is expected",
                    }
                ]
            )
    if "null" in text:  # else no value is null: nothing to strip (the usual case)
        text = canonical_json(_strip_nulls(payload))
    return text


def _infinite(value: Any, _parts: tuple) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _holds_nul(value: Any, _parts: tuple) -> bool:
    return isinstance(value, str) and "\x00" in value


def _misplaced_nonfinite(value: Any, parts: tuple) -> bool:
    """A bare NaN or ±Infinity (read as a NonFinite string) outside a facet modelgov stores
    without reading: one in an event's own fields, or in a facet it reads (a version, a
    schema, a model's metrics), would be taken for text."""
    if not isinstance(value, NonFinite):
        return False
    facet = next((i for i, part in enumerate(parts[:-1]) if part in FACET_KEYS), None)
    return facet is None or parts[facet + 1] in INTERPRETED_FACETS


def _first_at(payload: Any, found: Callable[[Any, tuple], bool]) -> str | None:
    """The dotted path of the first value (or object key) in the payload for which
    `found(value, path parts)` holds; None for the payload itself."""
    stack: list[tuple[Any, tuple]] = [(payload, ())]
    while stack:
        value, parts = stack.pop()
        if found(value, parts):
            return ".".join(map(str, parts)) or None
        if isinstance(value, dict):
            for key, item in value.items():
                here = (*parts, key)
                if found(key, here):
                    return ".".join(map(str, here))
                stack.append((item, here))
        elif isinstance(value, list):
            stack += [(item, (*parts, index)) for index, item in enumerate(value)]
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
    return None if _may_register(actor, model, name) else ModelRefused(name, field_path)


def _may_register(actor: AbstractBaseUser, model: RegisteredModel | None, name: str) -> bool:
    """Whether `actor` may register a version of `model` (None: a new model, created; never
    under a reserved name, refused as a hidden model's is, so the two cannot be told apart)."""
    if model is None:
        return actor.has_perm(ADD_MODEL) and name not in settings.MODEL_NAMES_RESERVED
    return can_view_model(actor, model) and can_change_model(actor, model)


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
            f"Posting lineage needs the pipeline or data-scientist role (the '{INGEST_PERMISSION}' "
            "permission)."
        )
    result = Accepted()
    rows: list[tuple[int, LineageEvent, list[str]]] = []
    seen: dict[str, int] = {}
    checked, schemas = limits(), {}
    for index, payload in enumerate(payloads):
        try:
            parsed = parse_event(payload, checked, schemas)
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
        _store(rows, result)
    if result.stored:
        schedule_mapping()
    return result


def _store(rows: list, result: Accepted) -> None:
    """One INSERT (and one for the models the events name, if any: then both in one
    transaction). Not audited here: the stored row is the record of who posted what and when,
    and the audit records each event as it is mapped or rejected."""
    mentioned = any(names for _, _, names in rows)
    with transaction.atomic() if mentioned else contextlib.nullcontext():
        _insert_events(rows, result)


def _insert_events(rows: list, result: Accepted) -> None:
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
        result.stored.append((index, event))
        mentions += [ModelMention(event_id=pk, named=name, model_name=name) for name in names]
    if mentions:
        ModelMention.objects.bulk_create(mentions)


def _ids_label(events: list[LineageEvent]) -> str:
    """The audited object of several events: the lowest and highest id (one: its id)."""
    ids = [event.pk for event in events]
    return str(ids[0]) if len(ids) == 1 else f"{min(ids)}…{max(ids)}"


def _events_label(events: list[LineageEvent]) -> str:
    return str(events[0]) if len(events) == 1 else f"{len(events)} events"


def schedule_mapping() -> None:
    """Map what was just accepted: inline with the embedded default (no broker), so the graph
    shows it at once; otherwise a Celery task enqueued when the accepting transaction commits
    (a beat task sweeps up anything left). Inline, a mapping that fails leaves its events
    pending for the next one and the request stands: they are stored."""
    if settings.LINEAGE_MAP_INLINE:
        try:
            lineage_events_map_all()
        except Exception:
            logger.exception("mapping lineage events failed: they stay pending")
    else:
        transaction.on_commit(_enqueue_mapping)


class _Trigger:
    """This process's last mapping task: one task maps everything pending when it runs, so a
    commit needs no task of its own while one is already due after it."""

    due_at = float("-inf")  # when the last task this process sent runs


def _enqueue_mapping() -> None:
    """After a commit: nothing when this process's last task runs after it; else a task now,
    unless the last one ran less than LINEAGE_MAP_TRIGGER_INTERVAL ago; then one task due an
    interval after that one. Under a steady stream of commits that is one task per interval
    per process, however many events arrive, and no event waits longer than the interval for
    its task."""
    from lineage import tasks

    now = time.monotonic()
    if now < _Trigger.due_at:
        return
    interval = settings.LINEAGE_MAP_TRIGGER_INTERVAL
    # `sent_at`: the task stands for every commit of this process until it is due; a drain
    # that began after that maps them all (see tasks.map_lineage_events)
    if now - _Trigger.due_at >= interval:
        _Trigger.due_at = now
        tasks.map_lineage_events.apply_async(kwargs={"sent_at": time.time()})
    else:
        _Trigger.due_at += interval
        countdown = _Trigger.due_at - now
        tasks.map_lineage_events.apply_async(
            kwargs={"sent_at": time.time() + countdown}, countdown=countdown
        )


# --- map -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapResult:
    mapped: int
    rejected: int
    # lineage_events_map_all: ended on a short batch, so it took every event pending (and not
    # held by another mapper) when its first claim began
    drained: bool = True

    @property
    def claimed(self) -> int:
        return self.mapped + self.rejected


REFUSALS = (EventInvalid, ValidationError, PermissionDenied, Conflict)
# SQLSTATE classes in which the database refuses the data itself: a data exception (22, e.g. a
# value too long) or a limit (54, e.g. an index entry too large). The same every time, so the
# event that causes it is rejected, not retried for ever holding up every event after it.
# Other errors may pass on a retry (a deadlock, a lost connection, a concurrent writer's key)
# and fail the batch, which is mapped again.
DATA_REFUSED = ("22", "54")


def _refused(exc: Exception) -> bool:
    if isinstance(exc, REFUSALS):
        return True
    sqlstate = getattr(exc.__cause__, "sqlstate", None) if isinstance(exc, DatabaseError) else None
    return bool(sqlstate) and sqlstate[:2] in DATA_REFUSED


def _fault(exc: Any) -> bool:
    """An error of the mapping code itself (a bug an unforeseen event shape meets), neither a
    refusal nor an error of the database or its connection (which may pass on a retry)."""
    return isinstance(exc, Exception) and not _refused(exc) and not isinstance(exc, DbError)


def _isolable(exc: Exception) -> bool:
    """Worth mapping the events apart to find those it belongs to."""
    return _refused(exc) or _fault(exc)


# What the mapper reads of a claimed event (its audit names it by kind, type and job).
CLAIMED = ("kind", "event_type", "job_namespace", "job_name", "payload", "submitted_by")


def lineage_events_map(*, limit: int | None = None) -> MapResult:
    """Claim up to `limit` pending events, oldest event time first (`FOR UPDATE SKIP LOCKED`:
    concurrent mappers take disjoint batches), and map them in one transaction, set-based
    over the batch. Each event is marked mapped, or rejected with its reason (e.g. a cycle);
    both are audited. A mapper that dies mid-batch rolls back and leaves the batch pending
    for the next one."""
    limit = limit or settings.LINEAGE_MAP_BATCH
    with transaction.atomic():
        # The ids are claimed (and locked) alone, then only those rows are read whole: a
        # claim that also selected the payloads could sort every pending event's payload to
        # keep the first `limit` of them.
        claim = (
            LineageEvent.objects.select_for_update(skip_locked=True)
            .filter(state=EventState.PENDING)
            .order_by("event_time", "id")
            .values("pk")[:limit]
        )
        batch = list(
            LineageEvent.objects.filter(pk__in=claim).only(*CLAIMED).order_by("event_time", "id")
        )
        if not batch:
            return MapResult(0, 0)
        plan_each_statement()  # the batch's statements pass lists of its runs, nodes, datasets
        # one instance per poster: what is learnt about it (e.g. its role) is asked once
        posters = get_user_model().objects.in_bulk(
            {event.submitted_by_id for event in batch if event.submitted_by_id is not None}
        )
        outcome: dict[int, dict[str, Any] | Exception] = {}
        groups: dict[Any, list[tuple[LineageEvent, ParsedEvent]]] = {}
        schemas: dict = {}
        named: set[tuple[str, str]] = set()  # the datasets the batch names
        for event in batch:
            event.submitted_by = posters.get(event.submitted_by_id)
            try:  # checked against the limits when accepted: read, not checked again
                parsed = parse_event(event.payload, STORED, schemas)
            except Exception as exc:  # the contract changed since it was accepted; or a fault
                outcome[event.pk] = exc
                continue
            groups.setdefault(event.submitted_by_id, []).append((event, parsed))
            named.update(ref.key for ref in (*parsed.inputs, *parsed.outputs))
            if parsed.dataset is not None:
                named.add(parsed.dataset.key)
        # Mappers whose batches name the same dataset map one after the other: one resolving
        # a read must see another's write of that dataset, and the writer must see the read to
        # re-point it; side by side, each would miss the other's uncommitted rows. Taken once,
        # before anything else is written, so that two mappers cannot each hold what the
        # other waits for. (A dataset not catalogued yet is inserted by one mapper at a time:
        # its unique key makes the other wait for the first to commit.)
        ingest.datasets_lock(named)
        ledgers: dict[Any, ingest.Ledger] = {}
        for poster_id, items in groups.items():
            ledger = ledgers[poster_id] = ingest.Ledger()
            for part in _slices(items):
                outcome.update(_map_isolating_refusals(items[0][0].submitted_by, part, ledger))
        faults = [pk for pk, result in outcome.items() if _fault(result)]
        if faults and len(faults) == len(outcome):
            # Every event of the batch met a fault: likely the code's, not the events' (a
            # broken release, say). The batch fails and stays pending until it is fixed,
            # rather than rejecting everything posted meanwhile.
            raise outcome[faults[0]]
        for pk in faults:  # a fault only some events meet: set aside, logged with its trace
            logger.error(
                "lineage event %s could not be mapped and was rejected",
                pk,
                exc_info=outcome[pk],
            )
        now = timezone.now()
        mapped = [event for event in batch if not isinstance(outcome[event.pk], Exception)]
        rejected = [event for event in batch if isinstance(outcome[event.pk], Exception)]
        LineageEvent.objects.filter(pk__in=[event.pk for event in mapped]).update(
            state=EventState.MAPPED, mapped_at=now
        )
        for event in rejected:  # rejections are rare and each has its own reason
            event.state, event.reason = EventState.REJECTED, _reason(outcome[event.pk])
            LineageEvent.objects.filter(pk=event.pk).update(
                state=event.state, reason=event.reason, mapped_at=now
            )
            audit_record(
                actor=event.submitted_by,
                action="lineage.event.rejected",
                target=event,
                changes={
                    "state": [EventState.PENDING, EventState.REJECTED],
                    "reason": event.reason,
                },
            )
        for poster_id, ledger in ledgers.items():
            events = [event for event in mapped if event.submitted_by_id == poster_id]
            if events:
                _audit_mapped(events[0].submitted_by, events, outcome, ledger)
    return MapResult(len(mapped), len(rejected))


# Dataset mentions (inputs and outputs) mapped together at most: a mapping statement carries
# a few values per mention, and a statement may carry at most 65,535 values on PostgreSQL
# and 32,766 on SQLite. A batch of wide events is mapped in several slices, in order, in its
# one transaction.
SLICE_MENTIONS = 5_000


def _slices(
    items: list[tuple[LineageEvent, ParsedEvent]],
) -> Iterator[list[tuple[LineageEvent, ParsedEvent]]]:
    part: list[tuple[LineageEvent, ParsedEvent]] = []
    mentions = 0
    for item in items:
        parsed = item[1]
        size = len(parsed.inputs) + len(parsed.outputs) + (parsed.dataset is not None)
        if part and mentions + size > SLICE_MENTIONS:
            yield part
            part, mentions = [], 0
        part.append(item)
        mentions += size
    if part:
        yield part


def _audit_mapped(
    actor: AbstractBaseUser, events: list[LineageEvent], outcome: dict, ledger: ingest.Ledger
) -> None:
    """One audit event for a poster's events mapped in a batch: which events, and what they
    created or changed in the graph and among runs and dataset versions."""
    summaries = [outcome[event.pk] for event in events]
    changes: dict[str, Any] = {
        "state": [EventState.PENDING, EventState.MAPPED],
        "events": [event.pk for event in events],
        "edges": sum(summary.get("edges", 0) for summary in summaries),
        **ledger.changes(),
    }
    models = [node for summary in summaries for node in summary.get("models", ())]
    if models:
        changes["models"] = models
    repointed = sum(summary.get("repointed", 0) for summary in summaries)
    if repointed:
        changes["repointed"] = repointed
    _audit_events(actor, "lineage.events.mapped", events, changes)


def _audit_events(
    actor: AbstractBaseUser, action: str, events: list[LineageEvent], changes: dict
) -> None:
    """One audit event about several lineage events (named by their lowest and highest id)."""
    audit_record(
        actor=actor,
        action=action,
        object_type="lineage.lineageevent",
        object_id=_ids_label(events),
        object_repr=_events_label(events),
        changes=changes,
    )


def _map_isolating_refusals(
    actor: AbstractBaseUser, items: list[tuple[LineageEvent, ParsedEvent]], ledger: ingest.Ledger
) -> dict[int, dict[str, Any] | Exception]:
    """Map the events together; if the graph refuses something (or the database refuses the
    data, DATA_REFUSED, or the mapping code fails), find the events concerned, so that only
    they fail: their outcome is the exception. The older half is mapped first, then the
    newer, each together; a half that fails is searched the same way, except that when both
    halves of a part fail, the newer half's events are mapped one at a time (refusals are
    then many, and halving would cost more attempts than it saves). So one refused event in
    a batch of 1,000 costs about twenty attempts instead of a thousand, and many cost about
    one attempt per event, as mapping one at a time does. Each event is judged after the
    older events that stand; the events of a part that maps together are judged together, as
    in a batch where nothing is refused. `ledger` collects what the events that stand
    created or changed."""
    out: dict[int, dict[str, Any] | Exception] = {}

    def together(part: list, company: Exception | None) -> Exception | None:
        """Map `part` in one attempt: None when it stands, else why not (the outcome of a
        single event). `company`: why the part it was taken from failed."""
        try:
            with transaction.atomic():
                tried = ingest.Ledger()
                mapped = _map_batch(actor, part, tried)
        except Exception as exc:
            if not _isolable(exc):
                raise
            if len(part) == 1:
                out[part[0][0].pk] = exc
            elif _fault(exc) and not _fault(company):
                # the events apart may not meet it: logged here, whatever follows
                logger.warning("mapping %d lineage events together failed", len(part), exc_info=exc)
            return exc
        out.update(mapped)
        _merge(ledger, tried)
        return None

    def search(part: list, failure: Exception) -> None:
        """Find the events of `part` (two or more, which failed together) that fail."""
        older, newer = part[: len(part) // 2], part[len(part) // 2 :]
        older_failure = together(older, failure)
        if older_failure is not None and len(older) > 1:
            search(older, older_failure)
        newer_failure = together(newer, failure)
        if newer_failure is None or len(newer) == 1:
            return
        if older_failure is None:
            search(newer, newer_failure)
        else:
            for item in newer:
                together([item], newer_failure)

    failure = together(items, None)
    if failure is not None and len(items) > 1:
        search(items, failure)
    return out


def _merge(ledger: ingest.Ledger, attempt: ingest.Ledger) -> None:
    """Add what an attempt that stands did to the batch's ledger; a run changed by two
    attempts keeps its value before the first and after the last (see ingest._fold)."""
    ledger.runs_created += attempt.runs_created
    for run_id, changes in attempt.runs_updated.items():
        merged = ledger.runs_updated.setdefault(run_id, {})
        for name, change in changes.items():
            earlier = merged.get(name)
            if earlier is None:
                merged[name] = change
            elif name == "facets":  # the names of the facets added
                merged[name] = sorted({*earlier, *change})
            else:  # [before, after]
                merged[name] = [earlier[0], change[1]]
    ledger.versions_created += attempt.versions_created


def lineage_events_map_all(*, max_batches: int = 1000) -> MapResult:
    """Map pending events batch after batch until a batch comes back short (or `max_batches`
    ran): a short batch took every event pending and not held by another mapper when it
    claimed, and each event committed since has its own mapping task (see
    `schedule_mapping`), so no empty claim is needed to find out."""
    limit = settings.LINEAGE_MAP_BATCH
    mapped = rejected = 0
    for _ in range(max_batches):
        result = lineage_events_map(limit=limit)
        mapped, rejected = mapped + result.mapped, rejected + result.rejected
        if result.claimed < limit:
            return MapResult(mapped, rejected)
    return MapResult(mapped, rejected, drained=False)


@transaction.atomic
def lineage_events_remap(*, actor: AbstractBaseUser, ids: Sequence[int]) -> list[LineageEvent]:
    """Put rejected events back to pending, to be mapped again now that what refused them may
    have changed (a grant on the model an event registers, a database limit raised, a fixed
    mapping). A poster holding the pipeline permission may for its own events; holders of
    REMAP_PERMISSION (superusers) for any event they may read. Mapping still runs as the
    poster. All or nothing, checked in this order: an id unknown to the caller (NotFound), an
    event not the caller's to remap (Forbidden), an event not rejected (Conflict) refuses the
    whole request. Audited: one `lineage.events.remapped` event listing the events and the
    reasons they had. Returns the events as they stand after the request."""
    wanted = sorted(set(ids))
    if not wanted:
        raise Invalid("Name at least one event.", field="ids")
    events = list(
        selectors.events_visible_to(actor)
        .select_for_update()
        .filter(pk__in=wanted)
        .only(
            "pk",
            "state",
            "reason",
            "kind",
            "event_type",
            "job_namespace",
            "job_name",
            "submitted_by",
        )
        .order_by("pk")
    )
    unknown = sorted(set(wanted) - {event.pk for event in events})
    if unknown:
        raise NotFound(f"Unknown lineage {_which(unknown)}.", field="ids")
    if not actor.has_perm(REMAP_PERMISSION):
        others = [event.pk for event in events if event.submitted_by_id != actor.pk]
        if others:
            raise Forbidden(
                "You may map again only events you posted; "
                f"{_which(others)} {'was' if len(others) == 1 else 'were'} posted by someone "
                "else.",
                field="ids",
            )
        if not actor.has_perm(INGEST_PERMISSION):
            raise Forbidden(
                f"Mapping your events again needs the permission '{INGEST_PERMISSION}'."
            )
    by_state: dict[str, list[int]] = {}
    for event in events:
        if event.state != EventState.REJECTED:
            by_state.setdefault(event.state, []).append(event.pk)
    if by_state:
        raise Conflict(
            "Only rejected events are mapped again; "
            + "; ".join(
                f"{_which(pks)} {'is' if len(pks) == 1 else 'are'} {state}"
                for state, pks in sorted(by_state.items())
            )
            + ".",
            field="ids",
        )
    LineageEvent.objects.filter(pk__in=wanted).update(
        state=EventState.PENDING, reason="", mapped_at=None
    )
    _audit_events(
        actor,
        "lineage.events.remapped",
        events,
        {
            "state": [EventState.REJECTED, EventState.PENDING],
            "events": wanted,
            "reasons": {str(event.pk): event.reason for event in events},
        },
    )
    schedule_mapping()
    # as they stand now: pending for the workers, or mapped or rejected again inline
    return list(LineageEvent.objects.filter(pk__in=wanted).only("state", "reason").order_by("pk"))


def _which(ids: list[int]) -> str:
    """'event 5', 'events 5, 6', 'events 1, 2, … 10 and 3 more'."""
    return ("event " if len(ids) == 1 else "events ") + _listed(ids)


def _listed(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:10]))
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def _reason(exc: Exception) -> str:
    if isinstance(exc, EventInvalid):
        return "; ".join(
            f"{e['field']}: {e['message']}" if e.get("field") else e["message"] for e in exc.errors
        )
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    if isinstance(exc, DatabaseError):
        return f"The database cannot store what this event maps to: {str(exc).strip()}"
    if _fault(exc):
        return (
            f"modelgov could not map this event (internal error: {type(exc).__name__}; the "
            "server log has the details). It was set aside so that the events after it map: "
            "map it again once the fault is fixed."
        )
    return str(getattr(exc, "detail", exc))


def _fields(ref: DatasetRef) -> tuple[ingest.FieldSpec, ...]:
    return tuple(map(ingest.FieldSpec._make, ref.fields))


def _output_version(ref: DatasetRef, run_id, named: dict | None = None) -> str:
    """The version a run's output is: its `version` facet; else the version another event of
    the run names for that dataset (`named`, see _named_versions); else `run:<runId>`."""
    return ref.version or (named or {}).get((run_id, ref.key)) or f"run:{run_id}"


Stored = dict[tuple[str, str], tuple[str, datetime | None]]  # (run, version node) → (base, at)


def _stored_outputs(items: list[tuple[LineageEvent, ParsedEvent]]) -> Stored:
    """The dataset versions the batch's runs (those naming outputs, or inputs by version) are
    stored as having written."""
    sources = sorted(
        {
            nodes.run_id(p.run_id)
            for _, p in items
            if p.run_id and (p.outputs or any(ref.version for ref in p.inputs))
        }
    )
    if not sources:
        return {}
    return {
        (source, target): (base, at)
        for source, target, base, at in Edge.objects.filter(
            relation=Relation.OUTPUT, source__in=sources, target__startswith="dataset:"
        ).values_list("source", "target", "target_base", "at")
    }


def _versions_read(items: list[tuple[LineageEvent, ParsedEvent]]) -> set[tuple[str, str]]:
    """(run, dataset version) for each version a run of the batch reads by name, in this
    batch or stored, where the batch names a version among the run's outputs: an output
    naming a version its own run reads is no write (see `_map_batch`)."""
    read = {
        (nodes.run_id(p.run_id), nodes.dataset_id(ref.namespace, ref.name, ref.version))
        for _, p in items
        if p.kind == "RunEvent"
        for ref in p.inputs
        if ref.version
    }
    runs = sorted(
        {
            nodes.run_id(p.run_id)
            for _, p in items
            if p.kind == "RunEvent" and any(ref.version for ref in p.outputs)
        }
    )
    if runs:  # reads by name are stored untimed; reads resolved by time carry their time
        read |= {
            (run, version)
            for version, run in Edge.objects.filter(
                relation=Relation.INPUT, target__in=runs, at__isnull=True
            ).values_list("source", "target")
        }
    return read


def _unwrite(
    actor: AbstractBaseUser,
    stored: Stored,
    read: set[tuple[str, str]],
    named: dict[str, tuple[tuple[str, str], str]],
) -> dict[str, datetime]:
    """Stored writes of versions that the batch shows their own run reads by name (an event
    naming the version as written was mapped before the one naming it as read): no writes
    (see `_map_batch`). Each output edge is removed (audited) and taken out of `stored`, and
    the version loses the run as its producer (`named`: version node → (dataset, version), of
    the versions the batch reads by name, among them every one undone here). Returns dataset
    base → the earliest time of those writes, from which reads resolved by time are resolved
    again."""
    undone = sorted(key for key in stored if key in read)
    if not undone:
        return {}
    out: dict[str, datetime] = {}
    for run, version in undone:
        base, at = stored.pop((run, version))
        if at is not None:
            out[base] = min(out.get(base, at), at)
    rows = _output_edges(undone)
    audit_record_many(
        actor=actor,
        records=[
            {
                "action": "lineage.edge.removed",
                "object_type": "lineage.edge",
                "object_id": str(edge.pk),
                "object_repr": f"{edge.source} → {edge.target}",
                "changes": {
                    "relation": Relation.OUTPUT,
                    "source": edge.source,
                    "target": edge.target,
                    "reason": "the run reads this version: it did not write it",
                },
            }
            for edge in rows
        ],
    )
    Edge.objects.filter(pk__in=[edge.pk for edge in rows]).delete()
    # another run stored as writing the version (the earliest) becomes its producer
    others = _writers({version for _, version in undone})
    ingest.dataset_versions_unproduce(
        actor=actor,
        versions=[
            (
                *named[version],
                run.removeprefix("run:"),
                others[version][0].removeprefix("run:") if version in others else None,
            )
            for run, version in undone
        ],
    )
    return out


def _writers(versions: Iterable[str]) -> dict[str, list[str]]:
    """Dataset version node → the run nodes stored as writing it, the earliest first (timed
    writes first, then by time, then by node id), for those of the versions that any run is
    stored as writing."""
    marks: dict[str, list[tuple]] = {}
    for version, run, at in Edge.objects.filter(
        relation=Relation.OUTPUT, target__in=sorted(versions)
    ).values_list("target", "source", "at"):
        marks.setdefault(version, []).append((at is None, at, run))
    return {version: [run for *_, run in sorted(found)] for version, found in marks.items()}


def _settle_producers(actor: AbstractBaseUser, versions: dict[str, tuple[tuple[str, str], str]]):
    """Versions the batch wrote under a name (version node → (dataset, version)) are produced
    by their earliest writer: when two runs write one version, the producer does not depend on
    which arrived first. A run's own stand-in (`run:<runId>`) has that one writer."""
    if not versions:
        return
    ingest.dataset_versions_produce(
        actor=actor,
        writers={
            versions[node]: [run.removeprefix("run:") for run in runs]
            for node, runs in _writers(versions).items()
        },
    )


def _named_versions(
    items: list[tuple[LineageEvent, ParsedEvent]], stored: Stored, read: set[tuple[str, str]]
) -> tuple[dict, dict]:
    """Spark names the version of a Delta or Iceberg output on COMPLETE only (START names the
    output without it), and the events of a run may arrive in any order. An output without a
    `version` facet is the version another event of the same run names for that dataset —
    the one named earliest (then the least), in this batch or stored — so that one write is
    one version whatever the order; a version the run reads is no name for its write (`read`,
    see _versions_read). Returns ((run id, dataset) → that version, for this
    batch's unversioned outputs; (dataset, `run:<runId>`) → it, for the stand-ins stored
    before the name arrived in this batch, to be renamed)."""
    named: dict[tuple[str, str], tuple[datetime, str]] = {}  # (run, base) → (at, version)
    in_batch = set()

    def offer(key: tuple[str, str], at: datetime, version: str) -> None:
        if key not in named or (at, version) < named[key]:
            named[key] = (at, version)

    keys: dict[str, tuple[str, str]] = {}  # base → dataset key
    for _, p in items:
        for ref in p.outputs if p.kind == "RunEvent" else ():
            base = nodes.dataset_id(*ref.key)
            keys[base] = ref.key
            run = nodes.run_id(p.run_id)
            if ref.version and (run, nodes.dataset_id(*ref.key, ref.version)) not in read:
                key = (run, base)
                offer(key, p.event_time, ref.version)
                in_batch.add(key)
    stand_ins = {}
    for (source, target), (base, at) in stored.items():
        version = nodes.version_of(target)
        if version == source:  # the run's stand-in, `run:<runId>`
            stand_ins[(source, base)] = version
        elif at is not None:
            offer((source, base), at, version)
    out = {}
    for _, p in items:
        for ref in p.outputs if p.kind == "RunEvent" else ():
            found = named.get((nodes.run_id(p.run_id), nodes.dataset_id(*ref.key)))
            if not ref.version and found is not None:
                out[(p.run_id, ref.key)] = found[1]
    renames = {
        (keys[base], version): named[(run, base)][1]
        for (run, base), version in stand_ins.items()
        if (run, base) in in_batch
    }
    return out, renames


def _identify(actor: AbstractBaseUser, datasets: dict, renames: dict, stored: Stored) -> None:
    """Name the stand-in versions stored before their name arrived (see _named_versions), and
    move their edges (the write, reads resolved to it, trained-on) to the named version; an
    edge the named version has already stays, at the earlier of the two times. `stored`
    follows."""
    renamed = ingest.dataset_versions_identify(actor=actor, datasets=datasets, names=renames)
    if not renamed:
        return
    moves = {nodes.dataset_id(*key, old): nodes.dataset_id(*key, new) for key, old, new in renamed}
    edges = list(Edge.objects.filter(Q(source__in=list(moves)) | Q(target__in=list(moves))))
    for edge in edges:
        edge.source = moves.get(edge.source, edge.source)
        edge.target = moves.get(edge.target, edge.target)
    # e.g. a run that read version n and then names n as its write: no new version, a cycle
    _refuse_cycles([(e.source, e.target) for e in edges if e.relation in VERSION_RELATIONS])
    named = sorted(set(moves.values()))  # an edge the move would duplicate touches one of them
    there = {
        (e.source, e.target, e.relation): e
        for e in Edge.objects.filter(Q(source__in=named) | Q(target__in=named))
    }
    dropped, changed = [], {}
    for edge in edges:
        triple = (edge.source, edge.target, edge.relation)
        existing = there.setdefault(triple, edge)
        if existing is edge:
            changed[edge.pk] = edge
            continue
        dropped.append(edge.pk)
        if edge.at is not None and (existing.at is None or edge.at < existing.at):
            existing.at = edge.at
            changed[existing.pk] = existing
    Edge.objects.filter(pk__in=dropped).delete()
    Edge.objects.bulk_update(list(changed.values()), ["source", "target", "at"])
    for (source, target), (base, at) in list(stored.items()):
        if target in moves:  # the write now stored under the name, at its earliest time
            del stored[(source, target)]
            times = [t for t in (at, stored.get((source, moves[target]), (base, None))[1]) if t]
            stored[(source, moves[target])] = (base, min(times, default=None))


Timed = dict[tuple[str, str], datetime]  # (run node, dataset node or base) → earliest time


def _map_batch(
    actor: AbstractBaseUser,
    items: list[tuple[LineageEvent, ParsedEvent]],
    ledger: ingest.Ledger | None = None,
) -> dict[int, dict[str, Any]]:
    """Fold the events into the catalogue and the graph, set-based: a fixed number of
    statements for the batch whatever its size (models named by a `modelgov_model` facet,
    changed feature descriptions and re-pointed reads aside). Returns each event's summary
    for the audit; raises a refusal (CycleRefused, Conflict, ...) for the batch as a whole."""
    job_keys, run_specs, refs, versions = set(), [], [], []
    stored = _stored_outputs(items)
    read = _versions_read(items)
    # the versions the batch reads by name, by node: a namespace may hold ':' that a node id
    # does not tell from the name's
    by_name = {
        nodes.dataset_id(*ref.key, ref.version): (ref.key, ref.version)
        for _, p in items
        if p.kind == "RunEvent"
        for ref in p.inputs
        if ref.version
    }
    unwritten = _unwrite(actor, stored, read, by_name)
    versions_named, renames = _named_versions(items, stored, read)
    # each distinct schema built once: a batch names the same datasets with the same schemas
    schemas: dict[tuple, tuple[ingest.FieldSpec, ...]] = {}

    def fields_of(ref: DatasetRef) -> tuple[ingest.FieldSpec, ...]:
        found = schemas.get(ref.fields)
        if found is None:
            found = schemas[ref.fields] = _fields(ref)
        return found

    for _, p in items:
        if p.kind == "DatasetEvent":
            refs.append(p.dataset)
            if p.dataset.version:
                versions.append(
                    ingest.VersionSpec(
                        p.dataset.key, p.dataset.version, fields_of(p.dataset), at=p.event_time
                    )
                )
            continue
        job_keys.add((p.job_namespace, p.job_name))
        refs += p.inputs + p.outputs
        if p.kind != "RunEvent":
            continue
        if p.parent_job is not None:
            job_keys.add(p.parent_job)
        run_specs.append(
            ingest.RunEventSpec(
                run_id=p.run_id,
                job=(p.job_namespace, p.job_name),
                state=p.event_type or RunState.OTHER,
                event_time=p.event_time,
                facets=p.run_facets,
                parent=p.parent_run_id,
                parent_job=p.parent_job,
                external_id=p.run_id_original or "",
            )
        )
        versions += [
            ingest.VersionSpec(
                ref.key,
                version,
                fields_of(ref),
                None
                if (nodes.run_id(p.run_id), nodes.dataset_id(*ref.key, version)) in read
                else p.run_id,
                p.event_time,
            )
            for ref in p.outputs
            for version in (_output_version(ref, p.run_id, versions_named),)
        ] + [
            ingest.VersionSpec(ref.key, ref.version, fields_of(ref), at=p.event_time)
            for ref in p.inputs
            if ref.version
        ]
    jobs = ingest.jobs_ensure(actor=actor, keys=job_keys)
    runs = ingest.runs_record_events(actor=actor, events=run_specs, jobs=jobs, ledger=ledger)
    # each dataset with each schema once: a batch names the same few over and over
    datasets = ingest.datasets_sync(
        actor=actor, schemas=dict.fromkeys((ref.key, fields_of(ref)) for ref in refs)
    )
    _identify(actor, datasets, renames, stored)
    ingest.dataset_versions_ensure(
        actor=actor, datasets=datasets, specs=versions, runs=runs, ledger=ledger
    )

    edges: set[tuple[str, str, str]] = set()
    writes: Timed = {}
    reads: Timed = {}
    bases: dict[str, tuple[str, str]] = {}  # dataset base node → (namespace, name)
    named_writes: dict[str, tuple[tuple[str, str], str]] = {}  # node → (dataset, version)
    summaries: dict[int, dict[str, Any]] = {}
    for event, p in items:
        summaries[event.pk] = {"kind": p.kind, "event_type": p.event_type}
        if p.kind != "RunEvent":
            continue
        run_node = nodes.run_id(p.run_id)
        named = 0
        if p.parent_run_id is not None:
            edges.add((nodes.run_id(p.parent_run_id), run_node, Relation.PARENT))
            named += 1
        unchanged = 0
        for ref in p.outputs:
            version = _output_version(ref, p.run_id, versions_named)
            key = (run_node, nodes.dataset_id(ref.namespace, ref.name, version))
            if version != f"run:{p.run_id}":
                named_writes[key[1]] = (ref.key, version)
            if key in read:
                # An output naming a version its run reads made no new version (a MERGE or
                # DELETE that matched no rows keeps an Iceberg table's snapshot): the run
                # read it; it did not write it.
                unchanged += 1
            else:
                writes[key] = min(writes.get(key, p.event_time), p.event_time)
            for in_ns, in_name, in_field, out_field in ref.column_lineage:
                edges.add(
                    (
                        nodes.field_id(in_ns, in_name, in_field),
                        nodes.field_id(ref.namespace, ref.name, out_field),
                        Relation.COLUMN,
                    )
                )
                named += 1
        for ref in p.inputs:
            if ref.version:
                edges.add(
                    (
                        nodes.dataset_id(ref.namespace, ref.name, ref.version),
                        run_node,
                        Relation.INPUT,
                    )
                )
            else:
                base = nodes.dataset_id(ref.namespace, ref.name)
                bases[base] = ref.key
                reads[(run_node, base)] = min(
                    reads.get((run_node, base), p.event_time), p.event_time
                )
        summaries[event.pk]["edges"] = named + len(p.inputs) + len(p.outputs) - unchanged
    written = _write(writes, edges, stored)
    _settle_producers(actor, named_writes)
    input_nodes = _read(actor, reads, datasets, bases, ledger)
    registering = [
        (event, p) for event, p in items if p.kind == "RunEvent" and any(r.model for r in p.outputs)
    ]
    models_now = _models_now([event.pk for event, _ in registering])
    for event, p in registering:
        run_node = nodes.run_id(p.run_id)
        read = [
            nodes.dataset_id(ref.namespace, ref.name, ref.version)
            if ref.version
            else input_nodes[(run_node, nodes.dataset_id(ref.namespace, ref.name))]
            for ref in p.inputs
        ]
        model_edges = set()
        for ref in p.outputs:
            if ref.model is None:
                continue
            name = models_now.get((event.pk, ref.model["name"]), ref.model["name"])
            version = _register_model(actor, event.pk, name, ref.model, runs[p.run_id])
            model_node = nodes.model_id(version.model.name, version.version)
            model_edges.add((run_node, model_node, Relation.OUTPUT))
            model_edges |= {(node, model_node, Relation.TRAINED_ON) for node in read}
            summaries[event.pk].setdefault("models", []).append(model_node)
        add_edges(model_edges)
    _link_models(
        actor, {nodes.run_id(p.run_id) for _, p in items if p.kind == "RunEvent" and p.inputs}
    )
    for base, at in unwritten.items():  # reads resolved to a write now undone resolve anew
        written[base] = min(written.get(base, at), at)
    orphaned = {nodes.base_of(node): key for node, (key, _) in by_name.items()}
    repointed = _repoint_readers(
        actor,
        written,
        {base: orphaned[base] for base in unwritten},
        datasets,
        ledger,
    )
    if repointed:
        summaries[items[-1][0].pk]["repointed"] = repointed
    return summaries


def _write(writes: Timed, edges: set[tuple[str, str, str]], outputs: Stored) -> dict[str, datetime]:
    """Store the output edges, stamped with the write time (the earliest event of the run
    naming that output), with the batch's untimed edges; an output named again by an earlier
    event moves its time earlier (`outputs`: the runs' stored ones). Returns dataset base →
    earliest new or earlier write."""
    stored = {key: at for key, (_, at) in outputs.items()}
    new = {key: at for key, at in writes.items() if key not in stored}
    earlier = {
        key: at
        for key, at in writes.items()
        if key in stored and (stored[key] is None or at < stored[key])
    }
    add_edges(edges | {(s, t, Relation.OUTPUT) for s, t in new}, at={k: v for k, v in new.items()})
    if earlier:
        rows = _output_edges(earlier)
        for row in rows:
            row.at = earlier[(row.source, row.target)]
        Edge.objects.bulk_update(rows, ["at"])
    out: dict[str, datetime] = {}
    for (_, target), at in {**new, **earlier}.items():
        base = nodes.base_of(target)
        out[base] = min(out.get(base, at), at)
    return out


def _output_edges(pairs: Iterable[tuple[str, str]]) -> list[Edge]:
    """The stored output edges of these (run, dataset version) pairs, by id: found by IN
    lists of their runs and versions (a term per pair would make one statement too long on
    SQLite for a large batch), the other combinations dropped here."""
    wanted = set(pairs)
    return [
        row
        for row in Edge.objects.filter(
            relation=Relation.OUTPUT,
            source__in=sorted({s for s, _ in wanted}),
            target__in=sorted({t for _, t in wanted}),
        )
        .only("pk", "source", "target")
        .order_by("pk")
        if (row.source, row.target) in wanted
    ]


def _read(
    actor: AbstractBaseUser,
    reads: Timed,
    datasets: dict,
    bases: dict[str, tuple[str, str]],
    ledger: ingest.Ledger | None = None,
) -> dict[tuple[str, str], str]:
    """Store the unversioned inputs: each reads the latest version of its dataset written at
    or before the read (the earliest event of the run naming that input) by another run, or
    `external`. Returns (run node, dataset base) → the version node read."""
    if not reads:
        return {}
    stored = {
        (target, source_base): (pk, source, at)
        for pk, target, source_base, source, at in Edge.objects.filter(
            relation=Relation.INPUT, target__in=sorted({r for r, _ in reads}), at__isnull=False
        ).values_list("pk", "target", "source_base", "source", "at")
    }
    out: dict[tuple[str, str], str] = {}
    wanted = []
    for key, at in reads.items():
        row = stored.get(key)
        if row is not None and row[2] <= at:
            out[key] = row[1]
        else:
            wanted.append((key[1], at, key[0]))
    resolved = selectors.versions_at(wanted)
    external = set()
    for base, at, reader in wanted:
        node = resolved.get((base, at, reader))
        if node is None:
            node = f"{base}#{EXTERNAL_VERSION}"
            external.add(bases[base])
        out[(reader, base)] = node
    if external:
        ingest.dataset_versions_ensure(
            actor=actor,
            datasets=datasets,
            specs=[ingest.VersionSpec(key, EXTERNAL_VERSION) for key in sorted(external)],
            ledger=ledger,
        )
    new = {(out[(r, b)], r, Relation.INPUT): at for b, at, r in wanted if (r, b) not in stored}
    add_edges(set(new), at={(s, t): at for (s, t, _), at in new.items()})
    for base, at, reader in wanted:
        row = stored.get((reader, base))
        if row is None:
            continue
        pk, old, _ = row
        if old != out[(reader, base)]:
            _move_input(actor, pk, old, out[(reader, base)], reader)
        Edge.objects.filter(pk=pk).update(at=at)
    return out


def _repoint_readers(
    actor: AbstractBaseUser,
    written: dict[str, datetime],
    unwritten: dict[str, tuple[str, str]] | None = None,
    datasets: dict | None = None,
    ledger: ingest.Ledger | None = None,
) -> int:
    """After versions were written (by events that may have arrived after their readers'),
    re-point every time-resolved read at or after a write to the version it now resolves to.
    A read of a dataset whose write was undone (`unwritten`: dataset base → dataset, catalogued
    in `datasets`) that now resolves to no version reads `external`, as it would have had the
    write never been stored. Each re-point is audited."""
    if not written:
        return 0
    unwritten = unwritten or {}
    readers = [
        (pk, source, target, base, at)
        for pk, source, target, base, at in Edge.objects.filter(
            relation=Relation.INPUT,
            source_base__in=sorted(written),
            at__isnull=False,
            at__gte=min(written.values()),
        ).values_list("pk", "source", "target", "source_base", "at")
        if at >= written[base]
    ]
    resolved = selectors.versions_at([(base, at, target) for _, _, target, base, at in readers])
    moves = []
    for pk, source, target, base, at in readers:
        node = resolved.get((base, at, target))
        if node is None and base in unwritten:
            node = f"{base}#{EXTERNAL_VERSION}"
        if node is not None and node != source:
            moves.append((pk, source, node, target))
    external = sorted(
        {
            unwritten[nodes.base_of(node)]
            for _, _, node, _ in moves
            if node.endswith(f"#{EXTERNAL_VERSION}") and nodes.base_of(node) in unwritten
        }
    )
    if external:
        ingest.dataset_versions_ensure(
            actor=actor,
            datasets=datasets,
            specs=[ingest.VersionSpec(key, EXTERNAL_VERSION) for key in external],
            ledger=ledger,
        )
    return sum(_move_input(actor, pk, old, new, run) for pk, old, new, run in moves)


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
    if models:
        _hold_models(Q(name__in=sorted({_model_of(m) for m in models})))
    Edge.objects.filter(pk=pk).update(source=new)
    trained = dict(
        Edge.objects.filter(source=old, target__in=models, relation=Relation.TRAINED_ON)
        .exclude(
            target__in=Edge.objects.filter(source=new, relation=Relation.TRAINED_ON).values(
                "target"
            )
        )
        .values_list("pk", "target")
    )
    Edge.objects.filter(pk__in=list(trained)).update(source=new)
    audit_record(
        actor=actor,
        action="lineage.edge.repointed",
        object_type="lineage.edge",
        object_id=str(pk),
        object_repr=f"{old} → {run_node}",
        changes={"source": [old, new], "target": run_node},
    )
    if trained:  # in each model version's own history
        audit_record_many(
            actor=actor,
            records=[
                {
                    "action": "lineage.model_version.relinked",
                    "target": version,
                    "changes": {"trained_on": [old, new]},
                }
                for version in _model_versions(trained.values())
            ],
        )
    return 1


def _hold_models(which: Q) -> dict[int, str]:
    """Lock these models' rows until the batch commits, before writing edges that name them:
    a rename (which locks its model, then updates its edges) waits, then renames the nodes
    written here; taken before their edges and in pk order, so the two cannot deadlock.
    Returns pk → name."""
    return dict(
        RegisteredModel.objects.select_for_update(no_key=True)
        .filter(which)
        .order_by("pk")
        .values_list("pk", "name")
    )


def _model_held(name: str) -> RegisteredModel | None:
    return RegisteredModel.objects.select_for_update(no_key=True).filter(name=name).first()


def _models_now(event_ids: list[int]) -> dict[tuple[int, str], str]:
    """(event, the model name it gives) → that model's name now, for the events' mentions a
    rename has changed since they were accepted."""
    if not event_ids:
        return {}
    return {
        (event, named): name
        for event, named, name in ModelMention.objects.filter(event__in=event_ids)
        .exclude(named=F("model_name"))
        .values_list("event", "named", "model_name")
    }


def _register_model(
    actor: AbstractBaseUser, event_id: int, name: str, facet: dict, run: Run
) -> ModelVersion:
    """A version of the model `name` (the facet's name, or the name its model has taken since
    the event was accepted) from the facet, trained by `run`; the model is created if none
    holds the name. A refusal names the model as the event does: the poster may not see it,
    nor learn its name now."""
    # locked until the batch commits: a rename waits, then renames the nodes written here
    model = _model_held(name)
    if model is None:  # a rename may have committed since the batch read the event's mentions
        now = (
            ModelMention.objects.filter(event_id=event_id, named=facet["name"])
            .values_list("model_name", flat=True)
            .first()
        )
        if now is not None and now != name:
            name, model = now, _model_held(now)
    if not _may_register(actor, model, name):
        raise ModelRefused(facet["name"], "modelgov_model.name")
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


@transaction.atomic
def model_version_link_run(*, actor: AbstractBaseUser | None, version: ModelVersion) -> int:
    """Edges for a version with a training run: the run produced it, and it was trained on
    the run's inputs. Runs inside every version write (a registry hook, see lineage.apps), and
    again whenever the run's inputs reach the graph later. The new edges are audited with the
    version; returns how many there were."""
    if version.training_run is None:
        return 0
    run_node = nodes.run_id(version.training_run.run_id)
    model_node = nodes.model_id(version.model.name, version.version)
    edges = {(run_node, model_node, Relation.OUTPUT)}
    for source in Edge.objects.filter(target=run_node, relation=Relation.INPUT).values_list(
        "source", flat=True
    ):
        edges.add((source, model_node, Relation.TRAINED_ON))
    stored = set(Edge.objects.filter(target=model_node).values_list("source", "target", "relation"))
    new = edges - stored
    if not new:
        return 0
    try:
        add_edges(new)
    except CycleRefused as exc:
        raise Conflict(
            f"Linking {version} to its training run would close a cycle in the lineage graph: "
            + " → ".join(exc.path),
            code="cycle",
            field="training_run",
        ) from exc
    audit_record(
        actor=actor,
        action="lineage.model_version.linked",
        target=version,
        changes={"edges": [None, [[s, str(r), t] for s, t, r in sorted(new)]]},
    )
    return len(new)


def _link_models(actor: AbstractBaseUser, run_nodes: set[str]) -> int:
    """Link the model versions these runs produced to all their stored inputs: a run's
    inputs may reach the graph after the event (or the registry call) naming its model.
    Set-based: one statement when none of the runs produced a model, four when nothing is
    new; each version linked anew is audited. Returns the edges added."""
    if not run_nodes:
        return 0
    produced = list(
        Edge.objects.filter(
            source__in=sorted(run_nodes), relation=Relation.OUTPUT, target__startswith="model:"
        ).values_list("source", "target")
    )
    if not produced:
        return 0
    # only nodes that name a version the run trained (a version's training run is set once;
    # a renamed model's nodes are renamed with it: model_nodes_rename)
    versions = {
        nodes.model_id(version.model.name, version.version): version
        for version in _model_versions(model for _, model in produced)
    }
    produced = [
        (run, model)
        for run, model in produced
        if model in versions
        and versions[model].training_run is not None
        and nodes.run_id(versions[model].training_run.run_id) == run
    ]
    if not produced:
        return 0
    inputs: dict[str, set[str]] = {}
    for source, run in Edge.objects.filter(
        target__in=sorted({run for run, _ in produced}), relation=Relation.INPUT
    ).values_list("source", "target"):
        inputs.setdefault(run, set()).add(source)
    stored = set(
        Edge.objects.filter(
            target__in=sorted({model for _, model in produced}), relation=Relation.TRAINED_ON
        ).values_list("source", "target")
    )
    new: dict[str, set[str]] = {}  # model node → inputs it is now trained on
    for run, model in produced:
        for source in inputs.get(run, ()):
            if (source, model) not in stored:
                new.setdefault(model, set()).add(source)
    if not new:
        return 0
    # one renamed since its version was read is not linked by its old name
    names = _hold_models(Q(pk__in=sorted({versions[node].model_id for node in new})))
    new = {
        node: got
        for node, got in new.items()
        if names.get(versions[node].model_id) == versions[node].model.name
    }
    if not new:
        return 0
    edges = {(source, model, Relation.TRAINED_ON) for model, got in new.items() for source in got}
    try:
        add_edges(edges)
    except CycleRefused as exc:
        raise Conflict(
            "Linking a model version to its training run's inputs would close a cycle in the "
            "lineage graph: " + " → ".join(exc.path),
            code="cycle",
        ) from exc
    audit_record_many(
        actor=actor,
        records=[
            {
                "action": "lineage.model_version.linked",
                "target": version,
                "changes": {
                    "edges": [
                        None,
                        [[s, str(Relation.TRAINED_ON), node] for s in sorted(new[node])],
                    ]
                },
            }
            for node, version in sorted(versions.items())
            if node in new
        ],
    )
    return len(edges)


def model_nodes_rename(
    *, actor: AbstractBaseUser | None, model: RegisteredModel, old_name: str
) -> int:
    """Rename a model's nodes with the model (a registry hook, see lineage.apps): node ids
    carry the model's name (`model:{name}:{version}`), so its versions keep their lineage
    (model cards, the lineage gate) and a model given the old name later inherits neither
    its edges nor the events naming it (nor shows them to its viewers). In the rename's
    transaction; audited on the model. Returns the edges renamed."""
    old, new = nodes.model_prefix(old_name), nodes.model_prefix(model.name)

    def renamed(column: str) -> Case:
        return Case(
            When(
                **{f"{column}__startswith": old},
                then=Concat(Value(new), Substr(column, len(old) + 1)),
            ),
            default=F(column),
        )

    edges = Edge.objects.filter(model_name=old_name).update(
        source=renamed("source"),
        target=renamed("target"),
        source_base=renamed("source_base"),
        target_base=renamed("target_base"),
        model_name=model.name,
    )
    # the name each event gave stays (`named`): one mapped later registers with this model
    mentions = ModelMention.objects.filter(model_name=old_name)
    events = mentions.values("event").distinct().count()
    mentions.update(model_name=model.name)
    if edges or events:
        audit_record(
            actor=actor,
            action="lineage.model.renamed",
            target=model,
            changes={"nodes": [f"{old}*", f"{new}*"], "edges": edges, "events": events},
        )
    return edges


def _model_versions(model_nodes: Iterable[str]) -> list[ModelVersion]:
    """The model versions of these `model:{name}:{version}` nodes, by pk."""
    wanted = Q()
    for node in model_nodes:
        _, name, number = node.split(":")
        wanted |= Q(model__name=name, version=int(number))
    if not wanted:
        return []
    return list(
        ModelVersion.objects.filter(wanted).select_related("model", "training_run").order_by("pk")
    )


def _model_of(node: str) -> str:
    return node.split(":", 2)[1] if node.startswith("model:") else ""


def _refuse_cycles(versioned: list[tuple[str, str]]) -> None:
    """Raise CycleRefused if these edges would close a cycle in the versioned graph."""
    if not versioned:
        return
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


def add_edges(
    edges: set[tuple[str, str, str]], *, at: dict[tuple[str, str], datetime] | None = None
) -> int:
    """Insert edges (stored ones skipped; `at` stamps some with their time), refusing with
    CycleRefused if the graph over versions would cycle; returns how many were given."""
    if not edges:
        return 0
    at = at or {}
    _refuse_cycles([(s, t) for s, t, r in edges if r in VERSION_RELATIONS])
    Edge.objects.bulk_create(
        [
            Edge(
                source=s,
                target=t,
                relation=r,
                source_base=nodes.base_of(s),
                target_base=nodes.base_of(t),
                model_name=_model_of(s) or _model_of(t),
                at=at.get((s, t)),
            )
            for s, t, r in sorted(edges)
        ],
        ignore_conflicts=True,
    )
    return len(edges)
