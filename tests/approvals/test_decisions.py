"""Deciding promotion requests through the API: one test per rule."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from approvals import gates, services
from approvals.models import PromotionRequest, StageTransition
from audit.models import AuditEvent
from registry import services as registry
from registry.models import ModelVersion
from registry.services import model_permission_grant
from tests.conftest import _user

URL = "/api/v1/promotions/{}/{}"


def _decide(client, request, outcome="approve", comment="Checked metrics and lineage."):
    return client.post(URL.format(request.pk, outcome), {"comment": comment}, format="json")


def _message(response) -> str:
    return response.json()["errors"][0]["message"]


def test_requester_never_decides_their_own_request(api, file, version, validator, approvers):
    request = file(version, "staging", actor=validator)
    response = _decide(api(validator), request)
    assert response.status_code == 403
    assert _message(response) == "You filed this request; another approver must decide it."


def test_version_creator_never_decides_it(api, owner, credit_model, make_version, file, approvers):
    creator = approvers["validator"]
    model_permission_grant(
        actor=owner, model=credit_model, grantee=creator, permission="change_registeredmodel"
    )
    authored = make_version(actor=creator)
    request = file(authored, "staging")
    response = _decide(api(creator), request)
    assert response.status_code == 403
    assert "You created this version" in _message(response)


def test_one_person_fills_at_most_one_slot(api, file, decide, make_version, approvers):
    dual = approvers["validator"]
    dual.groups.add(Group.objects.get(name="risk-officer"))
    version = make_version()
    staging = file(version, "staging")
    decide(staging, approvers["validator_2"])
    request = file(version, "production")
    assert _decide(api(dual), request).status_code == 200
    response = _decide(api(dual), request)
    assert response.status_code == 409
    assert "one person fills one slot" in _message(response)
    request.refresh_from_db()
    assert [d.role for d in request.decisions.all()] == ["model-validator"]


def test_decider_must_hold_a_role_the_policy_asks_for(
    api, file, version, appoint, auditor, appointed_only
):
    appoint(version.model, auditor)
    request = file(version, "staging")
    response = _decide(api(auditor), request)
    assert response.status_code == 403
    assert "needs the role model-validator" in _message(response)


def test_decider_needs_the_decide_permission_on_that_model(
    api, file, version, validator, appointed_only
):
    request = file(version, "staging")
    response = _decide(api(validator), request)
    assert response.status_code == 403
    assert "not an approver for model 'credit-scoring'" in _message(response)


def test_decide_permission_granted_to_a_group_is_scoped_to_its_models(
    api, owner, file, appoint, make_version, validator, appointed_only
):
    retail = Group.objects.create(name="retail-validators")
    validator.groups.add(retail)
    other_model = registry.registered_model_create(actor=owner, name="churn", risk_tier="low")
    appoint(other_model, _user("churn-validator", "model-validator"))
    appoint(make_version().model, retail)
    in_scope = file(make_version(), "staging")
    out_of_scope = file(make_version(model=other_model), "staging")
    assert _decide(api(validator), in_scope).status_code == 200
    assert _decide(api(validator), out_of_scope).status_code == 403


def test_one_rejection_ends_the_request(api, file, decide, version, approvers):
    request = file(version, "staging")
    response = _decide(api(approvers["validator"]), request, "reject", "AUC not reproduced.")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    after = _decide(api(approvers["validator_2"]), request)
    assert after.status_code == 409
    version.refresh_from_db()
    assert version.stage == "development"


def test_decision_needs_a_comment(api, file, version, approvers):
    request = file(version, "staging")
    response = _decide(api(approvers["validator"]), request, comment="")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "comment"


def test_changed_content_refuses_the_decision_and_supersedes_the_request(
    api, owner, file, version, approvers
):
    request = file(version, "staging")
    registry.model_version_update(actor=owner, version=version, data={"limitations": "New."})
    response = _decide(api(approvers["validator"]), request)
    assert response.status_code == 409
    assert "content changed" in _message(response)
    request.refresh_from_db()
    assert request.status == "superseded"
    assert not request.decisions.exists()


def test_expired_request_cannot_be_decided(api, file, version, approvers):
    request = file(version, "staging")
    PromotionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = _decide(api(approvers["validator"]), request)
    assert response.status_code == 409
    assert "expired" in _message(response)
    request.refresh_from_db()
    assert request.status == "expired"


def test_expiry_task_expires_overdue_requests(file, version, make_version):
    overdue = file(version, "staging")
    fresh = file(make_version(), "staging")
    PromotionRequest.objects.filter(pk=overdue.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    from approvals.tasks import expire_promotion_requests

    assert expire_promotion_requests.delay().get() == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == ("expired", "pending")
    assert AuditEvent.objects.filter(action="approvals.promotion_request.expired").count() == 1


def test_approval_short_of_quorum_leaves_the_stage(api, file, promote, version, approvers):
    promote(version, "staging")
    request = file(version, "production")
    response = _decide(api(approvers["validator"]), request)
    assert response.status_code == 200
    assert response.json()["progress"]["remaining"] == {"model-validator": 1, "risk-officer": 1}
    version.refresh_from_db()
    assert version.stage == "staging"


def test_quorum_applies_the_transition_with_its_audit_events(api, file, version, approvers):
    request = file(version, "staging")
    before = AuditEvent.objects.count()
    response = _decide(api(approvers["validator"]), request)
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    version.refresh_from_db()
    assert version.stage == "staging"
    transition = StageTransition.objects.get(version=version)
    assert (transition.from_stage, transition.to_stage, transition.request_id) == (
        "development",
        "staging",
        request.pk,
    )
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [e.action for e in events] == [
        "approvals.promotion_decision.approved",
        "approvals.model_version.stage_changed",
    ]
    assert events[0].changes["status"] == ["pending", "approved"]
    assert events[1].changes["stage"] == ["development", "staging"]


def test_quorum_to_production_archives_the_previous_production_version(promote, make_version):
    first, second = make_version(), make_version()
    for version in (first, second):
        promote(version, "staging")
    promote(first, "production")
    request = promote(second, "production")
    first.refresh_from_db()
    assert (first.stage, second.stage) == ("archived", "production")
    assert ModelVersion.objects.filter(model=first.model, stage="production").count() == 1
    archived = StageTransition.objects.get(version=first, to_stage="archived")
    assert archived.request_id == request.pk


def test_full_slots_of_a_role_refuse_another_approval(
    api, file, decide, promote, version, approvers
):
    promote(version, "staging")
    request = file(version, "production")
    decide(request, approvers["risk_officer"])
    response = _decide(api(approvers["risk_officer_2"]), request)
    assert response.status_code == 409
    assert "waits for 2 model-validator" in _message(response)


def test_gates_are_pluggable_and_checked_at_approval(api, file, version, approvers, superuser):
    from approvals.models import PromotionPolicy

    state = {"ok": True}
    gates.register_gate("signed_off", "Signed off", lambda v: None if state["ok"] else "Not yet.")
    policy = PromotionPolicy.objects.get(to_stage="staging", risk_tier="high")
    services.policy_update(actor=superuser, policy=policy, data={"approval_gates": ["signed_off"]})
    request = file(version, "staging")
    state["ok"] = False
    response = _decide(api(approvers["validator"]), request)
    assert response.status_code == 409
    assert "Signed off: Not yet." in _message(response)
    state["ok"] = True
    assert _decide(api(approvers["validator"]), request).status_code == 200


def test_requester_cancels_a_pending_request(api, owner, file, version):
    request = file(version, "staging")
    response = api(owner).post(URL.format(request.pk, "cancel"), {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = api(owner).post(URL.format(request.pk, "cancel"), {}, format="json")
    assert again.status_code == 409


def test_only_the_requester_cancels(api, file, version, approvers):
    request = file(version, "staging")
    response = api(approvers["validator"]).post(URL.format(request.pk, "cancel"), {}, format="json")
    assert response.status_code == 403


def test_decision_on_an_invisible_request_is_404(api, file, version, outsider):
    request = file(version, "staging")
    assert _decide(api(outsider), request).status_code == 404


def test_withdrawal_rollback_and_revalidation(promote, make_version):
    version = make_version()
    promote(version, "staging")
    promote(version, "production")
    promote(version, "archived")
    assert version.stage == "archived"
    promote(version, "production")
    assert version.stage == "production"
    promote(version, "archived")
    promote(version, "staging")
    assert list(
        StageTransition.objects.filter(version=version).values_list("to_stage", flat=True)
    ) == ["staging", "production", "archived", "production", "archived", "staging"]


def test_production_content_is_frozen(api, owner, promote, version):
    promote(version, "staging")
    promote(version, "production")
    url = f"/api/v1/models/{version.model.name}/versions/{version.version}/"
    response = api(owner).patch(url, {"limitations": "Changed after approval."}, format="json")
    assert response.status_code == 409
    assert "in production" in _message(response)


def test_production_content_is_frozen_and_nothing_is_written(api, owner, promote, version):
    promote(version, "staging")
    promote(version, "production")
    version.refresh_from_db()
    events = AuditEvent.objects.count()
    url = f"/api/v1/models/{version.model.name}/versions/{version.version}/"
    response = api(owner).patch(url, {"limitations": "Changed after approval."}, format="json")
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["code"] == "frozen"
    assert error["message"].startswith(f"{version} is in production")
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.limitations, stored.content_digest) == (
        version.limitations,
        version.content_digest,
    )
    assert AuditEvent.objects.count() == events


def test_the_notes_of_a_production_version_still_change(owner, promote, version):
    promote(version, "staging")
    promote(version, "production")
    version.refresh_from_db()
    # the description is not governed content (MLflow's update_model_version sets it)
    registry.model_version_update(
        actor=owner, version=version, data={"description": "Serving since May."}
    )
    stored = ModelVersion.objects.get(pk=version.pk)
    assert stored.description == "Serving since May."
    assert stored.content_digest == version.content_digest


def test_rollback_refuses_when_another_version_took_production_meanwhile(
    api, file, decide, promote, make_version, approvers
):
    first, second = make_version(), make_version()
    promote(first, "staging")
    promote(second, "staging")
    late = file(first, "production")
    decide(late, approvers["validator"])
    decide(late, approvers["validator_2"])
    promote(second, "production")
    response = _decide(api(approvers["risk_officer"]), late)
    assert response.status_code == 409
    assert "Version 2 of 'credit-scoring' reached production" in _message(response)
    late.refresh_from_db()
    first.refresh_from_db()
    assert (late.status, first.stage) == ("superseded", "staging")


def test_appointment_without_a_role_does_not_make_an_approver(
    api, file, version, appoint, owner, appointed_only
):
    colleague = _user("appointed-without-role")
    model_permission_grant(
        actor=owner, model=version.model, grantee=colleague, permission="view_registeredmodel"
    )
    appoint(version.model, colleague)
    request = file(version, "staging")
    response = _decide(api(colleague), request)
    assert response.status_code == 403
    assert "needs the role" in _message(response)
