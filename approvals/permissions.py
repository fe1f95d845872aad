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

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from approvals import workflow
from approvals.defaults import DECIDE_CODENAME
from audit.selectors import role_names
from registry.models import ModelVersion, RegisteredModel
from registry.permissions import can_change_model, holders, holds_object_permission

DECIDE_PROMOTION = f"registry.{DECIDE_CODENAME}"


def user_roles(user: Any) -> set[str]:
    """The approver roles (group names) a user holds (read once per request with the user's
    other roles: audit.selectors.role_names)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    return set(role_names(user) & set(workflow.APPROVER_ROLES))


def holds_decide_permission(user: Any, model: RegisteredModel) -> bool:
    """Appointed for this model: the object permission on it (user or group), or an
    appointment for its business unit — asked in one statement."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    by_unit = (
        Q(Exists(_unit_appointments(model.business_unit, user))) if model.business_unit else None
    )
    return holds_object_permission(user, model, (DECIDE_CODENAME,), or_else=by_unit)


def _unit_appointments(business_unit: str, user: Any):
    from approvals.models import BusinessUnitAppointment

    return BusinessUnitAppointment.objects.filter(
        business_unit=business_unit, revoked_at__isnull=True
    ).filter(Q(user=user) | Q(group__in=user.groups.all()))


def _appointed(model: RegisteredModel) -> Q:
    """The condition, on users, "appointed to decide this model's promotions": the decide
    permission on the model (directly or through a group) or an appointment for its business
    unit (directly or through a group)."""
    from approvals.models import BusinessUnitAppointment

    condition = holders(DECIDE_CODENAME, model)
    if model.business_unit:
        units = BusinessUnitAppointment.objects.filter(
            business_unit=model.business_unit, revoked_at__isnull=True
        )
        condition |= Q(Exists(units.filter(user=OuterRef("pk")))) | Q(
            Exists(units.filter(group__user=OuterRef("pk")))
        )
    return condition


def appointed_users(model: RegisteredModel):
    """Active users appointed to decide the model's promotions (per model or business unit;
    directly or through a group), whatever their role."""
    return get_user_model().objects.filter(_appointed(model), is_active=True)


def _members(request: Any, version: ModelVersion, role: str):
    """Active members of the role, never the requester nor the version's creator."""
    independent = ~Q(pk__in=[pk for pk in (request.requester_id, version.created_by_id) if pk])
    return get_user_model().objects.filter(independent, is_active=True, groups__name=role)


def _falls_back(request: Any) -> bool:
    return request.policy_snapshot.get("fallback", "role") == "role"


def deciders_for_role(request: Any, version: ModelVersion, role: str) -> tuple[list[Any], str]:
    """Who may fill the request's slots of `role`, and how they came to ("appointed", or
    "fallback" when nobody holding the role was appointed and the policy falls back to every
    member of the role). Never the requester nor the version's creator."""
    members = _members(request, version, role)
    appointed = list(members.filter(_appointed(version.model)).distinct().order_by("username"))
    if appointed:
        return appointed, "appointed"
    if _falls_back(request):
        return list(members.distinct().order_by("username")), "fallback"
    return [], "none"


def eligible_deciders(request: Any, version: ModelVersion) -> list[Any]:
    """Everyone who may decide the request (any role it asks for), by username."""
    people: dict[int, Any] = {}
    for role, needed in request.required.items():
        if needed > 0:
            for user in deciders_for_role(request, version, role)[0]:
                people[user.pk] = user
    return sorted(people.values(), key=lambda u: u.get_username())


@dataclass(frozen=True)
class Shortfall:
    """Roles whose slots the people who may decide them cannot all fill."""

    roles: tuple[str, ...]
    slots: int  # approvals the roles need together
    people: int  # distinct people who may give them


def roles_short_of_deciders(request: Any, version: ModelVersion) -> list[Shortfall]:
    """The roles (alone, or together where people hold several) whose slots could never all
    be filled: one person fills one slot, and only those `deciders_for_role` names (never the
    requester nor the version's creator). For every set of the roles the request needs, the
    people who may decide one of them must be at least the slots they need together (enough
    to fill every slot, by Hall's theorem); the smallest sets that fall short, in order."""
    people = {
        role: {user.pk for user in deciders_for_role(request, version, role)[0]}
        for role, needed in sorted(request.required.items())
        if needed > 0
    }
    short: list[Shortfall] = []
    for size in range(1, len(people) + 1):
        for roles in combinations(people, size):
            if any(set(found.roles) <= set(roles) for found in short):
                continue
            slots = sum(request.required[role] for role in roles)
            able = len(set().union(*(people[role] for role in roles)))
            if able < slots:
                short.append(Shortfall(roles, slots, able))
    return short


def _decides_by_fallback(user: Any, request: Any, version: ModelVersion, roles: set[str]) -> bool:
    for role in roles:
        people, how = deciders_for_role(request, version, role)
        if how == "fallback" and any(u.pk == user.pk for u in people):
            return True
    return False


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
    if not holds_decide_permission(user, version.model) and not _decides_by_fallback(
        user, request, version, user_roles(user) & set(wanted)
    ):
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


def is_system_account(user: Any) -> bool:
    return (
        getattr(user, "is_authenticated", False)
        and getattr(user, "username", None) == SYSTEM_USERNAME
        and not user.has_usable_password()
        and not user.is_superuser
    )
