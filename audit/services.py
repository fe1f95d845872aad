"""Writes to the audit log. `audit_record` is the only way events enter it."""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.utils import timezone

from audit.models import ActorKind, AuditEvent
from core import context

PIPELINE_GROUP = "pipeline"


def _actor_kind(actor: Any) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return ActorKind.SYSTEM
    if actor.groups.filter(name=PIPELINE_GROUP).exists():
        return ActorKind.SERVICE
    return ActorKind.USER


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
    """Insert one event in the caller's transaction; no lock, no hash (the sealer chains it)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the writer's transaction")
    ctx = context.current()
    channel = ctx.pop("channel", "system")
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
    return event


def _current_txid() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]
