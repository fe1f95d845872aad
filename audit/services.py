"""Writes to the audit log: recording events, sealing them into the chain, checkpoints."""

from __future__ import annotations

import functools
import json
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit import chain
from audit.models import ActorKind, AuditCheckpoint, AuditEvent
from audit.selectors import role_names
from core import context

logger = logging.getLogger(__name__)
PIPELINE_GROUP = "pipeline"
SEAL_LOCK = 0x6D6F64656C676F76  # "modelgov": one sealer at a time across all machines
SEAL_BATCH = 5000


def _actor_kind(actor: Any) -> str:
    """A pipeline's account records as a service, anyone else signed in as a user: from the
    roles the request already read for its permission checks (selectors.role_names)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return ActorKind.SYSTEM
    return ActorKind.SERVICE if PIPELINE_GROUP in role_names(actor) else ActorKind.USER


def _describe(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    meta = target._meta
    return f"{meta.app_label}.{meta.model_name}", str(target.pk), str(target)[:200]


Listener = Callable[[Sequence[tuple[AuditEvent, models.Model | None]]], None]
_listeners: list[Listener] = []


def audit_listener_register(listener: Listener) -> None:
    """Have `listener` called with (event, target) of what each writer records, inside the
    writer's transaction, so whatever it writes commits or rolls back with the change.

    For apps to the right of audit (webhooks), from AppConfig.ready(). A listener must be
    cheap for actions it ignores (it sees every event, lineage ingestion's included) and must
    not record audit events itself.
    """
    if listener not in _listeners:
        _listeners.append(listener)


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    object_repr: str | None = None,
) -> AuditEvent:
    """Insert one event in the caller's transaction; no lock, no hash (the sealer chains it
    after commit), so a change that rolls back leaves no event."""
    event = _build(
        actor,
        _request_context(),
        action=action,
        target=target,
        changes=changes,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
    )
    _store([event], [target])
    return event


def audit_record_many(*, actor: Any, records: Iterable[Mapping[str, Any]]) -> list[AuditEvent]:
    """`audit_record` for many changes made by one actor in one transaction: one event per
    record (each a mapping of audit_record's keyword arguments but actor), identical to what
    audit_record would store, inserted in that order with one multi-row INSERT per batch."""
    ctx = _request_context()
    records = list(records)
    events = [_build(actor, ctx, **record) for record in records]
    _store(events, [record.get("target") for record in records])
    return events


def _store(events: list[AuditEvent], targets: list[models.Model | None]) -> None:
    if not events:
        return
    for start in range(0, len(events), INSERT_BATCH):
        _insert(events[start : start + INSERT_BATCH])
    if _listeners:
        pairs = list(zip(events, targets, strict=True))
        for listener in _listeners:
            listener(pairs)
    _seal_after_commit()


def _request_context() -> tuple[str, dict[str, Any]]:
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the writer's transaction")
    ctx = context.current()
    channel = ctx.pop("channel", "system")
    ctx.pop("admin_user", None)
    return channel, {k: v for k, v in ctx.items() if v is not None}


def _build(
    actor: Any,
    request_context: tuple[str, dict[str, Any]],
    *,
    action: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    object_repr: str | None = None,
) -> AuditEvent:
    channel, ctx = request_context
    default_type, default_id, default_repr = _describe(target)
    actor_user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent(
        occurred_at=timezone.now(),
        actor=actor_user,
        actor_username=actor_user.get_username() if actor_user else "",
        actor_kind=_actor_kind(actor_user),
        channel=channel,
        action=action,
        object_type=(object_type if object_type is not None else default_type)[:100],
        object_id=(object_id if object_id is not None else default_id)[:64],
        object_repr=(object_repr if object_repr is not None else default_repr)[:200],
        changes=changes or {},
        context=dict(ctx),
    )


# Every column of the record but the id the database draws, then the writer's transaction.
_INSERTED = tuple(field for field in chain.FIELDS if field != "id")
_INSERT = f"INSERT INTO audit_auditevent ({', '.join(_INSERTED)}, txid) "
# PostgreSQL: the writer's transaction id, evaluated inside the INSERT (no extra round trip).
_PG_ROW = "({}, pg_current_xact_id()::text::bigint)".format(
    ", ".join("%s::jsonb" if field in ("changes", "context") else "%s" for field in _INSERTED)
)
_SQLITE_ROW = "({}, NULL)".format(", ".join("%s" for _ in _INSERTED))


# PostgreSQL, several rows: one array per column, unnested (as Django's bulk_create inserts
# there), so the statement's text is the same however many rows it carries: 1,000 events are
# inserted in about 60 % of the time a VALUES row per event takes. One row is quicker as one.
@functools.cache
def _pg_unnest() -> str:
    columns = {field.column: field for field in AuditEvent._meta.concrete_fields}
    arrays = ", ".join(
        # the type without its modifiers (varchar, not varchar(150)), as bulk_create casts
        f"%s::{columns[name].db_type(connection).split('(')[0]}[]"
        for name in _INSERTED
    )
    return f"SELECT *, pg_current_xact_id()::text::bigint FROM unnest({arrays})"


INSERT_BATCH = 500  # rows per INSERT: 11 parameters each in VALUES, under every database's limit


def _json_param(value: Any) -> str:
    # NaN/Infinity are not JSON: refused here on every database (PostgreSQL would refuse
    # them anyway, SQLite would store text the chain cannot hash).
    return json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)


def _encoders() -> Callable[[AuditEvent], list[Any]]:
    """The INSERT's parameters of an event, in _INSERTED order (built once per statement)."""
    encode = {
        "occurred_at": connection.ops.adapt_datetimefield_value,
        "changes": _json_param,
        "context": _json_param,
    }
    steps = tuple((operator.attrgetter(field), encode.get(field)) for field in _INSERTED)
    return lambda event: [convert(get(event)) if convert else get(event) for get, convert in steps]


def _insert(events: list[AuditEvent]) -> None:
    """Plain INSERTs, one statement for the lot (the ORM's save machinery costs as much as the
    write it audits). Ids are drawn in row order, so the sorted returned ids follow `events`."""
    params_of = _encoders()
    rows = [params_of(event) for event in events]
    postgres = connection.vendor == "postgresql"
    returning = " RETURNING id, txid" if postgres else " RETURNING id, NULL"
    with connection.cursor() as cursor:
        if postgres and len(rows) > 1:
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(_INSERT + _pg_unnest() + returning, columns)
            returned = sorted(cursor.fetchall())
        elif not postgres and len(rows) == 1:
            cursor.execute(_INSERT + "VALUES " + _SQLITE_ROW, rows[0])
            returned = [(cursor.lastrowid, None)]
        else:
            values = ", ".join([_PG_ROW if postgres else _SQLITE_ROW] * len(rows))
            params = [value for row in rows for value in row]
            cursor.execute(_INSERT + "VALUES " + values + returning, params)
            returned = sorted(cursor.fetchall())
    for event, (event_id, txid) in zip(events, returned, strict=True):
        event.id, event.txid = event_id, txid


_last_seal_attempt = 0.0
_recorded = threading.local()  # per thread, as database connections are


def _seal_hook(recorded: int) -> None:
    """After a commit that recorded events: seal now, unless this process already tried
    within AUDIT_SEAL_INTERVAL seconds (then a later commit or the beat task does it).
    A transaction registers one hook per recording; the first to run seals what the
    transaction recorded, the others find it done."""
    global _last_seal_attempt
    if getattr(_recorded, "sealed", 0) >= recorded:
        return
    _recorded.sealed = _recorded.count
    if not getattr(settings, "AUDIT_SEAL_ON_COMMIT", True):
        return
    now = time.monotonic()
    if now - _last_seal_attempt < getattr(settings, "AUDIT_SEAL_INTERVAL", 0.0):
        return
    _last_seal_attempt = now
    try:
        audit_seal(wait=False)
    except Exception:  # noqa: BLE001 - the periodic sealer and verify catch up
        logger.exception("sealing after commit failed; the periodic sealer will retry")


def _seal_after_commit() -> None:
    # Django runs the hook once the outermost transaction commits, and drops it with the
    # savepoint or transaction that registered it if that rolls back.
    _recorded.count = getattr(_recorded, "count", 0) + 1
    transaction.on_commit(functools.partial(_seal_hook, _recorded.count), robust=True)


@dataclass
class SealResult:
    sealed: int = 0
    head_seq: int = 0
    head_hash: str = chain.GENESIS
    skipped: bool = False


def _lock(cursor, wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite serialises writers; the sealer's transaction is one of them
    if wait:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SEAL_LOCK])
        return True
    cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEAL_LOCK])
    return cursor.fetchone()[0]


def _unlock(cursor) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_unlock(%s)", [SEAL_LOCK])


def audit_seal(*, wait: bool = True, batch: int = SEAL_BATCH) -> SealResult:
    """Chain every event that no earlier transaction can still precede: on PostgreSQL those
    whose transaction id is below the oldest running transaction's, in (txid, id) order; on
    SQLite every committed event in id order. One sealer at a time (advisory lock)."""
    result = SealResult()
    with connection.cursor() as cursor:
        if not _lock(cursor, wait):
            result.skipped = True
            return result
        try:
            while True:
                sealed = _seal_batch(batch, result)
                if sealed < batch:
                    break
        finally:
            _unlock(cursor)
    return result


@transaction.atomic
def _seal_batch(batch: int, result: SealResult) -> int:
    vendor = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.seq, s.hash, s.event_id, e.txid FROM audit_auditseal s "
            "JOIN audit_auditevent e ON e.id = s.event_id ORDER BY s.seq DESC LIMIT 1"
        )
        head = cursor.fetchone()
        seq, prev = (head[0], head[1]) if head else (0, chain.GENESIS)
        columns = chain.event_columns(vendor)
        if vendor == "postgresql":
            # Only events no running transaction can still precede (txid below the snapshot's
            # xmin), from the last sealed one on, in (txid, id) order: an index range scan.
            after = "AND (e.txid, e.id) > (%s, %s) " if head else ""
            cursor.execute(
                f"SELECT {columns} FROM audit_auditevent e "
                "WHERE e.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                f"{after}ORDER BY e.txid, e.id LIMIT %s",
                [head[3], head[2], batch] if head else [batch],
            )
        else:
            # SQLite serialises writers: every committed event, in id order.
            cursor.execute(
                f"SELECT {columns} FROM audit_auditevent e WHERE e.id > %s ORDER BY e.id LIMIT %s",
                [head[2] if head else 0, batch],
            )
        rows = cursor.fetchall()
        if not rows:
            result.head_seq, result.head_hash = seq, prev
            return 0
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        seals = []
        for row in rows:
            seq += 1
            digest = chain.digest(prev, chain.document(seq, row))
            seals.append((seq, row[0], prev, digest, now))
            prev = digest
        _insert_seals(cursor, seals)
    result.sealed += len(seals)
    result.head_seq, result.head_hash = seq, prev
    return len(seals)


def _insert_seals(cursor, seals: list[tuple]) -> None:
    columns = "(seq, event_id, prev_hash, hash, sealed_at)"
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY audit_auditseal {columns} FROM STDIN") as copy:
            for seal in seals:
                copy.write_row(seal)
    else:
        cursor.executemany(
            f"INSERT INTO audit_auditseal {columns} VALUES (%s, %s, %s, %s, %s)", seals
        )


@transaction.atomic
def audit_checkpoint_create(*, actor: Any = None) -> AuditCheckpoint:
    """Seal, then sign the head of the chain with AUDIT_SIGNING_KEY (HMAC-SHA256)."""
    key = settings.AUDIT_SIGNING_KEY
    if not key:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("Set AUDIT_SIGNING_KEY to sign audit checkpoints.")
    head = audit_seal()
    checkpoint = AuditCheckpoint.objects.create(
        seq=head.head_seq,
        hash=head.head_hash,
        mac=chain.checkpoint_mac(key, head.head_seq, head.head_hash),
    )
    audit_record(
        actor=actor,
        action="audit.checkpoint.created",
        target=checkpoint,
        changes={"seq": checkpoint.seq, "hash": checkpoint.hash},
    )
    return checkpoint


def audit_export_record(*, actor: Any, export_format: str, filters: dict[str, Any]) -> AuditEvent:
    """Before an export of the log is streamed: record who exported what (reading the audit
    log is itself audited: "audit.export.created", with the format and the filters), then
    seal, so that the export — this event included, when nothing holds sealing back —
    carries seqs and hashes."""
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action="audit.export.created",
            object_type="audit.auditevent",
            object_id="",
            object_repr="export",
            changes={"format": export_format, "filters": filters},
        )
    audit_seal(wait=True)
    return event


@transaction.atomic
def user_save(*, actor: Any, user: Any, relations: Mapping[str, Iterable] | None = None) -> Any:
    """Save a person's account as `actor` edited it, with its many-to-many relations (its
    `groups` — roles — and `user_permissions`) set to exactly those given. The auth signals
    record it (audit/signals.py: the governed fields' changes, each role joined or left),
    naming `actor`, as they do whichever door changes an account."""
    with context.bound(**{**context.current(), "admin_user": actor}):
        user.save()
        for name, values in (relations or {}).items():
            getattr(user, name).set(values)
    return user


def _role_state(role: Any) -> dict[str, Any]:
    return {
        "name": role.name,
        "permissions": sorted(role.permissions.values_list("codename", flat=True)),
    }


@transaction.atomic
def role_save(*, actor: Any, role: Any, permissions: Iterable | None = None) -> Any:
    """Create or change a role (an auth group) and, when given, set its permissions; one
    event, "auth.group.created" or "auth.group.updated", with what changed."""
    created = role.pk is None
    before = {} if created else _role_state(type(role).objects.get(pk=role.pk))
    role.save()
    if permissions is not None:
        role.permissions.set(permissions)
    after = _role_state(role)
    changes = {
        key: [before.get(key), value] for key, value in after.items() if before.get(key) != value
    }
    if created or changes:
        audit_record(
            actor=actor,
            action="auth.group.created" if created else "auth.group.updated",
            target=role,
            changes=changes,
        )
    return role


@transaction.atomic
def role_delete(*, actor: Any, role: Any) -> None:
    """Delete a role (an auth group); its members leave it. One event, "auth.group.deleted",
    with its name, members and permissions as they were."""
    members = sorted(role.user_set.values_list("username", flat=True))
    audit_record(
        actor=actor,
        action="auth.group.deleted",
        target=role,
        changes={**_role_state(role), "members": members},
    )
    role.delete()
