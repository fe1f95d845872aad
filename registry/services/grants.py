"""Object permissions on registered models (django-guardian): granted and withdrawn with one
audit event each, `registry.permission.granted` / `registry.permission.revoked`. Who may
grant what, and who holds what, are read in registry.permissions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, get_group_perms, get_user_perms, remove_perm

from audit.services import audit_record
from core.errors import Conflict
from registry.models import RegisteredModel
from registry.permissions import GRANTABLE, grantee_label, grantee_ref, require_change_model


def model_permission_grant(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group, permission: str
) -> None:
    """Grant `view_` or `change_registeredmodel` on one model to a user or group (audited)."""
    _check_grant(actor, model, permission)
    object_permission_assign(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=permission,
        already=f"{grantee_label(grantee)} already holds '{permission}' on this model.",
    )


def model_permission_revoke(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group, permission: str
) -> None:
    """Withdraw an object permission granted with `model_permission_grant` (audited)."""
    _check_grant(actor, model, permission)
    object_permission_remove(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=permission,
        missing=f"{grantee_label(grantee)} holds no '{permission}' grant on this model.",
    )


@transaction.atomic
def object_permission_assign(
    *,
    actor: Any,
    model: RegisteredModel,
    grantee: AbstractBaseUser | Group,
    codename: str,
    already: str,
) -> None:
    """Grant an object permission on one model and record it. The caller has decided that
    `actor` may; a grant already held directly is a Conflict saying `already`."""
    if codename in _direct_perms(grantee, model):
        raise Conflict(already)
    assign_perm(codename, grantee, model)
    audit_record(
        actor=actor,
        action="registry.permission.granted",
        target=model,
        changes={"permission": codename, **grantee_ref(grantee)},
    )


@transaction.atomic
def object_permission_remove(
    *,
    actor: Any,
    model: RegisteredModel,
    grantee: AbstractBaseUser | Group,
    codename: str,
    missing: str,
) -> None:
    """Withdraw a direct object permission on one model and record it (see the above)."""
    if codename not in _direct_perms(grantee, model):
        raise Conflict(missing)
    remove_perm(codename, grantee, model)
    audit_record(
        actor=actor,
        action="registry.permission.revoked",
        target=model,
        changes={"permission": codename, **grantee_ref(grantee)},
    )


def _check_grant(actor: Any, model: RegisteredModel, permission: str) -> None:
    if permission not in GRANTABLE:
        raise ValidationError({"permission": f"Must be one of: {', '.join(sorted(GRANTABLE))}."})
    require_change_model(actor, model)


def _direct_perms(grantee: AbstractBaseUser | Group, model: RegisteredModel) -> set[str]:
    if isinstance(grantee, Group):
        return set(get_group_perms(grantee, model).values_list("codename", flat=True))
    return set(get_user_perms(grantee, model).values_list("codename", flat=True))
