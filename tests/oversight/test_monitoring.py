"""Monitoring ingest (strict, all-or-nothing, permission-checked, audited), threshold
breaches opening alerts and filing re-validation requests by the system account."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext

from approvals import permissions as approval_permissions
from approvals import services as approvals
from approvals.models import PromotionRequest
from audit.models import AuditEvent
from core.errors import Conflict
from oversight import monitoring, permissions, services
from oversight.models import MonitoringAlert, MonitoringPoint
from registry.services import model_permission_grant
from tests.oversight.conftest import point
from tests.webhooks.conftest import receiver_fixture  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.django_db


def _url(version):
    return f"/api/v1/models/{version.model.name}/versions/{version.version}/monitoring"


_capture = None


@pytest.fixture(autouse=True)
def _run_after_commit(django_capture_on_commit_callbacks):
    """What services queue after commit runs when the test's request returns (the test's
    transaction never commits; tasks are eager in the embedded default)."""
    global _capture
    _capture = django_capture_on_commit_callbacks


def _post(client, version, points):
    with _capture(execute=True):
        return client.post(_url(version), {"points": points}, format="json")


# --- ingest -----------------------------------------------------------------------------------


def test_owner_posts_a_batch_recorded_with_one_audit_event(api, owner, credit_version):
    before = AuditEvent.objects.count()
    batch = [point("auc", 0.81), point("psi", 0.1, segment="income"), point("latency_ms", 42)]
    response = _post(api(owner), credit_version, batch)
    assert response.status_code == 201, response.content
    assert response.json()["recorded"] == 3
    rows = list(MonitoringPoint.objects.order_by("id").values_list("metric", "segment", "value"))
    assert rows == [("auc", "", 0.81), ("psi", "income", 0.1), ("latency_ms", "", 42.0)]
    event = AuditEvent.objects.order_by("id")[before:].get()
    assert (event.action, event.object_type, event.object_id, event.changes["points"]) == (
        "oversight.monitoring.recorded",
        "oversight.monitoring",
        str(credit_version.pk),
        3,
    )


def test_pipeline_with_a_change_grant_may_post(api, owner, pipeline, credit_version):
    response = api(owner).post(
        "/api/v1/models/credit-scoring/grants/",
        {"user": pipeline.username, "permission": "change_registeredmodel"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert _post(api(pipeline), credit_version, [point()]).status_code == 201


def test_a_viewer_who_may_not_change_the_model_gets_403(api, validator, credit_version):
    response = _post(api(validator), credit_version, [point()])
    assert response.status_code == 403
    assert not MonitoringPoint.objects.exists()


def test_a_hidden_model_is_404_and_unknown_versions_too(api, outsider, owner, credit_version):
    assert _post(api(outsider), credit_version, [point()]).status_code == 404
    assert api(outsider).get(_url(credit_version)).status_code == 404
    response = api(owner).post(
        "/api/v1/models/credit-scoring/versions/99/monitoring", {"points": [point()]}, format="json"
    )
    assert response.status_code == 404
    assert not MonitoringPoint.objects.exists()


def test_anonymous_is_401(api, credit_version):
    assert _post(api(), credit_version, [point()]).status_code == 401


BAD = [
    ([point(value="0.8")], "points.0.value"),
    ([point(value=True)], "points.0.value"),
    ([point(value=None)], "points.0.value"),
    ([point(value=10**400)], "points.0.value"),  # beyond a float: JSON gives a Python int
    ([point(value=-(10**400))], "points.0.value"),
    ([point(metric="")], "points.0.metric"),
    ([point(metric="a b")], "points.0.metric"),
    ([point(metric="m" * 101)], "points.0.metric"),
    ([point(metric=3)], "points.0.metric"),
    ([point(metric=["auc"])], "points.0.metric"),  # after a valid "auc"
    ([point(start="yesterday")], "points.0.window_start"),
    ([point(end="2026-13-01T00:00:00Z")], "points.0.window_end"),
    ([point(start="2026-11-03T00:00:00Z")], "points.0.window_end"),
    ([point(segment=5)], "points.0.segment"),
    ([point(segment=False)], "points.0.segment"),
    ([point(segment="s" * 201)], "points.0.segment"),
    ([{**point(), "extra": 1}], "points.0.extra"),
    ([{"metric": "auc", "value": 1}], "points.0.window_start"),
    ([point(), "not an object"], "points.1"),
    ([], "points"),
]


@pytest.mark.parametrize("points,field", BAD)
def test_bad_points_are_400_and_the_whole_batch_is_refused(
    api, owner, credit_version, points, field
):
    before = AuditEvent.objects.count()
    good_then_bad = [point("auc", 0.9), *points] if points else points
    if field and field.startswith("points.") and points:
        index = int(field.split(".")[1]) + 1
        field = ".".join(["points", str(index), *field.split(".")[2:]])
    response = _post(api(owner), credit_version, good_then_bad)
    assert response.status_code == 400, response.content
    if field:
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert not MonitoringPoint.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "body,field",
    [({"points": [point()], "more": 1}, "more"), ({"pts": []}, "pts"), ([point()], None)],
)
def test_a_body_that_is_not_a_batch_is_400(api, owner, credit_version, body, field):
    response = api(owner).post(_url(credit_version), body, format="json")
    assert response.status_code == 400
    if field:
        assert field in [e["field"] for e in response.json()["errors"]]
    assert not MonitoringPoint.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        "{nope",
        '{"points": [{"metric": "auc", "value": NaN, "window_start": "2026-11-01T00:00:00Z", '
        '"window_end": "2026-11-01T00:00:00Z"}]}',
        "",
    ],
)
def test_malformed_json_and_nan_are_400(api, owner, credit_version, raw):
    response = api(owner).post(_url(credit_version), raw, content_type="application/json")
    assert response.status_code == 400
    assert not MonitoringPoint.objects.exists()


def test_a_batch_over_the_limit_is_413(api, owner, credit_version, settings):
    settings.OVERSIGHT_MAX_POINTS = 3
    response = _post(api(owner), credit_version, [point()] * 4)
    assert response.status_code == 413
    assert not MonitoringPoint.objects.exists()


def test_an_archived_model_takes_no_monitoring(api, owner, credit_version):
    api(owner).delete("/api/v1/models/credit-scoring/")
    assert _post(api(owner), credit_version, [point()]).status_code == 409
    assert not MonitoringPoint.objects.exists()


def test_points_are_listed_and_filtered(api, owner, validator, credit_version):
    _post(api(owner), credit_version, [point("auc", 0.8), point("psi", 0.2, segment="age")])
    data = api(validator).get(_url(credit_version) + "?metric=psi").json()
    assert [(p["metric"], p["segment"], p["value"]) for p in data["results"]] == [
        ("psi", "age", 0.2)
    ]
    assert api(validator).get(_url(credit_version) + "?since=garbage").status_code == 400


def test_naive_times_are_read_as_utc():
    (parsed,) = monitoring.parse_batch(
        {"points": [point(start="2026-11-01T00:00:00", end="2026-11-01T01:00:00")]}, max_points=5
    )
    assert parsed.window_start.utcoffset().total_seconds() == 0


def test_points_are_stored_as_sent_and_answered_in_the_batch_order(owner, credit_version):
    from datetime import UTC, datetime, timedelta, timezone

    from oversight.monitoring import Point

    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=plus_two)
    points = [
        Point("auc", 0.8125, start, start + timedelta(hours=1), "income"),
        Point("latency_ms", 180, start, start + timedelta(minutes=90)),  # an int, as callers pass
        Point("psi", -0.5, start - timedelta(days=1), start),
    ]
    batch = services.monitoring_points_record(actor=owner, version=credit_version, points=points)
    stored = {p.pk: p for p in MonitoringPoint.objects.all()}
    assert set(stored) == set(batch.ids) and batch.ids == sorted(batch.ids)
    rows = [stored[pk] for pk in batch.ids]
    assert [(p.version_id, p.metric, p.segment, p.value) for p in rows] == [
        (credit_version.pk, "auc", "income", 0.8125),
        (credit_version.pk, "latency_ms", "", 180.0),
        (credit_version.pk, "psi", "", -0.5),
    ]
    assert [(p.window_start, p.window_end) for p in rows] == [
        (start, start + timedelta(hours=1)),
        (start, start + timedelta(minutes=90)),
        (start - timedelta(days=1), start),
    ]
    assert rows[0].window_start.astimezone(UTC).hour == 6  # 08:00 at +02:00
    assert len({p.recorded_at for p in rows}) == 1 and rows[0].recorded_at.tzinfo is not None


def test_the_point_insert_names_every_column_of_a_point():
    """On PostgreSQL a batch is inserted by a fixed statement: a column added to the model
    must be added to it."""
    from oversight.services.monitoring import _INSERT_POINTS

    named = _INSERT_POINTS.split("(", 1)[1].split(")", 1)[0]
    columns = {f.column for f in MonitoringPoint._meta.concrete_fields if not f.primary_key}
    assert {c.strip() for c in named.split(",")} == columns


@pytest.mark.postgres
def test_points_are_append_only_in_the_database(api, owner, credit_version):
    _post(api(owner), credit_version, [point()])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MonitoringPoint.objects.update(value=0.1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MonitoringPoint.objects.all().delete()
    assert MonitoringPoint.objects.get().value == 0.8
    assert connection.vendor == "postgresql"


# --- thresholds, alerts, re-validation --------------------------------------------------------


def test_a_breach_opens_an_alert_and_files_a_revalidation_by_the_system(
    api, owner, production_version, rule
):
    rule("auc", "lt", 0.75, revalidate=True)
    mail.outbox.clear()
    response = _post(api(owner), production_version, [point("auc", 0.8), point("auc", 0.7)])
    assert response.json()["breaching"] == 1
    alert = MonitoringAlert.objects.get()
    assert (alert.metric, alert.value, alert.status, alert.breaches) == ("auc", 0.7, "open", 1)
    request = alert.revalidation_request
    assert (request.from_stage, request.to_stage, request.status) == (
        "production",
        "staging",
        "pending",
    )
    assert request.requester.username == approval_permissions.SYSTEM_USERNAME
    assert approval_permissions.is_system_account(request.requester)
    opened = AuditEvent.objects.get(action="oversight.monitoring_alert.opened")
    assert opened.actor_id is None and opened.changes["revalidation_request"] == request.pk
    filed = AuditEvent.objects.get(
        action="approvals.promotion_request.filed", object_id=str(request.pk)
    )
    assert filed.actor_username == approval_permissions.SYSTEM_USERNAME
    alert_mail = [m for m in mail.outbox if "Monitoring alert" in m.subject]
    assert len(alert_mail) == 1
    assert {
        "owner-scientist@example.com",
        "validator@example.com",
        "risk-officer-1@example.com",
    } <= set(alert_mail[0].to)


def test_people_decide_the_revalidation_as_usual(
    api, owner, production_version, rule, approvers, decide
):
    rule("auc", "lt", 0.75, revalidate=True)
    _post(api(owner), production_version, [point("auc", 0.6)])
    request = MonitoringAlert.objects.get().revalidation_request
    decide(request, approvers["validator"])
    production_version.refresh_from_db()
    assert production_version.stage == "staging"


def test_the_system_account_can_neither_decide_nor_sign_in(production_version, rule, api, owner):
    rule("auc", "lt", 0.75, revalidate=True)
    _post(api(owner), production_version, [point("auc", 0.6)])
    system = approvals.system_account()
    assert not system.has_usable_password()
    request = MonitoringAlert.objects.get().revalidation_request
    with pytest.raises(PermissionDenied):
        approvals.promotion_decide(actor=system, request=request, outcome="approve", comment="x")


def test_further_breaches_count_on_the_open_alert(api, owner, production_version, rule):
    rule("psi", "gt", 0.25, revalidate=True)
    _post(api(owner), production_version, [point("psi", 0.3, segment="age")])
    _post(api(owner), production_version, [point("psi", 0.4, segment="income"), point("psi", 0.5)])
    alert = MonitoringAlert.objects.get()
    assert alert.breaches == 3
    assert PromotionRequest.objects.filter(to_stage="staging", from_stage="production").count() == 1


def test_evaluating_the_same_points_again_changes_nothing(api, owner, production_version, rule):
    rule("auc", "lt", 0.75)
    _post(api(owner), production_version, [point("auc", 0.6)])
    ids = list(MonitoringPoint.objects.values_list("pk", flat=True))
    events = AuditEvent.objects.count()
    assert (
        services.monitoring_breaches_evaluate(version_id=production_version.pk, point_ids=ids) == []
    )
    assert MonitoringAlert.objects.get().breaches == 1
    assert AuditEvent.objects.count() == events


def test_a_rule_for_a_segment_ignores_other_segments(api, owner, production_version, rule):
    rule("psi", "gt", 0.25, segment="income")
    response = _post(api(owner), production_version, [point("psi", 0.9, segment="age")])
    assert response.json()["breaching"] == 0
    assert not MonitoringAlert.objects.exists()


def test_a_risk_tier_rule_applies_to_the_tiers_models(api, owner, production_version, rule):
    rule("latency_ms", "ge", 500, model=None, risk_tier="high")
    _post(api(owner), production_version, [point("latency_ms", 500)])
    assert MonitoringAlert.objects.get().metric == "latency_ms"


def test_an_alert_without_revalidation_files_nothing(api, owner, production_version, rule):
    rule("auc", "lt", 0.75, revalidate=False)
    _post(api(owner), production_version, [point("auc", 0.5)])
    alert = MonitoringAlert.objects.get()
    assert alert.revalidation_request is None and alert.revalidation_note == ""
    assert not PromotionRequest.objects.filter(from_stage="production").exists()


def test_a_breach_outside_production_opens_an_alert_but_files_nothing(
    api, owner, credit_version, rule
):
    rule("auc", "lt", 0.75, revalidate=True)
    _post(api(owner), credit_version, [point("auc", 0.5)])
    alert = MonitoringAlert.objects.get()
    assert alert.revalidation_request is None
    assert "development" in alert.revalidation_note


def test_when_approvals_refuses_the_filing_the_alert_says_why(
    api, owner, production_version, rule, file
):
    # A withdrawal is already pending: approvals refuses a second request for the version.
    file(production_version, "archived")
    rule("auc", "lt", 0.75, revalidate=True)
    before = PromotionRequest.objects.count()
    _post(api(owner), production_version, [point("auc", 0.5)])
    alert = MonitoringAlert.objects.get()
    assert alert.revalidation_request is None
    assert alert.revalidation_note.startswith("Not filed:") and "pending" in alert.revalidation_note
    assert PromotionRequest.objects.count() == before
    event = AuditEvent.objects.get(action="oversight.monitoring_alert.opened")
    assert event.changes["revalidation_note"] == alert.revalidation_note


def test_a_request_nobody_may_decide_is_refused_and_the_alert_records_it(
    api, owner, production_version, rule, monkeypatch
):
    """Approvals may refuse a request that no one (and no fallback approver) could decide;
    whatever approvals refuses, the alert stays open with the reason and nothing is filed."""

    def refuse(**kwargs):
        raise Conflict("No one may decide this request and no fallback approver is set.")

    monkeypatch.setattr(approvals, "promotion_request_file", refuse)
    rule("auc", "lt", 0.75, revalidate=True)
    before = PromotionRequest.objects.count()
    _post(api(owner), production_version, [point("auc", 0.5)])
    alert = MonitoringAlert.objects.get()
    assert alert.status == "open" and alert.revalidation_request is None
    assert "no fallback approver" in alert.revalidation_note
    assert PromotionRequest.objects.count() == before


def test_alert_resolution_needs_a_comment_and_the_right_person(
    api, owner, outsider, validator, production_version, rule
):
    rule("auc", "lt", 0.75)
    _post(api(owner), production_version, [point("auc", 0.5)])
    alert = MonitoringAlert.objects.get()
    url = f"/api/v1/monitoring-alerts/{alert.pk}/resolve"
    assert api(outsider).post(url, {"comment": "x"}, format="json").status_code == 404
    assert api(owner).post(url, {}, format="json").status_code == 400
    response = api(validator).post(url, {"comment": "Recalibrated."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "resolved"
    assert api(validator).post(url, {"comment": "again"}, format="json").status_code == 409


def test_alerts_are_listed_for_those_who_see_the_model(
    api, owner, outsider, auditor, production_version, rule
):
    rule("auc", "lt", 0.75)
    _post(api(owner), production_version, [point("auc", 0.5)])
    listed = api(auditor).get("/api/v1/monitoring-alerts?status=open").json()["results"]
    assert [(a["model"], a["metric"]) for a in listed] == [("credit-scoring", "auc")]
    assert api(outsider).get("/api/v1/monitoring-alerts").json()["results"] == []


def test_rules_are_edited_by_risk_officers_only_and_audited(risk_officer, owner, credit_model):
    from django.core.exceptions import ValidationError

    with pytest.raises(PermissionDenied):
        services.threshold_rule_create(
            actor=owner, model=credit_model, metric="auc", comparator="lt", threshold=0.7
        )
    with pytest.raises(ValidationError):
        services.threshold_rule_create(
            actor=risk_officer,
            model=credit_model,
            risk_tier="high",
            metric="auc",
            comparator="lt",
            threshold=0.7,
        )
    rule = services.threshold_rule_create(
        actor=risk_officer, model=credit_model, metric="auc", comparator="lt", threshold=0.7
    )
    services.threshold_rule_update(actor=risk_officer, rule=rule, data={"threshold": 0.72})
    actions = list(
        AuditEvent.objects.filter(object_type="oversight.thresholdrule").values_list(
            "action", flat=True
        )
    )
    assert actions == ["oversight.threshold_rule.created", "oversight.threshold_rule.updated"]


def test_an_opened_alert_is_sent_to_webhook_subscribers(
    api, owner, superuser, production_version, rule, receiver
):
    from webhooks import services as webhooks
    from webhooks.models import WebhookDelivery

    webhook, receiver.secret = webhooks.webhook_create(
        actor=superuser,
        name="alerts",
        url=receiver.url,
        events=["monitoring_alert.opened"],
    )
    rule("auc", "lt", 0.75, revalidate=False)
    _post(api(owner), production_version, [point("auc", 0.5)])
    delivery = WebhookDelivery.objects.get(webhook=webhook)
    assert delivery.event_type == "monitoring_alert.opened"
    assert delivery.payload["data"]["model"] == production_version.model.name
    assert delivery.status == "succeeded"
    (message,) = receiver.received
    assert message["payload"]["type"] == "monitoring_alert.opened"


# --- the cost of a batch ----------------------------------------------------------------------


def _statements(client, version, points) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(_url(version), {"points": points}, format="json")
    assert response.status_code == 201, response.content
    return [q["sql"] for q in captured.captured_queries]


def _batch(size: int, *, value: float = 0.8) -> list[dict]:
    metrics = ("auc", "psi", "latency_ms")
    return [
        point(
            metrics[k % 3],
            value if k % 3 == 0 else 0.1,
            segment=f"feature_{k % 7}",
            start=f"2026-11-01T{k % 24:02d}:00:00Z",
            end=f"2026-11-02T{k % 24:02d}:00:00Z",
        )
        for k in range(size)
    ]


# Authentication (the token, with its user), the version with the caller's permission on it,
# the version's rules, the points, whether the actor is a pipeline (audit's actor
# kind), the audit event — and the transaction's begin and end (or savepoint and release).
STATEMENTS_PER_BATCH = 8


def test_a_batch_costs_a_few_statements_whatever_its_size(
    token_client, owner, pipeline, production_version, rule
):
    rule("auc", "lt", 0.75, revalidate=True)
    rule("psi", "gt", 0.25, segment="feature_3")
    rule("latency_ms", "ge", 500, model=None, risk_tier="high")
    model_permission_grant(
        actor=owner,
        model=production_version.model,
        grantee=pipeline,
        permission="change_registeredmodel",
    )
    client = token_client(pipeline)
    client.post(_url(production_version), {"points": _batch(1)}, format="json")  # token used
    one = _statements(client, production_version, _batch(1))
    hundred = _statements(client, production_version, _batch(100))
    breaching = _statements(client, production_version, _batch(100, value=0.5))
    assert len(one) == len(hundred) == len(breaching) <= STATEMENTS_PER_BATCH, "\n".join(breaching)
    inserts = [sql for sql in hundred if "oversight_monitoringpoint" in sql]
    assert len(inserts) == 1 and inserts[0].startswith("INSERT")
    assert MonitoringPoint.objects.count() == 202
    recorded = AuditEvent.objects.filter(action="oversight.monitoring.recorded").order_by("-id")
    assert recorded[0].changes["breaching"] == 34  # every third of 100 points is an auc


def test_the_audit_event_says_what_a_batch_held(api, owner, credit_version):
    points = [
        point("psi", 0.1, segment="age", start="2026-11-01T00:00:00Z", end="2026-11-01T06:00:00Z"),
        point("auc", 0.8, start="2026-10-31T18:00:00+00:00", end="2026-11-01T00:00:00Z"),
        point("psi", 0.2, segment="income", start="2026-11-01T06:00:00Z"),
    ]
    body = _post(api(owner), credit_version, points).json()
    event = AuditEvent.objects.get(action="oversight.monitoring.recorded")
    assert event.actor == owner
    assert event.changes == {
        "points": 3,
        "ids": [body["first_id"], body["last_id"]],
        "metrics": ["auc", "psi"],
        "window": ["2026-10-31T18:00:00+00:00", "2026-11-02T00:00:00+00:00"],
        "breaching": 0,
    }


def test_breaches_are_found_per_rule_metric_segment_and_comparator(
    api, owner, credit_version, rule
):
    rule("auc", "lt", 0.75)
    rule("auc", "le", 0.5)
    rule("psi", "gt", 0.25, segment="income")
    rule("latency_ms", "ge", 500, model=None, risk_tier="high")
    rule("latency_ms", "gt", 1, model=None, risk_tier="low")  # another tier's: not applied
    rule("drift", "gt", 0.0, active=False)
    points = [
        point("auc", 0.75),  # not below 0.75
        point("auc", 0.74),  # below
        point("auc", 0.5),  # below both: one breaching point
        point("psi", 0.3, segment="age"),  # another segment
        point("psi", 0.3, segment="income"),
        point("psi", 0.25, segment="income"),  # not above
        point("latency_ms", 500),
        point("latency_ms", 499),
        point("drift", 9.0),  # inactive rule
    ]
    body = _post(api(owner), credit_version, points).json()
    assert body["breaching"] == 4
    # One alert per rule breached, opened on its first breaching point.
    alerted = MonitoringAlert.objects.values_list("rule__comparator", "metric", "value")
    assert sorted(alerted) == [
        ("ge", "latency_ms", 500.0),
        ("gt", "psi", 0.3),
        ("le", "auc", 0.5),
        ("lt", "auc", 0.74),
    ]


def test_the_version_lookup_answers_who_may_post_as_registry_does(
    owner, pipeline, validator, outsider, superuser, credit_version
):
    from django.contrib.auth.models import Group

    from registry.permissions import can_change_model

    group = Group.objects.create(name="scoring-pipelines")
    validator.groups.add(group)
    model_permission_grant(
        actor=owner, model=credit_version.model, grantee=group, permission="change_registeredmodel"
    )
    model_permission_grant(
        actor=owner, model=credit_version.model, grantee=pipeline, permission="view_registeredmodel"
    )
    User = type(owner)
    name, number = credit_version.model.name, credit_version.version
    for user in (owner, pipeline, validator, outsider, superuser):
        fresh = User.objects.get(pk=user.pk)
        found = permissions.version_for_monitoring(fresh, name, number)
        expected = can_change_model(User.objects.get(pk=user.pk), credit_version.model)
        assert found == credit_version, user.username
        assert permissions.may_post_monitoring(fresh, found) is expected, user.username
    assert [u.username for u in (owner, validator, superuser)] == [
        u.username
        for u in (owner, pipeline, validator, outsider, superuser)
        if permissions.may_post_monitoring(User.objects.get(pk=u.pk), credit_version)
    ]
    assert permissions.version_for_monitoring(owner, name, number + 1) is None
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    inactive = User.objects.get(pk=owner.pk)
    found = permissions.version_for_monitoring(inactive, name, number)
    assert found == credit_version and not permissions.may_post_monitoring(inactive, found)
