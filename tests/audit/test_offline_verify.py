"""An auditor verifies an export offline: the shipped script, standard library only (run with
`python -I -S`, so no Django or other site package can be imported), recomputes every hash and
link of the exported records and checks the signed checkpoint."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from audit import chain
from audit.models import AuditEvent
from audit.services import audit_record
from registry import services
from tests.audit.sealing import seal_all

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_audit_export.py"
KEY = "auditor-secret-key"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(settings, owner):
    """Real events (a user actor, floats, non-ASCII text, nested changes), then a checkpoint."""
    settings.AUDIT_SIGNING_KEY = KEY
    services.registered_model_create(actor=owner, name="credit-risk", business_unit="Crédit")
    for index in range(3):
        with transaction.atomic():
            audit_record(
                actor=owner,
                action="test.event",
                object_type="test.thing",
                object_id=str(index),
                object_repr="Ünïcode ✓",
                changes={"ratio": 0.1 * index, "nested": {"b": [1, 2.5e20], "a": None}},
            )
    seal_all()  # on a shared PostgreSQL server, other sessions' transactions may hold it back
    out = io.StringIO()
    call_command("audit_checkpoint", stdout=out)
    seal_all()  # the checkpoint's own event, which sealing after its commit may leave pending
    return out.getvalue().strip()


def _export(api, auditor, fmt: str, tmp_path: Path) -> Path:
    response = api(auditor).get(f"/api/v1/audit/events/export?format={fmt}")
    assert response.status_code == 200
    path = tmp_path / f"audit.{fmt}"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def _verify(tmp_path: Path, export: Path, checkpoint: str, key: str = KEY):
    (tmp_path / "checkpoint.json").write_text(checkpoint)
    (tmp_path / "key").write_text(f"SECRET_KEY=other\nAUDIT_SIGNING_KEY={key}\n")
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(export)]
        + ["--checkpoint", str(tmp_path / "checkpoint.json"), "--key-file", str(tmp_path / "key")],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_offline_with_the_signed_checkpoint(
    api, auditor, history, tmp_path, fmt
):
    export = _export(api, auditor, fmt, tmp_path)
    result = _verify(tmp_path, export, history)
    assert result.returncode == 0, result.stderr
    checked = int(result.stdout.split()[1])
    if fmt == "jsonl":
        sealed = [r for r in map(json.loads, export.open()) if r["seq"] is not None]
    else:
        sealed = [r for r in csv.DictReader(export.open(newline="")) if r["seq"]]
    assert checked == len(sealed) >= 5
    assert checked >= AuditEvent.objects.exclude(action="audit.export.created").count()
    assert f"checkpoint at seq {json.loads(history)['seq']} matches" in result.stdout


def test_every_hashed_field_is_exported_and_both_formats_write_the_same_values(
    api, auditor, history, tmp_path
):
    jsonl = [json.loads(line) for line in _export(api, auditor, "jsonl", tmp_path).open()]
    rows = list(csv.DictReader(_export(api, auditor, "csv", tmp_path).open(newline="")))
    by_id = {row["id"]: row for row in rows}
    for record in jsonl:
        assert record["actor_id"] is None or isinstance(record["actor_id"], int)
        row = by_id[str(record["id"])]
        assert row["occurred_at"] == record["occurred_at"]
        assert record["occurred_at"].endswith("Z") and len(record["occurred_at"]) == 27
        assert row["actor_id"] == ("" if record["actor_id"] is None else str(record["actor_id"]))
        assert json.loads(row["changes"]) == record["changes"]
    assert any(record["actor_id"] for record in jsonl)


def test_the_offline_script_hashes_the_fields_the_chain_defines():
    # The script runs without the product's code, so it carries its own list: the same one.
    spec = importlib.util.spec_from_file_location("verify_audit_export", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.HASHED == chain.HASHED
    assert set(chain.EXPORT_FIELDS) == {*script.HASHED, "prev_hash", "hash"}


def test_an_export_writes_the_record_fields_in_their_defined_order(api, auditor, history, tmp_path):
    header = _export(api, auditor, "csv", tmp_path).open(newline="").readline()
    assert header.strip() == ",".join(chain.EXPORT_FIELDS)
    first = _export(api, auditor, "jsonl", tmp_path).open().readline()
    assert list(json.loads(first)) == sorted(chain.EXPORT_FIELDS)  # canonical: keys sorted


def test_one_tampered_byte_fails_naming_the_record(api, auditor, history, tmp_path):
    export = _export(api, auditor, "jsonl", tmp_path)
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if '"object_id":"1"' in line)
    record = json.loads(lines[victim])
    lines[victim] = lines[victim].replace('"object_id":"1"', '"object_id":"7"', 1)
    export.write_text("".join(lines), encoding="utf-8")

    result = _verify(tmp_path, export, history)
    assert result.returncode == 1
    assert f"seq {record['seq']} (event id {record['id']}" in result.stderr
    assert "changed content" in result.stderr


def test_a_chain_rewritten_after_the_tampered_record_fails_the_checkpoint(
    api, auditor, history, tmp_path
):
    """Re-linking every later hash makes the export self-consistent; the signed head is not."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import verify_audit_export as offline
    finally:
        sys.path.remove(str(SCRIPT.parent))
    export = _export(api, auditor, "jsonl", tmp_path)
    records = [json.loads(line) for line in export.open()]
    records[1]["object_repr"] = "forged"
    for index in range(1, len(records)):
        records[index]["prev_hash"] = records[index - 1]["hash"]
        records[index]["hash"] = offline.record_hash(records[index])
    export.write_text("".join(json.dumps(r) + "\n" for r in records))

    result = _verify(tmp_path, export, history)
    assert result.returncode == 1
    assert "differs from the signed checkpoint" in result.stderr


def test_a_checkpoint_signed_with_another_key_is_refused(api, auditor, history, tmp_path):
    export = _export(api, auditor, "jsonl", tmp_path)
    result = _verify(tmp_path, export, history, key="not-the-key")
    assert result.returncode == 1
    assert "MAC does not match" in result.stderr


def test_a_missing_record_is_named(api, auditor, history, tmp_path):
    export = _export(api, auditor, "jsonl", tmp_path)
    lines = export.read_text().splitlines(keepends=True)
    removed = json.loads(lines[2])["seq"]
    export.write_text("".join(lines[:2] + lines[3:]))
    result = _verify(tmp_path, export, history)
    assert result.returncode == 1
    assert f"seq {removed} is missing" in result.stderr


def test_a_checkpoint_signed_before_anything_was_sealed_holds_for_any_chain(
    api, auditor, history, tmp_path
):
    from audit import chain

    export = _export(api, auditor, "jsonl", tmp_path)
    empty = json.dumps(
        {"seq": 0, "hash": chain.GENESIS, "mac": chain.checkpoint_mac(KEY, 0, chain.GENESIS)}
    )
    result = _verify(tmp_path, export, empty)
    assert result.returncode == 0, result.stderr
    forged = json.dumps({"seq": 0, "hash": chain.GENESIS, "mac": "0" * 64})
    assert _verify(tmp_path, export, forged).returncode == 1
