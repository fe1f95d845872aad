"""The canonical form the sealer and verifier assemble from raw rows is the defined one."""

import pytest
from django.db import connection, transaction

from audit import chain
from audit.models import AuditEvent
from audit.services import audit_record
from core.canonical import canonical_json

PAYLOADS = [
    {},
    {"name": [None, "crédit — scoring ✓"], "quote": 'say "hi"\n\t\\'},
    {"auc": [0.1, 0.87], "big": 1e20, "tiny": 5e-324, "int": 10**18, "neg": -0.0},
    {"nested": {"b": [1, {"z": True, "a": None}], "a": "x"}, "empty": [], "e": {}},
    {"emoji": "🙂", "control": "\u0001", "nul_free": "ok"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("changes", PAYLOADS)
def test_the_document_built_from_a_raw_row_equals_the_canonical_definition(owner, changes):
    with transaction.atomic():
        event = audit_record(
            actor=owner, action="test.event", object_repr="ünïcode", changes=changes
        )
    orm_row = AuditEvent.objects.values(*chain.FIELDS).get(pk=event.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {chain.event_columns(connection.vendor)} FROM audit_auditevent e "
            "WHERE e.id = %s",
            [event.pk],
        )
        raw_row = cursor.fetchone()
    assert chain.document(7, raw_row) == chain.event_document(7, orm_row)


def test_the_canonical_document_sorts_keys_and_formats_time_in_utc_microseconds():
    from datetime import datetime, timedelta, timezone

    row = {f: "" for f in chain.FIELDS} | {
        "id": 3,
        "actor_id": None,
        "changes": {"b": 1, "a": 0.5},
        "context": {},
        "occurred_at": datetime(2026, 1, 2, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=1))),
    }
    text = chain.event_document(1, row)
    assert '"occurred_at":"2026-01-02T03:05:06.000007Z"' in text
    assert '"changes":{"a":0.5,"b":1}' in text
    assert text == canonical_json({**row, "seq": 1})
    assert text.index('"action"') < text.index('"seq"')


@pytest.mark.django_db
def test_a_non_finite_number_in_changes_is_refused_before_it_reaches_the_log(owner):
    with pytest.raises(ValueError), transaction.atomic():
        audit_record(actor=owner, action="test.event", changes={"auc": float("nan")})
    assert not AuditEvent.objects.filter(action="test.event").exists()
