"""Nobody waits for an approver who does not exist.

A policy names who decides for a role when no one holding it was appointed for the model (per
model or for its business unit): every member of the role (`fallback="role"`, the default) or
nobody (`"none"`). Filing a request that no one at all could decide is refused with 409 naming
the role; nothing is written."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals import notifications, permissions, services
from approvals.models import BusinessUnitAppointment, PromotionPolicy, PromotionRequest
from audit.models import AuditEvent
from registry import services as registry
from registry.services import model_permission_grant
from tests.conftest import _user


def _file(client, version, to_stage="staging"):
    return client.post(
        f"/api/v1/models/{version.model.name}/versions/{version.version}/promotions",
        {"to_stage": to_stage, "justification": "Validated on Q3 data."},
        format="json",
    )


def _decide(client, request):
    return client.post(
        f"/api/v1/promotions/{request.pk}/approve", {"comment": "Checked."}, format="json"
    )


def test_with_nobody_appointed_every_member_of_the_role_is_told_and_may_decide(
    api, owner, version, validator, validator_2, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _file(api(owner), version)
    assert response.status_code == 201
    assert sorted(mailoutbox[0].to) == sorted([validator.email, validator_2.email])
    request = PromotionRequest.objects.get(pk=response.json()["id"])
    assert request.policy_snapshot["fallback"] == "role"
    assert _decide(api(validator), request).status_code == 200


def test_once_someone_holding_the_role_is_appointed_the_fallback_ends(
    api, owner, version, validator, validator_2, appoint, file
):
    appoint(version.model, validator_2)
    request = file(version, "staging")
    assert [u.username for u in notifications.eligible_approvers(request)] == ["validator-2"]
    response = _decide(api(validator), request)
    assert response.status_code == 403
    assert "not an approver for model" in response.json()["errors"][0]["message"]


def test_a_role_with_no_one_who_could_decide_is_refused_with_409_naming_it(
    api, owner, version, risk_officer
):
    """The staging policy asks for a model validator; there is none (a risk officer is)."""
    before = AuditEvent.objects.count()
    response = _file(api(owner), version)
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["code"] == "no_approver"
    assert "the role 'model-validator' has no appointed approver" in error["message"]
    assert (
        'appoint_approver --user NAME credit-scoring` or `--business-unit "Retail'
        in (error["message"])
    )
    assert not PromotionRequest.objects.exists()
    assert AuditEvent.objects.count() == before


def test_without_the_fallback_an_unappointed_role_is_refused(api, owner, version, validator):
    PromotionPolicy.objects.update(fallback="none")
    response = _file(api(owner), version)
    assert response.status_code == 409
    assert "'model-validator' has no appointed approver" in response.json()["errors"][0]["message"]
    assert not PromotionRequest.objects.exists()


def test_the_requester_does_not_count_as_someone_who_could_decide(
    api, owner, version, validator, appoint
):
    appoint(version.model, validator)
    PromotionPolicy.objects.update(fallback="none")
    model_permission_grant(
        actor=owner, model=version.model, grantee=validator, permission="change_registeredmodel"
    )
    response = _file(api(validator), version)  # the only appointed validator files it
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "no_approver"


def test_a_business_unit_appointment_reaches_models_registered_later(
    api, owner, validator, validator_2, file, make_version
):
    out = io.StringIO()
    call_command(
        "appoint_approver", user=validator.username, business_unit="Retail Lending", stdout=out
    )
    assert "done" in out.getvalue()
    event = AuditEvent.objects.get(action="approvals.business_unit_appointment.granted")
    assert event.channel == "cli" and event.changes["business_unit"] == "Retail Lending"
    later = registry.registered_model_create(
        actor=owner, name="mortgage-pd", risk_tier="low", business_unit="Retail Lending"
    )
    elsewhere = registry.registered_model_create(
        actor=owner, name="fx-risk", risk_tier="low", business_unit="Markets"
    )
    in_unit = file(make_version(model=later), "staging")
    other = file(make_version(model=elsewhere), "staging")
    assert [u.username for u in notifications.eligible_approvers(in_unit)] == ["validator"]
    assert _decide(api(validator_2), in_unit).status_code == 403  # appointed: no fallback
    assert _decide(api(validator), in_unit).status_code == 200
    # In another unit nobody holding the role was appointed: the fallback lets both decide.
    assert {u.username for u in notifications.eligible_approvers(other)} == {
        "validator",
        "validator-2",
    }
    awaiting = api(validator).get("/api/v1/promotions?awaiting_me=true").json()["results"]
    assert [r["id"] for r in awaiting] == [other.pk]


def test_a_business_unit_appointment_through_a_group_and_its_revocation(
    superuser, validator, credit_model
):
    group = validator.groups.create(name="retail-approvers")
    services.business_unit_appointment_grant(
        actor=superuser, business_unit="Retail Lending", grantee=group
    )
    assert permissions.holds_decide_permission(validator, credit_model)
    call_command(
        "appoint_approver",
        group="retail-approvers",
        business_unit="Retail Lending",
        revoke=True,
        stdout=io.StringIO(),
    )
    assert not permissions.holds_decide_permission(validator, credit_model)
    appointment = BusinessUnitAppointment.objects.get()
    assert appointment.revoked_at is not None  # kept for the record
    assert AuditEvent.objects.filter(action="approvals.business_unit_appointment.revoked").exists()


def test_only_administrators_appoint_for_a_business_unit(owner, validator):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.business_unit_appointment_grant(
            actor=owner, business_unit="Retail Lending", grantee=validator
        )
    assert not BusinessUnitAppointment.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ({"business_unit": "Retail Lending", "models": ["credit-scoring"]}, "not both"),
        ({}, "not both"),
        ({"business_unit": "   "}, "Name a business unit"),
    ],
)
def test_appoint_approver_refuses_a_confused_command(validator, args, message):
    models = args.pop("models", [])
    with pytest.raises(CommandError, match=message):
        call_command(
            "appoint_approver", *models, user=validator.username, stdout=io.StringIO(), **args
        )
    assert not BusinessUnitAppointment.objects.exists()


def test_a_policy_fallback_must_be_role_or_none(superuser, db):
    from django.core.exceptions import ValidationError

    policy = PromotionPolicy.objects.first()
    with pytest.raises(ValidationError):
        services.policy_update(actor=superuser, policy=policy, data={"fallback": "anyone"})
    policy.refresh_from_db()
    assert policy.fallback == "role"


def _require(to_stage: str, **required: int) -> None:
    PromotionPolicy.objects.filter(to_stage=to_stage, risk_tier="high").update(
        required_approvals={role.replace("_", "-"): n for role, n in required.items()}
    )


def test_fewer_people_than_a_roles_slots_is_refused_with_409_and_nothing_written(
    api, owner, version, validator, risk_officer
):
    """Two validator approvals asked for, one validator exists: the request could never be
    decided, however long it waited."""
    _require("staging", model_validator=2)
    before = AuditEvent.objects.count()
    response = _file(api(owner), version)
    assert response.status_code == 409, response.content
    error = response.json()["errors"][0]
    assert (error["code"], error["field"]) == ("no_approver", "to_stage")
    assert (
        "the role 'model-validator' needs 2 approvals, and only 1 person may give one"
        in error["message"]
    )
    assert not PromotionRequest.objects.exists()
    assert AuditEvent.objects.count() == before


def test_one_person_holding_two_roles_fills_one_slot(api, owner, version):
    """A validator who is also a risk officer, and nobody else: two slots, one person."""
    both = _user("both-roles", "model-validator")
    both.groups.add(Group.objects.get(name="risk-officer"))
    _require("staging", model_validator=1, risk_officer=1)
    response = _file(api(owner), version)
    assert response.status_code == 409, response.content
    assert (
        "the roles 'model-validator' and 'risk-officer' need 2 approvals together, and only "
        "1 person may give one" in response.json()["errors"][0]["message"]
    )
    assert not PromotionRequest.objects.exists()


def test_as_many_people_as_slots_may_file(api, owner, version, validator, validator_2):
    _require("staging", model_validator=2)
    response = _file(api(owner), version)
    assert response.status_code == 201, response.content


def test_appointment_counts_only_the_appointed_when_someone_is(
    api, owner, version, validator, validator_2, appoint
):
    """Once a validator is appointed for the model, the unappointed one no longer decides: two
    slots, one appointed validator, is refused (the demo's production policy met this)."""
    appoint(version.model, validator)
    _require("staging", model_validator=2)
    response = _file(api(owner), version)
    assert response.status_code == 409, response.content
    assert "needs 2 approvals, and only 1 person" in response.json()["errors"][0]["message"]
