"""Reads of the audit log: verification of the chain, listings, pending events."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from audit import chain
from audit.models import AuditEvent, AuditSeal

AUDITOR_GROUP = "auditor"


def is_auditor(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and (user.is_superuser or user.groups.filter(name=AUDITOR_GROUP).exists())
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "pending": self.pending,
            "broken_seq": self.broken_seq,
            "reason": self.reason or None,
        }


SEAL_COLUMNS = ["seq", "prev_hash", "hash", *[f"event__{f}" for f in chain.FIELDS]]


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
    seals = AuditSeal.objects.filter(seq__gte=from_seq).order_by("seq")
    if to_seq is not None:
        seals = seals.filter(seq__lte=to_seq)
    expected, checked, head_hash = from_seq, 0, previous
    for row in seals.values_list(*SEAL_COLUMNS).iterator(chunk_size=10_000):
        seq, prev_hash, digest = row[0], row[1], row[2]
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
        event = dict(zip(chain.FIELDS, row[3:], strict=True))
        if chain.link(prev_hash, seq, event) != digest:
            return _result(
                False,
                checked,
                expected - 1,
                head_hash,
                seq,
                "changed content: the event no longer matches its hash",
            )
        previous = head_hash = digest
        expected += 1
        checked += 1
    if to_seq is not None and expected <= to_seq:
        return _result(False, checked, expected - 1, head_hash, expected, f"missing seq {expected}")
    return _result(True, checked, expected - 1, head_hash, None, "")


def _result(ok, checked, head_seq, head_hash, broken, reason) -> Verification:
    return Verification(
        ok=ok,
        checked=checked,
        head_seq=head_seq,
        head_hash=head_hash,
        pending=pending_count(),
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


def pending_count() -> int:
    """Events recorded but not sealed yet."""
    return AuditEvent.objects.filter(seal__isnull=True).count()


def events_for(user: Any) -> QuerySet[AuditEvent]:
    """The log, for auditors and superusers only."""
    if not is_auditor(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.select_related("seal")
