"""Appointing approvers: the per-model decide permission, granted by administrators only."""

import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from approvals import permissions, services
from audit.models import AuditEvent


def test_appoint_approver_command_grants_and_revokes(credit_model, validator):
    call_command(
        "appoint_approver", "credit-scoring", user=validator.username, stdout=io.StringIO()
    )
    assert permissions.holds_decide_permission(validator, credit_model)
    event = AuditEvent.objects.filter(action="registry.permission.granted").latest("id")
    assert (event.channel, event.changes["permission"]) == ("cli", "decide_promotion")
    call_command(
        "appoint_approver",
        "credit-scoring",
        user=validator.username,
        revoke=True,
        stdout=io.StringIO(),
    )
    validator = type(validator).objects.get(pk=validator.pk)  # no cached permissions
    assert not permissions.holds_decide_permission(validator, credit_model)


def test_model_owner_cannot_appoint_their_own_approvers(owner, credit_model, validator):
    with pytest.raises(PermissionDenied):
        services.decide_permission_grant(actor=owner, model=credit_model, grantee=validator)


def test_global_decide_permission_reaches_no_model(credit_model, validator):
    from django.contrib.auth.models import Permission

    validator.user_permissions.add(Permission.objects.get(codename="decide_promotion"))
    assert not permissions.holds_decide_permission(validator, credit_model)
