"""The audit log: recorded once per change, sealed into a chain, append-only, verifiable."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit import selectors
from audit.maintenance import audit_maintenance
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_record, audit_record_many, audit_seal
from core import context
from registry import services
from tests.audit.sealing import seal_all

# Committed transactions, as in production: on PostgreSQL an event can be sealed only once no
# transaction that began before it is still running — the test's own included.
pytestmark = pytest.mark.django_db(transaction=True)


def _events(n, actor=None):
    for index in range(n):
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="test.event",
                object_type="test.thing",
                object_id=str(index),
                changes={"n": index, "x": 0.1 * index},
            )


def test_a_committed_change_has_exactly_one_event(owner):
    before = AuditEvent.objects.count()
    services.registered_model_create(actor=owner, name="kept")
    assert AuditEvent.objects.count() == before + 1


def test_a_change_that_rolls_back_leaves_no_event(owner):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.registered_model_create(actor=owner, name="doomed")
        raise RuntimeError("roll back")
    assert AuditEvent.objects.count() == before


def test_recording_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the writer's transaction"):
        audit_record(actor=None, action="test.event")


SHAPE = (
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


def test_recording_many_stores_what_recording_one_by_one_stores(owner, pipeline):
    model = services.registered_model_create(actor=owner, name="shape")
    records = [
        {"action": "test.many", "target": model, "changes": {"n": 1, "x": 0.1}},
        {"action": "test.many", "object_type": "test.thing", "object_id": "7", "changes": {}},
        {"action": "test.many", "target": model, "object_repr": "r" * 300},
    ]
    before = AuditEvent.objects.count()
    with context.bound(channel="api", remote_addr="10.0.0.1"), transaction.atomic():
        for record in records:
            audit_record(actor=pipeline, **record)
        returned = audit_record_many(actor=pipeline, records=records)
    one_by_one = list(AuditEvent.objects.order_by("id")[before : before + 3])
    many = list(AuditEvent.objects.order_by("id")[before + 3 :])
    assert [e.id for e in returned] == [e.id for e in many]
    assert len(many) == 3
    for a, b in zip(one_by_one, many, strict=True):
        assert {f: getattr(a, f) for f in SHAPE} == {f: getattr(b, f) for f in SHAPE}
        assert b.context.pop("request_id") and b.context == {"remote_addr": "10.0.0.1"}
    assert [e.object_repr for e in many] == [str(model), "", "r" * 200]
    seal_all()
    assert selectors.verify_chain().ok


def test_recording_many_stores_each_event_as_built(owner, pipeline):
    """Whatever the rows hold (no actor beside an actor, text a LIKE or an array literal would
    mangle, numbers past 64 bits), each stored event is the one built."""
    tricky = {
        "name": ["a", "b,c", '{"d"}', "\\e", "f'g", "NULL", "żółw 🐢"],
        "big": 2**70,
        "nested": {"x": [None, True, 1.5, {"y": []}]},
    }
    records = [
        {"action": "test.tricky", "object_id": "%_", "changes": tricky},
        {"action": "test.tricky", "object_repr": "NULL", "changes": {}},
    ]
    with context.bound(channel="api", remote_addr="10.0.0.1"), transaction.atomic():
        built = audit_record_many(actor=None, records=records[:1])
        built += audit_record_many(actor=pipeline, records=records)
    stored = AuditEvent.objects.in_bulk([event.id for event in built])
    assert len(stored) == 3
    for event in built:
        assert {f: getattr(stored[event.id], f) for f in SHAPE} == {
            f: getattr(event, f) for f in SHAPE
        }
    assert [stored[e.id].actor_id for e in built] == [None, pipeline.pk, pipeline.pk]
    seal_all()
    assert selectors.verify_chain().ok


def test_recording_many_needs_a_transaction_and_records_nothing_for_no_records(db):
    with pytest.raises(RuntimeError, match="inside the writer's transaction"):
        audit_record_many(actor=None, records=[{"action": "test.event"}])
    before = AuditEvent.objects.count()
    with transaction.atomic():
        assert audit_record_many(actor=None, records=[]) == []
    assert AuditEvent.objects.count() == before


def test_recording_many_that_rolls_back_leaves_no_event(db):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record_many(actor=None, records=[{"action": "test.event"}] * 3)
        raise RuntimeError("roll back")
    assert AuditEvent.objects.count() == before


def test_recording_many_in_batches_keeps_the_order(db, monkeypatch):
    from audit import services as audit_services

    monkeypatch.setattr(audit_services, "INSERT_BATCH", 2)
    with transaction.atomic():
        events = audit_record_many(
            actor=None,
            records=[{"action": "test.batch", "object_id": str(i)} for i in range(5)],
        )
    stored = list(AuditEvent.objects.filter(action="test.batch").order_by("id"))
    assert [e.object_id for e in stored] == ["0", "1", "2", "3", "4"]
    assert [e.id for e in events] == [e.id for e in stored]
    seal_all()
    assert selectors.verify_chain().ok


def test_a_transaction_seals_once_after_it_commits(db, monkeypatch, settings):
    from audit import services as audit_services

    settings.AUDIT_SEAL_ON_COMMIT, settings.AUDIT_SEAL_INTERVAL = True, 0.0
    seals = []
    monkeypatch.setattr(audit_services, "audit_seal", lambda **kwargs: seals.append(kwargs))
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_record(actor=None, action="test.dropped")
            raise RuntimeError("roll back the savepoint")
        assert seals == []
        audit_record(actor=None, action="test.kept", object_id="1")
        audit_record_many(actor=None, records=[{"action": "test.kept", "object_id": "2"}])
    assert len(seals) == 1  # three hooks registered, the first sealed for all
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.dropped")
        raise RuntimeError("roll back")
    assert len(seals) == 1
    with transaction.atomic():
        audit_record(actor=None, action="test.kept", object_id="3")
    assert len(seals) == 2


def test_sealing_numbers_events_without_gaps_and_links_them(db):
    _events(5)
    result = seal_all()
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [s.seq for s in seals] == list(range(1, len(seals) + 1))
    assert result.head_seq == len(seals) >= 5
    assert seals[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(seals, seals[1:], strict=False))
    assert selectors.verify_chain().ok


def test_sealing_twice_seals_nothing_new(db):
    _events(3)
    seal_all()
    assert audit_seal().sealed == 0


def test_pending_events_are_visible_until_sealed(db, api, auditor, settings):
    settings.AUDIT_SEAL_ON_COMMIT = False
    _events(2)
    assert selectors.pending_count() >= 2
    body = api(auditor).get("/api/v1/audit/events").json()
    assert body["results"][0]["sealed"] is False and body["results"][0]["seq"] is None
    seal_all()
    assert selectors.pending_count() == 0


# --- append-only in the database ---------------------------------------------------------


def _raw(sql):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditseal"])
def test_raw_sql_update_of_audit_rows_is_refused(db, table):
    _events(1)
    seal_all()
    column = "action" if table == "audit_auditevent" else "hash"
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"UPDATE {table} SET {column} = 'forged'")


@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditseal"])
def test_raw_sql_delete_of_audit_rows_is_refused(db, table):
    _events(1)
    seal_all()
    with pytest.raises((DatabaseError, IntegrityError), match="append-only"):
        _raw(f"DELETE FROM {table}")


@pytest.mark.postgres
def test_truncate_of_the_audit_log_is_refused(db):
    _events(1)
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("TRUNCATE audit_auditevent CASCADE")


def test_queryset_update_bulk_update_and_delete_are_refused(db):
    _events(2)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.update(action="forged")
    events = list(AuditEvent.objects.all())
    for event in events:
        event.action = "forged"
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.bulk_update(events, ["action"])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert not AuditEvent.objects.filter(action="forged").exists()


def test_the_admin_names_events_no_user_made_in_the_list_and_its_actor_filter(
    client, superuser, owner
):
    _events(1)  # no actor: the system's own
    _events(1, actor=owner)
    client.force_login(superuser)
    html = client.get("/admin/audit/auditevent/").content.decode()
    assert html.count("(none: the system)") >= 2  # a row and the filter's entry
    assert '<a href="?actor_username=">(none: the system)</a>' in html
    assert f'<a href="?actor_username={owner.username}">{owner.username}</a>' in html
    listed = client.get("/admin/audit/auditevent/?actor_username=").content.decode()
    assert "test.event" in listed and f'<td class="field-actor_name">{owner.username}' not in listed


def _exported(response) -> list[dict]:
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def test_the_admin_exports_the_events_its_list_shows(client, auditor, owner):
    _events(3)
    _events(2, actor=owner)
    seal_all()
    client.force_login(auditor)
    listing = f"?action=test.event&actor_username={owner.username}"  # as the list sorts it
    page = client.get(f"/admin/audit/auditevent/{listing}").content.decode()
    link = f'href="/admin/audit/auditevent/export/{listing.replace("&", "&amp;")}&amp;format=jsonl"'
    assert link in page and "Export these events (JSONL)" in page
    records = _exported(client.get(f"/admin/audit/auditevent/export/{listing}&format=jsonl"))
    assert [(r["actor_username"], r["object_id"]) for r in records] == [
        (owner.username, "0"),
        (owner.username, "1"),
    ]
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)  # chain order
    recorded = AuditEvent.objects.get(action="audit.export.created", actor=auditor)
    assert recorded.changes == {
        "format": "jsonl",
        "filters": {"action": ["test.event"], "actor_username": [owner.username]},
    }
    # a search and a date narrow it as they narrow the list
    searched = _exported(client.get("/admin/audit/auditevent/export/?q=test.event&format=jsonl"))
    assert len(searched) == 5
    year = timezone.now().year
    dated = client.get(f"/admin/audit/auditevent/export/?occurred_at__year={year - 1}&format=csv")
    assert b"".join(dated.streaming_content).decode().count("\n") == 1  # the header alone


def test_the_unfiltered_admin_list_offers_the_whole_log_only(client, auditor):
    _events(1)
    client.force_login(auditor)
    page = client.get("/admin/audit/auditevent/").content.decode()
    assert 'id="export-jsonl"' in page and "Export these events" not in page


def test_the_admin_export_refuses_bad_requests_and_records_nothing(client, auditor, owner):
    _events(1)
    client.force_login(auditor)
    bad_format = client.get("/admin/audit/auditevent/export/?format=xml")
    bad_filter = client.get("/admin/audit/auditevent/export/?no_such_field=1&format=jsonl")
    assert (bad_format.status_code, bad_filter.status_code) == (400, 400)
    assert b"format must be jsonl or csv" in bad_format.content
    client.force_login(owner)  # not an auditor
    assert client.get("/admin/audit/auditevent/export/?format=jsonl").status_code == 403
    assert not AuditEvent.objects.filter(action="audit.export.created").exists()


def test_the_admin_offers_no_add_change_or_delete(client, superuser):
    _events(1)
    event = AuditEvent.objects.first()
    client.force_login(superuser)
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


# --- tampering -----------------------------------------------------------------------------


def _tamper(sql, params=()):
    """What an administrator with the database's superuser could do, triggers switched off."""
    with audit_maintenance(connection), transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Skips every trigger, ours included: a superuser's power, not the application's.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_changing_one_field_of_one_event_is_named_by_seq(db, capsys):
    _events(6)
    seal_all()
    target = AuditSeal.objects.get(seq=4)
    _tamper("UPDATE audit_auditevent SET object_repr = 'forged' WHERE id = %s", [target.event_id])
    with pytest.raises(CommandError, match="BROKEN at seq 4: changed content"):
        call_command("audit_verify")
    assert "checked 3 events" in capsys.readouterr().out


def test_deleting_one_event_reports_the_missing_seq(db):
    _events(6)
    seal_all()
    target = AuditSeal.objects.get(seq=3)
    _tamper("DELETE FROM audit_auditseal WHERE seq = 3")
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [target.event_id])
    result = selectors.verify_chain()
    assert not result.ok and result.broken_seq == 3 and "missing seq 3" in result.reason


def test_a_forged_chain_relinked_from_the_middle_fails_the_checkpoint(db, settings):
    from audit import chain

    settings.AUDIT_SIGNING_KEY = "auditor-secret"
    _events(6)
    seal_all()
    call_command("audit_checkpoint")
    checkpoint = json.loads(_last_line_of_checkpoint())
    # Rewrite event 3 and re-link every hash after it, so the chain is internally consistent.
    seals = list(AuditSeal.objects.order_by("seq").values("seq", "event_id", "hash"))
    _tamper(
        "UPDATE audit_auditevent SET object_repr = 'forged' WHERE id = %s", [seals[2]["event_id"]]
    )
    previous = seals[1]["hash"]
    for seal in AuditSeal.objects.filter(seq__gte=3).order_by("seq").select_related("event"):
        event = {f: getattr(seal.event, f) for f in chain.FIELDS}
        digest = chain.link(previous, seal.seq, event)
        _tamper(
            "UPDATE audit_auditseal SET prev_hash = %s, hash = %s WHERE seq = %s",
            [previous, digest, seal.seq],
        )
        previous = digest
    assert selectors.verify_chain().ok  # the forgery is consistent with itself…
    with pytest.raises(CommandError, match="rewritten"):  # …but not with the checkpoint
        call_command("audit_verify", "--checkpoint", json.dumps(checkpoint))


def _last_line_of_checkpoint():
    from audit.models import AuditCheckpoint

    cp = AuditCheckpoint.objects.order_by("-id").first()
    return json.dumps({"seq": cp.seq, "hash": cp.hash, "mac": cp.mac})


def test_a_checkpoint_with_a_wrong_signature_is_refused(db, settings):
    settings.AUDIT_SIGNING_KEY = "auditor-secret"
    _events(2)
    seal_all()
    call_command("audit_checkpoint")
    data = json.loads(_last_line_of_checkpoint())
    data["mac"] = "0" * 64
    with pytest.raises(CommandError, match="signature"):
        call_command("audit_verify", "--checkpoint", json.dumps(data))


def test_an_intact_chain_verifies_against_its_checkpoint(db, settings, capsys):
    settings.AUDIT_SIGNING_KEY = "auditor-secret"
    _events(3)
    seal_all()
    call_command("audit_checkpoint")
    _events(2)
    call_command("audit_verify", "--checkpoint", _last_line_of_checkpoint())
    assert "audit chain intact" in capsys.readouterr().out


def test_verify_from_a_seq(db):
    _events(5)
    seal_all()
    result = selectors.verify_chain(from_seq=3)
    assert result.ok and result.checked == AuditSeal.objects.count() - 2


# --- reading and exporting -----------------------------------------------------------------


def test_auditors_search_by_object_actor_action_prefix_and_time(api, auditor, owner):
    model = services.registered_model_create(actor=owner, name="m1")
    services.registered_model_update(actor=owner, model=model, data={"description": "x"})
    client = api(auditor)
    body = client.get(
        "/api/v1/audit/events",
        {
            "object_type": "registry.registeredmodel",
            "object_id": model.pk,
            "action": "registry.registered_model",
        },
    ).json()
    assert [e["action"] for e in body["results"]] == [
        "registry.registered_model.updated",
        "registry.registered_model.created",
    ]
    assert client.get("/api/v1/audit/events", {"actor": "nobody"}).json()["results"] == []
    assert (
        client.get("/api/v1/audit/events", {"since": "2999-01-01T00:00:00Z"}).json()["results"]
        == []
    )


def test_the_log_is_for_auditors_only(api, owner, risk_officer):
    assert api(owner).get("/api/v1/audit/events").status_code == 403
    assert api(risk_officer).get("/api/v1/audit/verify").status_code == 403
    assert api().get("/api/v1/audit/events").status_code == 401


def test_cursor_pagination_walks_the_whole_log(api, auditor):
    _events(7)
    client = api(auditor)
    seen, url = [], "/api/v1/audit/events?page_size=3&action=test."
    while url:
        body = client.get(url).json()
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
    assert len(seen) == 7 == len(set(seen))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_and_is_itself_recorded(api, auditor, fmt):
    _events(4)
    seal_all()
    response = api(auditor).get(f"/api/v1/audit/events/export?format={fmt}&action=test.")
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    lines = [line for line in body.splitlines() if line]
    assert len(lines) == 4 + (1 if fmt == "csv" else 0)
    if fmt == "jsonl":
        assert json.loads(lines[0])["hash"]
    assert AuditEvent.objects.filter(action="audit.export.created", actor=auditor).count() == 1


def test_verify_endpoint_only_reads_and_reports_what_is_not_sealed(api, auditor, settings):
    settings.AUDIT_SEAL_ON_COMMIT = False
    client = api(auditor)  # the token is minted (and audited) first
    seal_all()
    sealed = AuditSeal.objects.count()
    _events(3)
    body = client.get("/api/v1/audit/verify").json()
    assert AuditSeal.objects.count() == sealed  # a GET seals nothing
    assert body["ok"] is True
    assert body["checked"] == sealed == body["head_seq"]
    assert body["pending"] >= 3 and body["pending_age_seconds"] is not None
    seal_all()
    body = client.get("/api/v1/audit/verify").json()
    assert body["ok"] is True and body["pending"] == 0
    assert body["checked"] == body["head_seq"] == AuditEvent.objects.count() >= 3


@pytest.mark.postgres
def test_the_application_role_cannot_rewrite_or_unprotect_the_log(db):
    """The role audit_db_role describes can append, but neither change nor disable triggers."""
    from io import StringIO

    out = StringIO()
    call_command("audit_db_role", "modelgov_test_app", stdout=out)
    _events(1)
    with connection.cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS modelgov_test_app")
        for statement in out.getvalue().splitlines():
            if statement and not statement.startswith("--"):
                cursor.execute(statement)
    try:
        for sql, expected in [
            (
                "INSERT INTO audit_auditcheckpoint (seq, hash, mac, created_at) "
                "VALUES (0, 'x', 'y', now())",
                None,
            ),
            ("UPDATE audit_auditevent SET action = 'forged'", "permission denied"),
            ("ALTER TABLE audit_auditevent DISABLE TRIGGER USER", "must be owner"),
            ("TRUNCATE audit_auditevent", "permission denied"),
        ]:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL ROLE modelgov_test_app")
                if expected is None:
                    cursor.execute(sql)
                else:
                    with pytest.raises(DatabaseError, match=expected):
                        cursor.execute(sql)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP OWNED BY modelgov_test_app")
            cursor.execute("DROP ROLE modelgov_test_app")


def test_the_role_sql_is_refused_on_a_database_other_than_postgresql(db, monkeypatch):
    from io import StringIO

    from django.core.management.base import CommandError

    monkeypatch.setattr(connection, "vendor", "sqlite")
    out = StringIO()
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("audit_db_role", "modelgov_app", stdout=out)
    assert out.getvalue() == ""


def test_the_role_sql_quotes_a_password_holding_quotes(db, monkeypatch):
    from io import StringIO

    monkeypatch.setattr(connection, "vendor", "postgresql")
    out = StringIO()
    call_command(
        "audit_db_role", "modelgov_app", "--password", "it's'; DROP TABLE x; --", stdout=out
    )
    create = out.getvalue().splitlines()[0]
    assert create == (
        "CREATE ROLE modelgov_app LOGIN PASSWORD 'it''s''; DROP TABLE x; --' "
        "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;"
    )


def test_verify_endpoint_checks_a_checkpoint(api, auditor, settings):
    settings.AUDIT_SIGNING_KEY = "auditor-secret"
    _events(2)
    seal_all()
    call_command("audit_checkpoint", stdout=StringIO())
    client = api(auditor)
    good = client.get("/api/v1/audit/verify", {"checkpoint": _last_line_of_checkpoint()})
    assert good.json()["ok"] is True
    forged = json.loads(_last_line_of_checkpoint()) | {"hash": "f" * 64}
    bad = client.get("/api/v1/audit/verify", {"checkpoint": json.dumps(forged)}).json()
    assert bad["ok"] is False and "signature" in bad["reason"]
    assert client.get("/api/v1/audit/verify", {"checkpoint": "nope"}).status_code == 400


@pytest.mark.parametrize(
    "checkpoint",
    [
        '{"seq": 1e999, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
        '{"seq": 1e400, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
        '{"seq": 99999999999999999999999, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
        '{"seq": 1.5, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
        '{"seq": true, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
        '{"seq": 1, "hash": "\\ud800", "mac": "' + "b" * 64 + '"}',
        '{"seq": 1, "hash": "' + "a" * 64 + '", "mac": "\\u00e9' + "b" * 63 + '"}',
        "[1, 2]",
        '"seq"',
    ],
)
def test_verify_endpoint_refuses_a_malformed_checkpoint(api, auditor, settings, checkpoint):
    settings.AUDIT_SIGNING_KEY = "auditor-secret"
    response = api(auditor).get("/api/v1/audit/verify", {"checkpoint": checkpoint})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "checkpoint"


@pytest.mark.parametrize("value", ["99999999999999999999999", "0", "-3"])
def test_verify_endpoint_refuses_an_out_of_range_from(api, auditor, value):
    response = api(auditor).get("/api/v1/audit/verify", {"from": value})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "from"


def test_verify_command_refuses_a_malformed_checkpoint():
    with pytest.raises(CommandError, match="seq must be a whole number"):
        call_command(
            "audit_verify",
            "--checkpoint",
            '{"seq": 1e999, "hash": "' + "a" * 64 + '", "mac": "' + "b" * 64 + '"}',
            stdout=StringIO(),
        )


_RAW_EVENT = (
    "INSERT INTO audit_auditevent (id, occurred_at, actor_id, actor_username, actor_kind, "
    "channel, action, object_type, object_id, object_repr, changes, context, txid) VALUES "
    "(%s, %s, NULL, '', 'system', 'system', 'forged.event', '', '', '', '{}', '{}', %s)"
)


@pytest.mark.postgres
@pytest.mark.parametrize("txid", [None, 1])
def test_the_database_sets_every_events_transaction_id(txid):
    """A row inserted around audit_record, without a transaction id or with a made-up one,
    still gets the inserting transaction's: the sealer reaches it like any other."""
    _events(1)
    seal_all()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (current,) = cursor.fetchone()
        cursor.execute(
            _RAW_EVENT.replace("(%s, ", "(DEFAULT, ", 1) + " RETURNING txid",
            [timezone.now(), txid],
        )
        (stored,) = cursor.fetchone()
    assert stored == current
    seal_all()
    result = selectors.verify_chain()
    assert result.ok and result.pending == 0


def test_verify_counts_and_reports_an_event_the_sealer_will_never_reach(settings):
    settings.AUDIT_SEAL_ON_COMMIT = False
    _events(3)
    seal_all()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # As the tables' owner with triggers off: a row dated before the chain's head.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(_RAW_EVENT, [-1, timezone.now(), 1])
    seal_all(timeout=1)
    result = selectors.verify_chain()
    assert result.ok is False
    assert result.pending == 1
    assert "event id -1 is not sealed and never will be" in result.reason
    with pytest.raises(CommandError, match="BROKEN: event id -1"):
        call_command("audit_verify", stdout=StringIO())
