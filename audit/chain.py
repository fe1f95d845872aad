"""The hash chain (pure): the canonical form of an event and the hash that links it.

Canonical form of an event — the JSON text (core.canonical: keys sorted, no white space,
UTF-8 not ASCII-escaped, NaN/Infinity refused) of the object

    {action, actor_id, actor_kind, actor_username, changes, channel, context, id,
     object_id, object_repr, object_type, occurred_at, seq}

built from the row *as read back from the database*, so that what is hashed is exactly what
is stored:

* ``occurred_at``: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` — always six fraction digits, which is
  the column's precision on PostgreSQL (timestamptz) and SQLite (ISO text) alike;
* ``changes`` and ``context``: the stored JSON parsed and re-serialised canonically (nested
  keys sorted); integers print as integers, floats in Python's shortest round-trip form
  (``0.1``, ``1e+20``), strings with JSON escapes only where JSON requires them;
* ``actor_id``, ``id``, ``seq``: integers (``actor_id`` may be null); the rest strings.

``hash = sha256_hex(prev_hash + canonical JSON)`` over UTF-8; the first event's ``prev_hash``
is 64 zeros. ``event_document`` is the definition; ``document`` is the same text assembled
directly from a database row (tests prove the two agree), fast enough to seal and verify
hundreds of thousands of events per second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

from core.canonical import canonical_json

GENESIS = "0" * 64

# The audit record, defined once. FIELDS: an event's own columns, in this order wherever
# they are listed (the insert, the sealer's and verifier's selects, the export); with `seq`
# they are the keys of the canonical form (HASHED, sorted). LINKS: the seal's part of a
# record. EXPORT_FIELDS: an exported record (and the CSV header), the hashed fields then the
# links. scripts/verify_audit_export.py, which runs without this code, carries a copy of
# HASHED that the tests compare with this one.
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
HASHED = tuple(sorted((*FIELDS, "seq")))
LINKS = ("prev_hash", "hash")
EXPORT_FIELDS = ("seq", *FIELDS, *LINKS)

# The event columns, in FIELDS order, as the sealer and the verifier select them (alias e);
# PostgreSQL formats the time in the canonical form itself.
_PG_TIME = "to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_PG_COLUMNS = ", ".join(_PG_TIME if f == "occurred_at" else f"e.{f}" for f in FIELDS)
_SQLITE_COLUMNS = ", ".join(f"e.{f}" for f in FIELDS)


def event_columns(vendor: str) -> str:
    return _PG_COLUMNS if vendor == "postgresql" else _SQLITE_COLUMNS


def event_document(seq: int, row: dict[str, Any]) -> str:
    """The canonical form, by definition (row as the ORM reads it)."""
    return canonical_json({"seq": seq, **{field: row[field] for field in FIELDS}})


def link(prev_hash: str, seq: int, row: dict[str, Any]) -> str:
    return digest(prev_hash, event_document(seq, row))


def digest(prev_hash: str, document_text: str) -> str:
    return hashlib.sha256((prev_hash + document_text).encode("utf-8")).hexdigest()


_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) does to a str
_canonical_value = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
if json.encoder.c_make_encoder is not None:
    # The same C encoder JSONEncoder.encode builds on every call, built once (no circular
    # check: JSON parsed from the database cannot be circular).
    _chunks = json.encoder.c_make_encoder(None, None, _string, None, ":", ",", True, False, False)

    def _canonical_value(value: Any) -> str:  # noqa: F811 - the fast twin of the above
        return "".join(_chunks(value, 0))


def _timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if len(value) == 27 and value[10] == "T" and value[-1] == "Z":
        return value  # already canonical (PostgreSQL's to_char above)
    # SQLite keeps naive UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _timestamp(parsed)


canonical_timestamp = _timestamp  # the public name, for exports


def _json(value: Any) -> str:
    if isinstance(value, str):
        if value == "{}":
            return value
        value = json.loads(value)
    return _canonical_value(value)


def _int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def document(seq: int, row: tuple) -> str:
    """The canonical form assembled from a row selected with `event_columns` (keys in sorted
    order, each value encoded exactly as canonical_json would)."""
    (
        event_id,
        occurred_at,
        actor_id,
        actor_username,
        actor_kind,
        channel,
        action,
        object_type,
        object_id,
        object_repr,
        changes,
        context,
    ) = row
    return (
        f'{{"action":{_string(action)},"actor_id":{_int(actor_id)},'
        f'"actor_kind":{_string(actor_kind)},"actor_username":{_string(actor_username)},'
        f'"changes":{_json(changes)},"channel":{_string(channel)},'
        f'"context":{_json(context)},"id":{_int(event_id)},'
        f'"object_id":{_string(object_id)},"object_repr":{_string(object_repr)},'
        f'"object_type":{_string(object_type)},'
        f'"occurred_at":"{_timestamp(occurred_at)}","seq":{int(seq)}}}'
    )


def checkpoint_mac(key: str, seq: int, head: str) -> str:
    return hmac.new(
        key.encode("utf-8"), f"modelgov-audit:{seq}:{head}".encode(), hashlib.sha256
    ).hexdigest()


MAX_SEQ = 2**63 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_checkpoint(text: str) -> tuple[int, str, str]:
    """(seq, head hash, mac) of a checkpoint as `audit_checkpoint` prints it; ValueError
    saying what is wrong for anything else (a float or huge seq, a malformed hash…)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    seq, head, mac = data.get("seq"), data.get("hash"), data.get("mac")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq must be a whole number from 0 to {MAX_SEQ}")
    for name, value in (("hash", head), ("mac", mac)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise ValueError(f"{name} must be 64 lowercase hexadecimal characters")
    return seq, head, mac
