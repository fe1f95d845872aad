"""Filing promotion requests through the API: who may, what is checked, what is recorded."""

import pytest
from django.db import IntegrityError, transaction

from approvals import services
from approvals.models import PromotionPolicy, PromotionRequest
from audit.models import AuditEvent
from registry import services as registry

FILE = "/api/v1/models/{}/versions/{}/promotions"


def _file(client, version, to_stage="staging", justification="Validated on Q3 data.", **extra):
    body = {"to_stage": to_stage, "justification": justification, **extra}
    return client.post(FILE.format(version.model.name, version.version), body, format="json")


def test_owner_files_a_promotion_request(api, owner, version, approvers):
    response = _file(api(owner), version)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert (body["from_stage"], body["to_stage"], body["kind"]) == (
        "development",
        "staging",
        "promotion",
    )
    assert body["requester"] == owner.username
    assert body["content_digest"] == version.content_digest
    assert body["progress"]["slots"] == [
        {"role": "model-validator", "index": 1, "filled_by": None, "filled_at": None}
    ]


def test_filing_without_justification_is_400(api, owner, version):
    response = _file(api(owner), version, justification="   ")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "justification"
    assert not PromotionRequest.objects.exists()


def test_filing_with_an_unknown_field_is_400(api, owner, version):
    response = _file(api(owner), version, status="approved")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"


def test_filing_to_an_unknown_stage_is_400(api, owner, version):
    assert _file(api(owner), version, to_stage="heaven").status_code == 400


def test_filing_a_transition_missing_from_the_table_is_409(api, owner, version):
    response = _file(api(owner), version, to_stage="production")
    assert response.status_code == 409
    assert "cannot move to production" in response.json()["errors"][0]["message"]


def test_second_pending_request_for_a_version_is_409(api, owner, version, validator):
    assert _file(api(owner), version).status_code == 201
    response = _file(api(owner), version)
    assert response.status_code == 409
    assert "already has a pending request" in response.json()["errors"][0]["message"]


def test_database_allows_one_pending_request_per_version(file, version):
    request = file(version, "staging")
    duplicate = PromotionRequest(
        version=version,
        from_stage="development",
        to_stage="staging",
        requester=request.requester,
        justification="x",
        policy_snapshot={},
        content_digest=version.content_digest,
        expires_at=request.expires_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_filing_gate_without_metrics_is_409(api, owner, make_version):
    bare = make_version(metrics={})
    response = _file(api(owner), bare)
    assert response.status_code == 409
    assert "No evaluation metrics" in response.json()["errors"][0]["message"]


def test_filing_for_production_needs_training_lineage(api, owner, make_version, promote):
    untracked = make_version(training_run=None)
    promote(untracked, "staging")
    response = _file(api(owner), untracked, to_stage="production")
    assert response.status_code == 409
    assert "No training lineage" in response.json()["errors"][0]["message"]


def test_filing_for_production_needs_model_card_fields(api, owner, make_version, promote):
    undocumented = make_version(limitations="")
    promote(undocumented, "staging")
    response = _file(api(owner), undocumented, to_stage="production")
    assert response.status_code == 409
    assert "limitations" in response.json()["errors"][0]["message"]


def test_caller_who_cannot_see_the_model_gets_404(api, outsider, version):
    assert _file(api(outsider), version).status_code == 404


def test_caller_who_sees_but_may_not_file_gets_403(api, auditor, version):
    assert _file(api(auditor), version).status_code == 403


def test_request_keeps_the_policy_it_was_filed_under(file, version, superuser):
    request = file(version, "staging")
    policy = PromotionPolicy.objects.get(to_stage="staging", risk_tier="high")
    services.policy_update(
        actor=superuser, policy=policy, data={"required_approvals": {"model-validator": 3}}
    )
    request.refresh_from_db()
    assert request.policy_snapshot["required_approvals"] == {"model-validator": 1}


def test_filing_records_one_audit_event(api, owner, version, validator):
    before = AuditEvent.objects.count()
    _file(api(owner), version)
    events = AuditEvent.objects.order_by("id")[before:]
    assert [e.action for e in events] == ["approvals.promotion_request.filed"]
    assert events[0].changes["content_digest"] == version.content_digest


def test_archived_model_versions_are_not_promoted(api, owner, version):
    registry.registered_model_archive(actor=owner, model=version.model)
    assert _file(api(owner), version).status_code == 409


def test_a_request_the_version_changed_under_is_superseded_by_the_next_filing(
    api, owner, version, approvers
):
    """A pending request whose version changed can no longer be decided; filing anew closes
    it as superseded (audited) instead of refusing until it expires or is cancelled."""
    first = _file(api(owner), version).json()
    assert _file(api(owner), version).status_code == 409  # unchanged: still the pending one
    registry.model_version_update(actor=owner, version=version, data={"limitations": "New."})
    second = _file(api(owner), version)
    assert second.status_code == 201, second.content
    old = PromotionRequest.objects.get(pk=first["id"])
    assert old.status == "superseded" and "content changed" in old.closed_reason
    event = AuditEvent.objects.get(action="approvals.promotion_request.superseded")
    assert (event.object_id, event.actor) == (str(old.pk), owner)
    assert PromotionRequest.objects.filter(version=version, status="pending").count() == 1


@pytest.mark.parametrize("refusal", ["transition", "gate"])
def test_a_refused_filing_leaves_the_changed_request_pending(
    api, owner, version, approvers, monkeypatch, refusal
):
    """Nothing is written when the new filing is refused, before the stale request is looked
    at (a stage that does not follow) or after it was closed (a failing gate): it stays
    pending."""
    from approvals import gates

    first = _file(api(owner), version).json()
    registry.model_version_update(actor=owner, version=version, data={"limitations": "New."})
    audited = AuditEvent.objects.count()
    if refusal == "gate":
        failing = gates.GateResult("metrics_present", "Evaluation metrics present", False, "No.")
        monkeypatch.setattr(gates, "failures", lambda names, version: [failing])
    to_stage = "production" if refusal == "transition" else "staging"  # production: not next
    response = _file(api(owner), version, to_stage=to_stage)
    assert response.status_code == 409
    assert PromotionRequest.objects.get(pk=first["id"]).status == "pending"
    assert AuditEvent.objects.count() == audited
