"""Reads of the audit log: verification of the chain, listings, pending events."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from audit import chain
from audit.models import AuditEvent, AuditSeal

AUDITOR_GROUP = "auditor"


def role_names(user: Any) -> frozenset[str]:
    """The names of the roles (auth groups) a signed-in user holds.

    Read once per user object — one statement, none when the loader prefetched `groups` — and
    kept on it, so every role check and every audit event of a request (or a task) share it.
    A user object lives for one request, so a role granted or withdrawn elsewhere counts from
    the next; one changed through this very object counts at once (audit.signals forgets it).
    """
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    names = getattr(user, "_role_names", None)
    if names is None:
        names = frozenset(group.name for group in user.groups.all())
        user._role_names = names
    return names


def role_names_forget(user: Any) -> None:
    """Drop what role_names kept on this user object (its roles just changed through it)."""
    vars(user).pop("_role_names", None)


def is_auditor(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and (user.is_superuser or AUDITOR_GROUP in role_names(user))
    )


@dataclass
class Verification:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    pending: int
    broken_seq: int | None = None
    reason: str = ""
    pending_age: float | None = None  # seconds the oldest pending event has waited

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "pending": self.pending,
            "pending_age_seconds": self.pending_age,
            "broken_seq": self.broken_seq,
            "reason": self.reason or None,
        }


VERIFY_BATCH = 20_000


def _fetch_seal_rows(start: int, to_seq: int | None) -> list[tuple]:
    columns = chain.event_columns(connection.vendor)
    upper = "AND s.seq <= %s " if to_seq is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.seq, s.prev_hash, s.hash, {columns} FROM audit_auditseal s "
            "LEFT JOIN audit_auditevent e ON e.id = s.event_id "
            f"WHERE s.seq >= %s {upper}ORDER BY s.seq LIMIT %s",
            [start, *([to_seq] if to_seq is not None else []), VERIFY_BATCH],
        )
        return cursor.fetchall()


def _close_connection() -> None:
    connection.close()  # resolved in the calling thread: that thread's connection


def _seal_rows(from_seq: int, to_seq: int | None) -> Iterator[tuple]:
    """(seq, prev_hash, hash, *event columns) in seq order, in keyset batches (constant
    memory, no server-side cursor). Event columns are None when the event row is gone.

    Outside a transaction on PostgreSQL the next batch is fetched on a second connection
    while this one is hashed (seals are append-only, so batches cannot disagree); inside a
    transaction, whose uncommitted rows another connection would not see, one at a time."""
    if connection.in_atomic_block or connection.vendor != "postgresql":
        start = from_seq
        while True:
            rows = _fetch_seal_rows(start, to_seq)
            yield from rows
            if len(rows) < VERIFY_BATCH:
                return
            start = rows[-1][0] + 1
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-verify")
    try:
        future = pool.submit(_fetch_seal_rows, from_seq, to_seq)
        while future is not None:
            rows = future.result()
            future = (
                pool.submit(_fetch_seal_rows, rows[-1][0] + 1, to_seq)
                if len(rows) == VERIFY_BATCH
                else None
            )
            yield from rows
    finally:
        pool.submit(_close_connection).result()  # the helper thread's own connection
        pool.shutdown()


def verify_chain(*, from_seq: int = 1, to_seq: int | None = None) -> Verification:
    """Recompute the chain from `from_seq` (to `to_seq`) and name the first broken event:
    changed content, a missing seq, or a broken link."""
    from_seq = max(1, from_seq)
    if from_seq > 1:
        previous = AuditSeal.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
        if previous is None:
            return _result(False, 0, from_seq - 1, "", from_seq - 1, "missing seq")
    else:
        previous = chain.GENESIS
    expected, checked, head_hash = from_seq, 0, previous
    document, digest = chain.document, chain.digest
    for row in _seal_rows(from_seq, to_seq):
        seq, prev_hash, stored = row[0], row[1], row[2]
        if seq != expected:
            return _result(
                False, checked, expected - 1, head_hash, expected, f"missing seq {expected}"
            )
        if prev_hash != previous:
            return _result(
                False,
                checked,
                expected - 1,
                head_hash,
                seq,
                "broken link: prev_hash does not match the previous hash",
            )
        if row[3] is None:
            return _result(
                False, checked, expected - 1, head_hash, seq, f"missing event for seq {seq}"
            )
        if digest(prev_hash, document(seq, row[3:])) != stored:
            return _result(
                False,
                checked,
                expected - 1,
                head_hash,
                seq,
                "changed content: the event no longer matches its hash",
            )
        previous = head_hash = stored
        expected += 1
        checked += 1
    if to_seq is not None and expected <= to_seq:
        return _result(False, checked, expected - 1, head_hash, expected, f"missing seq {expected}")
    stranded = stranded_event()
    if stranded is not None:
        return _result(
            False,
            checked,
            expected - 1,
            head_hash,
            None,
            f"event id {stranded} is not sealed and never will be: it was inserted outside "
            "the sealer's order (no transaction id, or an earlier one than the chain's head)",
        )
    return _result(True, checked, expected - 1, head_hash, None, "")


def _result(ok, checked, head_seq, head_hash, broken, reason) -> Verification:
    return Verification(
        ok=ok,
        checked=checked,
        head_seq=head_seq,
        head_hash=head_hash,
        pending=pending_count(),
        pending_age=oldest_pending_age(),
        broken_seq=broken,
        reason=reason,
    )


def verify_checkpoint(*, seq: int, head: str, mac: str) -> Verification:
    """A signed checkpoint still holds: its MAC is ours and the chain up to it is unchanged."""
    key = settings.AUDIT_SIGNING_KEY
    if not key or not hmac.compare_digest(chain.checkpoint_mac(key, seq, head), mac):
        return _result(False, 0, 0, "", seq, "checkpoint signature is not valid")
    result = verify_chain(to_seq=seq)
    if result.ok and result.head_hash != head:
        return _result(
            False,
            result.checked,
            result.head_seq,
            result.head_hash,
            seq,
            "the history up to the checkpoint was rewritten: head hash differs",
        )
    return result


def _pending() -> QuerySet[AuditEvent]:
    """Events after the last sealed one in the sealer's order (an index range scan)."""
    head = AuditSeal.objects.order_by("-seq").values("event_id", "event__txid").first()
    events = AuditEvent.objects.all()
    if head is None:
        return events
    if connection.vendor == "postgresql":
        return events.extra(
            where=["(txid, id) > (%s, %s)"], params=[head["event__txid"], head["event_id"]]
        )
    return events.filter(id__gt=head["event_id"])


def pending_count() -> int:
    """Events recorded but not sealed yet — every one, also any the sealer would never
    reach (an anti-join on the seals, not the sealer's range)."""
    return AuditEvent.objects.filter(seal__isnull=True).count()


def stranded_event() -> int | None:
    """The id of an unsealed event outside the sealer's order (no transaction id, or one
    before the chain's head): it will never be sealed, so it was not written by
    audit_record. None when there is none."""
    head = AuditSeal.objects.order_by("-seq").values("event_id", "event__txid").first()
    unsealed = AuditEvent.objects.filter(seal__isnull=True)
    if connection.vendor == "postgresql":
        if head is None:
            behind = unsealed.filter(txid__isnull=True)
        else:
            behind = unsealed.extra(
                where=["(txid IS NULL OR (txid, id) < (%s, %s))"],
                params=[head["event__txid"], head["event_id"]],
            )
    else:
        behind = unsealed.filter(id__lt=head["event_id"]) if head else unsealed.none()
    return behind.order_by("id").values_list("id", flat=True).first()


def oldest_pending_age() -> float | None:
    """Sealing lag as it stands: how long the oldest unsealed event has waited (seconds)."""
    oldest = _pending().order_by("occurred_at").values_list("occurred_at", flat=True).first()
    return None if oldest is None else round((timezone.now() - oldest).total_seconds(), 3)


def events_for(user: Any) -> QuerySet[AuditEvent]:
    """The log, for auditors and superusers only."""
    if not is_auditor(user):
        return AuditEvent.objects.none()
    return events()


def events() -> QuerySet[AuditEvent]:
    """The whole log with each event's seal, for a door that has asked who may read it."""
    return AuditEvent.objects.select_related("seal")


def event_history(
    *, object_type: str, object_id: Any, also: Q | None = None
) -> QuerySet[AuditEvent]:
    """One object's events (and those `also` selects), in time order."""
    about = Q(object_type=object_type, object_id=str(object_id))
    return AuditEvent.objects.filter(about | also if also is not None else about).order_by(
        "occurred_at", "id"
    )


# Each exported field, in chain.EXPORT_FIELDS order, and where the row holds it.
_EXPORT_SOURCE = {
    field: f"seal__{field}" if field in ("seq", *chain.LINKS) else field
    for field in chain.EXPORT_FIELDS
}


def export_records(events: QuerySet[AuditEvent]) -> Iterator[dict[str, Any]]:
    """`events` as exported records (chain.EXPORT_FIELDS, the hashed fields in their
    canonical form), in chain order, events still pending last; streamed in chunks."""
    rows = events.order_by(F("seal__seq").asc(nulls_last=True), "id").values(
        *_EXPORT_SOURCE.values()
    )
    timestamp = chain.canonical_timestamp
    for row in rows.iterator(chunk_size=2000):
        record = {field: row[source] for field, source in _EXPORT_SOURCE.items()}
        record["occurred_at"] = timestamp(record["occurred_at"])
        yield record
