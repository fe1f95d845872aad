"""Writes to the audit log: recording events, sealing them into the chain, checkpoints."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from audit import chain
from audit.models import ActorKind, AuditCheckpoint, AuditEvent, AuditSeal
from core import context

logger = logging.getLogger(__name__)
PIPELINE_GROUP = "pipeline"
SEAL_LOCK = 0x6D6F64656C676F76  # "modelgov": one sealer at a time across all machines
SEAL_BATCH = 5000


def _actor_kind(actor: Any) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return ActorKind.SYSTEM
    cached = getattr(actor, "_audit_actor_kind", None)
    if cached is None:
        cached = (
            ActorKind.SERVICE
            if actor.groups.filter(name=PIPELINE_GROUP).exists()
            else ActorKind.USER
        )
        actor._audit_actor_kind = cached
    return cached


def _describe(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    meta = target._meta
    return f"{meta.app_label}.{meta.model_name}", str(target.pk), str(target)[:200]


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
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the writer's transaction")
    ctx = context.current()
    channel = ctx.pop("channel", "system")
    ctx.pop("admin_user", None)
    default_type, default_id, default_repr = _describe(target)
    actor_user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent.objects.create(
        occurred_at=timezone.now(),
        actor=actor_user,
        actor_username=actor_user.get_username() if actor_user else "",
        actor_kind=_actor_kind(actor_user),
        channel=channel,
        action=action,
        object_type=object_type if object_type is not None else default_type,
        object_id=object_id if object_id is not None else default_id,
        object_repr=(object_repr if object_repr is not None else default_repr)[:200],
        changes=changes or {},
        context={k: v for k, v in ctx.items() if v is not None},
        txid=_current_txid(),
    )
    _seal_after_commit()
    return event


def _current_txid() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]


def _seal_hook() -> None:
    if getattr(settings, "AUDIT_SEAL_ON_COMMIT", True):
        try:
            audit_seal(wait=False)
        except Exception:  # noqa: BLE001 - the periodic sealer and verify catch up
            logger.exception("sealing after commit failed; the periodic sealer will retry")


def _seal_after_commit() -> None:
    # Once per transaction, however many events it records (Django drops the callback if the
    # transaction rolls back).
    if not any(func is _seal_hook for _, func, _ in connection.run_on_commit):
        transaction.on_commit(_seal_hook, robust=True)


@dataclass
class SealResult:
    sealed: int = 0
    head_seq: int = 0
    head_hash: str = chain.GENESIS
    skipped: bool = False
    lags: list[float] = field(default_factory=list)


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


EVENT_COLUMNS = ("id", *[f for f in chain.FIELDS if f != "id"])


@transaction.atomic
def _seal_batch(batch: int, result: SealResult) -> int:
    head = (
        AuditSeal.objects.order_by("-seq").values("seq", "hash", "event_id", "event__txid").first()
    )
    seq, prev = (head["seq"], head["hash"]) if head else (0, chain.GENESIS)
    events = AuditEvent.objects.order_by("id")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            horizon = cursor.fetchone()[0]
        events = AuditEvent.objects.filter(txid__lt=horizon).order_by("txid", "id")
        if head:
            last = (head["event__txid"], head["event_id"])
            events = events.filter(
                models.Q(txid__gt=last[0]) | models.Q(txid=last[0], id__gt=last[1])
            )
    elif head:
        events = events.filter(id__gt=head["event_id"])
    rows = list(events.values(*EVENT_COLUMNS)[:batch])
    if not rows:
        result.head_seq, result.head_hash = seq, prev
        return 0
    now = timezone.now()
    seals = []
    for row in rows:
        seq += 1
        digest = chain.link(prev, seq, row)
        seals.append(
            AuditSeal(seq=seq, event_id=row["id"], prev_hash=prev, hash=digest, sealed_at=now)
        )
        result.lags.append((now - row["occurred_at"]).total_seconds())
        prev = digest
    AuditSeal.objects.bulk_create(seals)
    result.sealed += len(seals)
    result.head_seq, result.head_hash = seq, prev
    return len(seals)


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
