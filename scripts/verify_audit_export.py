#!/usr/bin/env python3
"""Verify a modelgov audit export offline, trusting nothing but the file and the signing key.

    python3 scripts/verify_audit_export.py audit.jsonl --checkpoint checkpoint.json \\
        [--key-file var/.env]

Standard library only (no Django, no database): copy this file to the auditor's machine. It
reads an export (`/api/v1/audit/events/export?format=jsonl` or `format=csv`) and, like a
Certificate Transparency client checking a log it does not trust,

1. recomputes every record's hash from the record itself:
   ``sha256(prev_hash + canonical JSON)``, where the canonical JSON is the object of the
   fields ``action, actor_id, actor_kind, actor_username, changes, channel, context, id,
   object_id, object_repr, object_type, occurred_at, seq`` with keys sorted, no white space,
   UTF-8 (not ASCII-escaped), ``occurred_at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
2. checks every link: seqs run 1, 2, 3 … with no gap and each ``prev_hash`` is the previous
   record's ``hash`` (the first record's ``prev_hash`` is 64 zeros when it is seq 1);
3. checks the signed checkpoint (``manage.py audit_checkpoint``'s JSON): its MAC is
   ``HMAC-SHA256(AUDIT_SIGNING_KEY, "modelgov-audit:{seq}:{hash}")`` and the export's record
   at that seq has exactly that hash — so a chain rewritten from a tampered record onwards,
   which would otherwise verify, is caught.

The key comes from ``--key-file`` (a file holding the key, or ``NAME=value`` lines with
``AUDIT_SIGNING_KEY``) or the ``AUDIT_SIGNING_KEY`` environment variable. Events not yet
sealed when the export was made (no seq) are counted and skipped. Exit status 0 when
everything verifies; 1 with the first failure named (seq and event id) otherwise; 2 for
unusable input.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

GENESIS = "0" * 64
HASHED = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_username",
    "changes",
    "channel",
    "context",
    "id",
    "object_id",
    "object_repr",
    "object_type",
    "occurred_at",
    "seq",
)
INTEGERS = ("actor_id", "id", "seq")


class Unusable(Exception):
    """The input cannot be read as an export, a checkpoint or a key."""


class Broken(Exception):
    """The export does not verify."""


def canonical(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict) -> str:
    document = canonical({field: record[field] for field in HASHED})
    return hashlib.sha256((record["prev_hash"] + document).encode("utf-8")).hexdigest()


def checkpoint_mac(key: str, seq: int, head: str) -> str:
    message = f"modelgov-audit:{seq}:{head}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _canonical_time(value: str) -> str:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {value}")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_csv(row: dict) -> dict:
    record = dict(row)
    for name in INTEGERS:
        record[name] = int(record[name]) if record.get(name, "") != "" else None
    for name in ("changes", "context"):
        record[name] = json.loads(record[name])
    for name in ("prev_hash", "hash"):
        record[name] = record.get(name) or None
    return record


def read_export(path: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each record of a JSONL or CSV export."""
    with open(path, encoding="utf-8", newline="") as handle:
        first = handle.read(1)
        handle.seek(0)
        if first == "{":
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise Unusable(f"line {number}: not JSON ({exc})") from exc
        else:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    yield number, _from_csv(row)
                except (ValueError, TypeError) as exc:
                    raise Unusable(f"line {number}: unreadable CSV row ({exc})") from exc


def read_key(key_file: str | None) -> str:
    if key_file:
        with open(key_file, encoding="utf-8") as handle:
            text = handle.read()
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() in ("AUDIT_SIGNING_KEY", "export AUDIT_SIGNING_KEY"):
                return value.strip().strip("'\"")
        if "=" not in text and text.strip():
            return text.strip()
        raise Unusable(f"{key_file} holds no AUDIT_SIGNING_KEY")
    key = os.environ.get("AUDIT_SIGNING_KEY", "")
    if not key:
        raise Unusable("no signing key: pass --key-file or set AUDIT_SIGNING_KEY")
    return key


def read_checkpoint(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        text = handle.read().strip()
    try:
        data = json.loads(text.splitlines()[-1] if text else "")
        return {"seq": int(data["seq"]), "hash": str(data["hash"]), "mac": str(data["mac"])}
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise Unusable(f"{path} is not a checkpoint ({exc})") from exc


def verify(export: str, checkpoint: dict | None, key: str | None) -> str:
    """A one-line summary when the export verifies; raises Broken naming the record if not."""
    if checkpoint is not None:
        expected = checkpoint_mac(key or "", checkpoint["seq"], checkpoint["hash"])
        if not hmac.compare_digest(expected, checkpoint["mac"]):
            raise Broken(
                f"checkpoint at seq {checkpoint['seq']}: the MAC does not match (a forged "
                "checkpoint, or another signing key)"
            )
    previous_seq = previous_hash = None
    first_seq = None
    checked = unsealed = 0
    checkpoint_seen = False
    sealed = []
    for number, record in read_export(export):
        missing = [name for name in (*HASHED, "prev_hash", "hash") if name not in record]
        if missing:
            raise Unusable(f"line {number}: the record lacks {', '.join(missing)}")
        if record["seq"] is None:
            unsealed += 1
            continue
        sealed.append((number, record))
    sealed.sort(key=lambda item: item[1]["seq"])
    for number, record in sealed:
        seq, name = record["seq"], f"seq {record['seq']} (event id {record['id']}, line {number})"
        try:
            record["occurred_at"] = _canonical_time(str(record["occurred_at"]))
        except ValueError as exc:
            raise Broken(f"{name}: unreadable occurred_at ({exc})") from exc
        if previous_seq is None:
            first_seq = seq
            if seq == 1 and record["prev_hash"] != GENESIS:
                raise Broken(f"{name}: the first event's prev_hash is not 64 zeros")
        elif seq != previous_seq + 1:
            raise Broken(f"seq {previous_seq + 1} is missing (the export jumps to {name})")
        elif record["prev_hash"] != previous_hash:
            raise Broken(f"{name}: broken link, prev_hash is not the previous record's hash")
        try:
            recomputed = record_hash(record)
        except (TypeError, ValueError) as exc:
            raise Broken(f"{name}: cannot be put in canonical form ({exc})") from exc
        if recomputed != record["hash"]:
            raise Broken(f"{name}: changed content, the record no longer matches its hash")
        if checkpoint is not None and seq == checkpoint["seq"]:
            if record["hash"] != checkpoint["hash"]:
                raise Broken(f"{name}: differs from the signed checkpoint's hash")
            checkpoint_seen = True
        previous_seq, previous_hash = seq, record["hash"]
        checked += 1
    if checkpoint is not None and checkpoint["seq"] == 0 and checkpoint["hash"] == GENESIS:
        checkpoint_seen = True  # signed before anything was sealed: every chain starts there
    if checkpoint is not None and not checkpoint_seen:
        raise Broken(
            f"the checkpoint's seq {checkpoint['seq']} is not in the export (it holds seqs "
            f"{first_seq}–{previous_seq}): export the whole log after taking the checkpoint"
        )
    summary = f"verified {checked} records, seq {first_seq}–{previous_seq}, head {previous_hash}"
    if checkpoint is not None:
        summary += f"; the signed checkpoint at seq {checkpoint['seq']} matches"
    if unsealed:
        summary += f"; {unsealed} records not yet sealed were skipped"
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the exported JSONL or CSV file")
    parser.add_argument("--checkpoint", help="a checkpoint file (audit_checkpoint's JSON)")
    parser.add_argument("--key-file", help="a file with the key, or AUDIT_SIGNING_KEY=… lines")
    parser.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="check hashes and links only (a rewritten chain would pass: prefer a checkpoint)",
    )
    args = parser.parse_args(argv)
    try:
        if args.checkpoint:
            checkpoint, key = read_checkpoint(args.checkpoint), read_key(args.key_file)
        elif args.no_checkpoint:
            checkpoint, key = None, None
        else:
            raise Unusable("pass --checkpoint FILE (or --no-checkpoint for hashes and links only)")
        print(verify(args.export, checkpoint, key))
    except Broken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    except (Unusable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
