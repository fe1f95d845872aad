"""Validation reports and findings: who may record and close them, the audit trail, the
promotion gate, and bad input refused with nothing written."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from approvals import services as approvals
from audit.models import AuditEvent
from core.errors import Conflict
from oversight import services
from oversight.models import Finding, ValidationReport
from oversight.selectors import FINDINGS_GATE

pytestmark = pytest.mark.django_db

REPORT = {"scope": "Discrimination and stability.", "methods": "Out-of-time backtest."}


def _url(version):
    return f"/api/v1/models/{version.model.name}/versions/{version.version}/validation-reports"


@pytest.fixture
def report(validator, version):
    return services.validation_report_create(actor=validator, version=version, **REPORT)


@pytest.fixture
def finding(validator, report):
    def make(severity="high", **extra):
        return services.finding_record(
            actor=validator, report=report, title=f"{severity} issue", severity=severity, **extra
        )

    return make


def test_validator_records_a_report_with_findings_through_the_api(api, validator, version, owner):
    before = AuditEvent.objects.count()
    body = {
        **REPORT,
        "conditions_of_use": "Only for retail applicants.",
        "findings": [
            {"title": "Unstable on thin files", "severity": "high", "owner": owner.username},
            {"title": "Docs typo", "severity": "low", "due_date": "2026-12-31"},
        ],
    }
    response = api(validator).post(_url(version), body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["validator"] == "validator"
    assert [(f["severity"], f["status"], f["owner"]) for f in data["findings"]] == [
        ("high", "open", "owner-scientist"),
        ("low", "open", None),
    ]
    actions = list(AuditEvent.objects.order_by("id")[before:].values_list("action", flat=True))
    assert actions == [
        "oversight.validation_report.recorded",
        "oversight.finding.recorded",
        "oversight.finding.recorded",
    ]
    listed = api(validator).get(_url(version)).json()
    assert [r["id"] for r in listed["results"]] == [data["id"]]


def test_the_versions_author_may_not_validate_it(api, owner, version):
    owner.groups.add(Group.objects.get(name="model-validator"))
    response = api(owner).post(_url(version), REPORT, format="json")
    assert response.status_code == 403
    assert "independent" in response.json()["errors"][0]["message"]
    assert not ValidationReport.objects.exists()


def test_a_visible_model_without_the_validator_role_is_403(api, risk_officer, version):
    response = api(risk_officer).post(_url(version), REPORT, format="json")
    assert response.status_code == 403
    assert not ValidationReport.objects.exists()


def test_a_hidden_model_is_404_for_reading_and_writing(api, outsider, version):
    assert api(outsider).get(_url(version)).status_code == 404
    assert api(outsider).post(_url(version), REPORT, format="json").status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [
        ({"methods": "m"}, "scope"),
        ({**REPORT, "scope": 12}, "scope"),
        ({**REPORT, "surprise": 1}, "surprise"),
        ({**REPORT, "findings": [{"title": "t", "severity": "fatal"}]}, "findings.0.severity"),
        ({**REPORT, "findings": [{"severity": "high"}]}, "findings.0.title"),
        (
            {**REPORT, "findings": [{"title": "t", "severity": "low", "owner": "nobody"}]},
            "findings.0.owner",
        ),
        (
            {**REPORT, "findings": [{"title": "t", "severity": "low", "due_date": "soon"}]},
            "findings.0.due_date",
        ),
        ({**REPORT, "findings": "many"}, "findings"),
    ],
)
def test_bad_report_input_is_400_and_writes_nothing(api, validator, version, body, field):
    before = AuditEvent.objects.count()
    response = api(validator).post(_url(version), body, format="json")
    assert response.status_code == 400, response.content
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not ValidationReport.objects.exists() and not Finding.objects.exists()
    assert AuditEvent.objects.count() == before


def test_blank_scope_is_refused_by_the_service(validator, version):
    with pytest.raises(Exception, match="scope"):
        services.validation_report_create(actor=validator, version=version, scope=" ", methods="m")
    assert not ValidationReport.objects.exists()


def test_finding_added_to_a_report_through_the_api(api, validator, report):
    url = f"/api/v1/validation-reports/{report.pk}/findings"
    response = api(validator).post(url, {"title": "Leakage", "severity": "critical"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    bad = api(validator).post(url, {"title": "x", "severity": "huge"}, format="json")
    assert bad.status_code == 400
    assert Finding.objects.count() == 1


def test_closing_needs_a_comment(api, risk_officer, finding, approvers):
    item = finding("medium")
    url = f"/api/v1/findings/{item.pk}/close"
    response = api(risk_officer).post(url, {"status": "remediated"}, format="json")
    assert response.status_code == 400
    response = api(risk_officer).post(url, {"status": "remediated", "comment": "  "}, format="json")
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.status == "open"


def test_a_serious_finding_is_not_closed_by_the_versions_author(api, owner, finding):
    item = finding("high")
    url = f"/api/v1/findings/{item.pk}/close"
    response = api(owner).post(url, {"status": "accepted", "comment": "Fine."}, format="json")
    assert response.status_code == 403
    assert "other than the version's author" in response.json()["errors"][0]["message"]
    item.refresh_from_db()
    assert item.status == "open"


def test_the_author_may_close_a_low_finding_and_it_is_audited(api, owner, finding):
    item = finding("low")
    before = AuditEvent.objects.count()
    response = api(owner).post(
        f"/api/v1/findings/{item.pk}/close",
        {"status": "remediated", "comment": "Fixed the docs."},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["closed_by"] == "owner-scientist"
    event = AuditEvent.objects.order_by("id")[before:].get()
    assert event.action == "oversight.finding.closed"
    assert event.changes["status"] == ["open", "remediated"]


def test_a_serious_finding_is_closed_by_someone_independent(risk_officer, finding):
    item = finding("critical")
    services.finding_close(actor=risk_officer, finding=item, status="accepted", comment="Risk ok.")
    item.refresh_from_db()
    assert (item.status, item.closed_by, item.closing_comment) == (
        "accepted",
        risk_officer,
        "Risk ok.",
    )


def test_closing_twice_is_a_conflict(risk_officer, finding):
    item = finding("low")
    services.finding_close(actor=risk_officer, finding=item, status="remediated", comment="Done.")
    with pytest.raises(Conflict):
        services.finding_close(actor=risk_officer, finding=item, status="accepted", comment="x")


def test_an_outsider_cannot_close_a_finding(outsider, finding):
    with pytest.raises(PermissionDenied):
        services.finding_close(
            actor=outsider, finding=finding("low"), status="accepted", comment="x"
        )


def test_bad_close_status_is_400(api, risk_officer, finding):
    item = finding("low")
    response = api(risk_officer).post(
        f"/api/v1/findings/{item.pk}/close", {"status": "open", "comment": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"


def test_findings_list_filters_and_hides_other_models(api, validator, outsider, finding):
    finding("high")
    finding("low")
    data = api(validator).get("/api/v1/findings?severity=high&status=open").json()
    assert [f["severity"] for f in data["results"]] == ["high"]
    assert api(outsider).get("/api/v1/findings").json()["results"] == []
    assert api(outsider).get(f"/api/v1/findings/{Finding.objects.first().pk}").status_code == 404


def _require_findings_gate():
    from approvals.models import PromotionPolicy

    for policy in PromotionPolicy.objects.filter(to_stage="staging"):
        policy.filing_gates = [*policy.filing_gates, FINDINGS_GATE]
        policy.approval_gates = [*policy.approval_gates, FINDINGS_GATE]
        policy.save()


def test_open_serious_finding_blocks_filing_when_the_policy_lists_the_gate(
    owner, risk_officer, version, finding, approvers
):
    _require_findings_gate()
    item = finding("high")
    finding("medium")  # does not block
    with pytest.raises(Conflict, match="high issue"):
        approvals.promotion_request_file(
            actor=owner, version=version, to_stage="staging", justification="Ready."
        )
    services.finding_close(actor=risk_officer, finding=item, status="remediated", comment="Fixed.")
    request = approvals.promotion_request_file(
        actor=owner, version=version, to_stage="staging", justification="Ready."
    )
    assert request.status == "pending"


def test_a_finding_opened_after_filing_blocks_the_approval(
    owner, validator_2, version, finding, approvers
):
    _require_findings_gate()
    request = approvals.promotion_request_file(
        actor=owner, version=version, to_stage="staging", justification="Ready."
    )
    finding("critical")
    with pytest.raises(Conflict, match="critical issue"):
        approvals.promotion_decide(
            actor=validator_2, request=request, outcome="approve", comment="Looked."
        )


def test_the_gate_is_registered_for_policies():
    from approvals.gates import known_gates

    assert FINDINGS_GATE in known_gates()
