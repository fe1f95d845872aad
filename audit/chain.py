"""The hash chain (pure): the canonical form of an event and the hash that links it.

Canonical form: the JSON (core.canonical: sorted keys, no spaces, UTF-8, UTC timestamps as
`YYYY-MM-DDTHH:MM:SS.ffffffZ`, integers as integers, floats in shortest round-trip form, no
NaN) of the object {seq, id, occurred_at, actor_id, actor_username, actor_kind, channel,
action, object_type, object_id, object_repr, changes, context} built from the row *as read
back from the database*, so that what is hashed is exactly what is stored.
hash = sha256_hex(prev_hash + canonical JSON); the first event's prev_hash is 64 zeros.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from core.canonical import canonical_json

GENESIS = "0" * 64
FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_kind",
    "channel",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "context",
)


def event_document(seq: int, row: dict[str, Any]) -> str:
    return canonical_json({"seq": seq, **{field: row[field] for field in FIELDS}})


def link(prev_hash: str, seq: int, row: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + event_document(seq, row)).encode("utf-8")).hexdigest()


def checkpoint_mac(key: str, seq: int, head: str) -> str:
    return hmac.new(
        key.encode("utf-8"), f"modelgov-audit:{seq}:{head}".encode(), hashlib.sha256
    ).hexdigest()
