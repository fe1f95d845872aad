"""Who may file and who may decide promotion requests.

Deciding needs both a role and an object permission:

- membership of a role group the request's policy asks for (model-validator, risk-officer);
- the object permission `registry.decide_promotion` on that registered model, granted per
  model (to a user or a group) with django-guardian, so approvers can be scoped to business
  units. The permission is created by the approvals migrations on the content type of
  `registry.RegisteredModel`: django-guardian stores an object permission against the content
  type of the object it protects and refuses a permission of another app, so a permission
  declared on an approvals model could not be granted on a registered model. A global grant of
  the permission does not reach any model; superusers hold every permission, as in Django.

And independence: the requester never decides their own request, nor does the person who
created the version.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied

from approvals import workflow
from approvals.defaults import DECIDE_CODENAME
from registry.models import ModelVersion, RegisteredModel
from registry.permissions import (
    can_change_model,
    grantee_label,
    object_permission_assign,
    object_permission_remove,
)

DECIDE_PROMOTION = f"registry.{DECIDE_CODENAME}"


def user_roles(user: Any) -> set[str]:
    """The approver roles (group names) a user holds."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    cached = getattr(user, "_approver_roles", None)
    if cached is None:
        cached = set(
            user.groups.filter(name__in=workflow.APPROVER_ROLES).values_list("name", flat=True)
        )
        user._approver_roles = cached
    return set(cached)


def holds_decide_permission(user: Any, model: RegisteredModel) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.has_perm(DECIDE_PROMOTION, model)


def decide_refusal(user: Any, request: Any, version: ModelVersion) -> str | None:
    """Why `user` may not decide `request`, in plain words; None when they may.

    Covers who the person is (403 through the API). What the request's state allows (pending,
    open slots, earlier decisions: 409) is checked by the decision service under its lock.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return "Sign in to decide promotion requests."
    if request.requester_id == user.pk:
        return "You filed this request; another approver must decide it."
    if version.created_by_id == user.pk:
        return "You created this version; someone independent of its authors must decide it."
    wanted = [r for r, n in request.required.items() if n > 0]
    if not user_roles(user) & set(wanted):
        return (
            f"Deciding this request needs the role {' or '.join(wanted)}; you hold neither."
            if len(wanted) > 1
            else f"Deciding this request needs the role {wanted[0]}; you do not hold it."
        )
    if not holds_decide_permission(user, version.model):
        return (
            f"You are not an approver for model '{version.model.name}': you need the "
            f"permission to decide its promotions (granted per model by an administrator)."
        )
    return None


def may_file(user: Any, version: ModelVersion) -> bool:
    """Those who may change the model, approvers of it (e.g. to file a withdrawal), and the
    system account (re-validation and review requests filed by monitoring)."""
    return (
        can_change_model(user, version.model)
        or is_system_account(user)
        or bool(user_roles(user) and holds_decide_permission(user, version.model))
    )


# --- the system account ---------------------------------------------------------------------
# Requests the system files on its own (monitoring breaches) need a requester row. The system
# account has no usable password, no role and no object permission: it may file for any model
# but never decide, sign in, or appear as an eligible approver; people decide as usual.
SYSTEM_USERNAME = "modelgov-system"


def system_account() -> Any:
    """The system account, created on first use."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": True, "is_staff": False, "first_name": "modelgov"},
    )
    if created:
        user.set_unusable_password()
        user.last_name = "(system)"
        user.save(update_fields=["password", "last_name"])
    return user


def is_system_account(user: Any) -> bool:
    return (
        getattr(user, "is_authenticated", False)
        and getattr(user, "username", None) == SYSTEM_USERNAME
        and not user.has_usable_password()
        and not user.is_superuser
    )


def _require_superuser(actor: Any) -> None:
    """A superuser, or None for the command line (whoever runs manage.py is trusted)."""
    if actor is None:
        return
    if not (getattr(actor, "is_authenticated", False) and actor.is_superuser):
        raise PermissionDenied("Only an administrator (superuser) may appoint approvers.")


def decide_permission_grant(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group
) -> None:
    """Let a user or group decide the promotions of one model (administrators only: the
    model's owners choosing their own approvers would defeat independence)."""
    _require_superuser(actor)
    object_permission_assign(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=DECIDE_CODENAME,
        already=f"{grantee_label(grantee)} may already decide promotions of this model.",
    )


def decide_permission_revoke(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group
) -> None:
    """Withdraw a grant made with decide_permission_grant (administrators only)."""
    _require_superuser(actor)
    object_permission_remove(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=DECIDE_CODENAME,
        missing=f"{grantee_label(grantee)} holds no grant to decide promotions of this model.",
    )
