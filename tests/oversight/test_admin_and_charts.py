"""The admin: monitoring charts per metric with thresholds, alerts, rules edited through the
service (audited), findings closed with a comment; and the pure SVG chart."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from audit.models import AuditEvent
from oversight import charts, services
from oversight.models import Finding, MonitoringAlert, ThresholdRule
from oversight.monitoring import Point

SVG = "{http://www.w3.org/2000/svg}"


def _series(n=5, start=0.8):
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return [(t0 + timedelta(days=i), start - i * 0.01) for i in range(n)]


def test_chart_draws_a_line_per_segment_and_a_dashed_line_per_threshold():
    svg = charts.metric_chart(
        "psi", {"age": _series(), "income": _series(start=0.2)}, [("> 0.25", 0.25)]
    )
    root = ElementTree.fromstring(svg)
    assert len(root.findall(f"{SVG}polyline")) == 2
    dashed = [line for line in root.findall(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "psi" in texts and "> 0.25" in texts and "age" in texts


def test_chart_escapes_hostile_labels_and_survives_no_points():
    svg = charts.metric_chart("<script>", {"</svg><b>": _series(1)}, [("<x>", 1.0)])
    ElementTree.fromstring(svg)  # still well-formed
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    empty = charts.metric_chart("auc", {}, [])
    assert "no points yet" in empty


def test_chart_of_a_flat_series_keeps_the_line_inside_the_plot():
    svg = charts.metric_chart("auc", {"": [(datetime(2026, 1, 1, tzinfo=UTC), 0.5)] * 3})
    root = ElementTree.fromstring(svg)
    (line,) = root.findall(f"{SVG}polyline")
    ys = {float(p.split(",")[1]) for p in line.get("points").split()}
    assert len(ys) == 1 and 22 <= ys.pop() <= 200 - 34


@pytest.mark.django_db
def test_admin_shows_a_chart_per_metric_with_its_threshold(
    client, owner, auditor, outsider, credit_version, rule
):
    rule("psi", "gt", 0.25)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    points = [
        Point(m, v, t0 + timedelta(days=i), t0 + timedelta(days=i + 1), s)
        for i in range(4)
        for m, v, s in (("auc", 0.8, ""), ("psi", 0.1 * i, "age"))
    ]
    services.monitoring_points_record(actor=owner, version=credit_version, points=points)
    client.force_login(auditor)
    listing = client.get("/admin/oversight/monitoredversion/").content.decode()
    assert "credit-scoring v1" in listing
    page = client.get(f"/admin/oversight/monitoredversion/{credit_version.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<polyline") == 2 and "stroke-dasharray" in html and "&gt; 0.25" in html
    # the Content-Security-Policy (style-src 'self') allows no inline style: a stylesheet
    assert "style-src 'self'" in page["Content-Security-Policy"]
    assert ' style="' not in html
    assert "oversight/monitoring.css" in html and 'class="monitoring-latest"' in html
    client.force_login(outsider)
    outsider.is_staff = True
    outsider.save()
    hidden = client.get(f"/admin/oversight/monitoredversion/{credit_version.pk}/change/")
    assert hidden.status_code in (302, 404)


@pytest.mark.django_db
def test_threshold_rules_are_added_in_the_admin_through_the_service(
    client, risk_officer, credit_model
):
    client.force_login(risk_officer)
    response = client.post(
        "/admin/oversight/thresholdrule/add/",
        {
            "model": credit_model.pk,
            "risk_tier": "",
            "metric": "auc",
            "segment": "",
            "comparator": "lt",
            "threshold": "0.7",
            "revalidate": "on",
            "active": "on",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = ThresholdRule.objects.get()
    assert rule.revalidate and rule.threshold == 0.7
    event = AuditEvent.objects.get(action="oversight.threshold_rule.created")
    assert (event.actor_id, event.channel) == (risk_officer.pk, "admin")


@pytest.mark.django_db
def test_a_rule_with_both_scopes_is_refused_in_the_admin(client, risk_officer, credit_model):
    client.force_login(risk_officer)
    response = client.post(
        "/admin/oversight/thresholdrule/add/",
        {
            "model": credit_model.pk,
            "risk_tier": "high",
            "metric": "auc",
            "comparator": "lt",
            "threshold": "0.7",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "one model or to one risk tier" in response.content.decode()
    assert not ThresholdRule.objects.exists()


@pytest.mark.django_db
def test_a_finding_is_closed_in_the_admin_with_a_comment(
    client, validator, risk_officer, credit_version
):
    report = services.validation_report_create(
        actor=validator, version=credit_version, scope="s", methods="m"
    )
    finding = services.finding_record(actor=validator, report=report, title="t", severity="high")
    client.force_login(risk_officer)
    url = f"/admin/oversight/finding/{finding.pk}/change/"
    refused = client.post(url, {"status": "accepted", "closing_comment": ""})
    assert refused.status_code == 200
    finding.refresh_from_db()
    assert finding.status == "open"
    done = client.post(url, {"status": "accepted", "closing_comment": "Compensating control."})
    assert done.status_code == 302
    finding.refresh_from_db()
    assert (finding.status, finding.closed_by) == ("accepted", risk_officer)
    assert Finding.objects.get().closing_comment == "Compensating control."


@pytest.mark.django_db
def test_alert_page_links_the_revalidation_request(
    client, superuser, owner, production_version, rule, django_capture_on_commit_callbacks
):
    rule("auc", "lt", 0.75, revalidate=True)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        services.monitoring_points_record(
            actor=owner,
            version=production_version,
            points=[Point("auc", 0.6, t0, t0 + timedelta(hours=1))],
        )
    alert = MonitoringAlert.objects.get()
    client.force_login(superuser)
    html = client.get(f"/admin/oversight/monitoringalert/{alert.pk}/change/").content.decode()
    assert f"#{alert.revalidation_request_id}" in html and "<svg" in html


@pytest.mark.django_db
def test_a_validator_records_a_report_and_a_finding_in_the_admin(
    client, validator, owner, credit_version
):
    from oversight.models import ValidationReport

    client.force_login(validator)
    response = client.post(
        "/admin/oversight/validationreport/add/",
        {
            "version": credit_version.pk,
            "scope": "Calibration.",
            "methods": "Backtest.",
            "conclusion": "",
            "conditions_of_use": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    report = ValidationReport.objects.get()
    assert report.validator == validator
    response = client.post(
        "/admin/oversight/finding/add/",
        {
            "report": report.pk,
            "title": "Drift unmonitored",
            "description": "",
            "severity": "medium",
            "owner": owner.pk,
            "due_date": "2027-01-31",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    finding = Finding.objects.get()
    assert (finding.severity, finding.owner, finding.created_by) == ("medium", owner, validator)
    actions = list(
        AuditEvent.objects.filter(channel="admin", action__startswith="oversight.").values_list(
            "action", flat=True
        )
    )
    assert actions == ["oversight.validation_report.recorded", "oversight.finding.recorded"]


@pytest.mark.django_db
def test_the_admin_refuses_a_report_by_the_versions_author(client, owner, credit_version):
    from django.contrib.auth.models import Group

    from oversight.models import ValidationReport

    owner.groups.add(Group.objects.get(name="model-validator"))
    client.force_login(owner)
    response = client.post(
        "/admin/oversight/validationreport/add/",
        {
            "version": credit_version.pk,
            "scope": "Mine.",
            "methods": "Self-review.",
        },
    )
    assert response.status_code == 403  # as every admin refusal of who you are
    assert not ValidationReport.objects.exists()
