"""Who may see and change catalogue entities (grants are written by registry.services).

The rule, applied by every door: a registered model (and its versions) is *visible* to its
owner, to holders of an object permission on it, to holders of the global view permission
(validators, risk officers, auditors) and to superusers; anyone else gets 404, exactly as if
it did not exist. A visible model may be *changed* only by its owner, by users or groups
granted `change_registeredmodel` on that model, and by superusers; anyone else gets 403.
Other catalogue entities (datasets, features, jobs, runs) are shared reference data: the
global Django model permissions of the caller's groups decide (view for reads, add and change
for writes).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission, UserObjectPermission
from rest_framework.permissions import DjangoModelPermissions

from registry.models import RegisteredModel

VIEW_MODEL = "registry.view_registeredmodel"
CHANGE_MODEL = "registry.change_registeredmodel"
ADD_MODEL = "registry.add_registeredmodel"
GRANTABLE = {"view_registeredmodel", "change_registeredmodel"}

ROLES = ("data-scientist", "pipeline", "model-validator", "risk-officer", "auditor")


GRANTS_TO_SEE = ("view_registeredmodel", "change_registeredmodel")


def can_view_model(user: Any, model: RegisteredModel) -> bool:
    """The owner, superusers and holders of the global view permission (no query beyond
    Django's per-user permission cache), else one EXISTS over the object grants."""
    if not _active(user):
        return False
    return (
        user.is_superuser
        or model.owner_id == user.pk
        or user.has_perm(VIEW_MODEL)
        or holds_object_permission(user, model, GRANTS_TO_SEE)
    )


def visibility(user: Any, path: str = "") -> Q | None:
    """can_view_model asked of many rows at once, for an active user: the condition "the
    model at `path` (e.g. "version__model__"; "" for a model itself) is visible to them", to
    filter a list in the same statement (owned, or granted to them or a group of theirs:
    EXISTS over the object grants); None when every model is (superusers, holders of the
    global view permission)."""
    if user.is_superuser or user.has_perm(VIEW_MODEL):
        return None
    return Q(**{f"{path}owner": user}) | object_grants(user, GRANTS_TO_SEE, OuterRef(f"{path}pk"))


def can_change_model(user: Any, model: RegisteredModel) -> bool:
    if not _active(user):
        return False
    # Object-level only: a global change permission does not reach every model.
    return (
        user.is_superuser
        or model.owner_id == user.pk
        or holds_object_permission(user, model, ("change_registeredmodel",))
    )


def may_change_some_model(user: Any) -> bool:
    """Whether `user` may change at least one registered model (owns one, or holds a grant to
    change one): what offering a model-changing action to them takes."""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    return RegisteredModel.objects.filter(
        Q(owner=user) | object_grants(user, ("change_registeredmodel",), OuterRef("pk"))
    ).exists()


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def _model_content_type() -> ContentType:
    return ContentType.objects.get_for_model(RegisteredModel)  # cached per process


def object_grants(user: Any, codenames: tuple[str, ...], model_pk: Any) -> Q:
    """The condition "`user`, or a group of theirs, holds one of `codenames` on the model whose
    primary key is `model_pk`" (a value or an OuterRef), as two EXISTS over guardian's
    object-permission tables — what guardian's checks ask, without compiling its querysets."""
    content_type = _model_content_type()
    if not isinstance(model_pk, OuterRef):
        model_pk = str(model_pk)
    else:
        model_pk = Cast(model_pk, CharField())
    grant = {
        "content_type": content_type,
        "object_pk": model_pk,
        "permission__content_type": content_type,
        "permission__codename__in": codenames,
    }
    return Q(Exists(UserObjectPermission.objects.filter(user=user, **grant))) | Q(
        Exists(GroupObjectPermission.objects.filter(group__user=user, **grant))
    )


def holds_object_permission(
    user: Any, model: RegisteredModel, codenames: tuple[str, ...], or_else: Q | None = None
) -> bool:
    """Whether an active user holds one of `codenames` on this model through an object
    grant (to them or to a group of theirs) — or `or_else` holds: one statement. Superusers
    hold every one, as in guardian."""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    condition = object_grants(user, codenames, model.pk)
    if or_else is not None:
        condition |= or_else
    return ContentType.objects.filter(pk=_model_content_type().pk).filter(condition).exists()


def holders(codename: str, model: RegisteredModel) -> Q:
    """The condition, on users, "holds `codename` on this model through an object grant, to
    them or to a group of theirs" (superusers only through a grant, as guardian's
    get_users_with_perms(with_superusers=False) answers)."""
    content_type = _model_content_type()
    grant = {
        "content_type": content_type,
        "object_pk": str(model.pk),
        "permission__content_type": content_type,
        "permission__codename": codename,
    }
    return Q(Exists(UserObjectPermission.objects.filter(user=OuterRef("pk"), **grant))) | Q(
        Exists(GroupObjectPermission.objects.filter(group__user=OuterRef("pk"), **grant))
    )


def require_change_model(user: Any, model: RegisteredModel) -> None:
    if not can_change_model(user, model):
        raise PermissionDenied(
            f"You may not change model '{model.name}': only its owner and users granted "
            "change permission on it may."
        )


def require_global(user: Any, perm: str) -> None:
    if not getattr(user, "is_authenticated", False) or not user.has_perm(perm):
        raise PermissionDenied(f"You lack the permission '{perm}'.")


def grantee_label(grantee: AbstractBaseUser | Group) -> str:
    """'User alice' or 'Group risk-officer', for messages."""
    ((kind, name),) = grantee_ref(grantee).items()
    return f"{kind.capitalize()} '{name}'"


def grantee_ref(grantee: AbstractBaseUser | Group) -> dict[str, str]:
    if isinstance(grantee, Group):
        return {"group": grantee.name}
    return {"user": grantee.get_username()}


class CataloguePermissions(DjangoModelPermissions):
    """Global model permissions, with `view` required for reads (DRF's default omits it)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        # DELETE archives: a change, not a deletion.
        "DELETE": ["%(app_label)s.change_%(model_name)s"],
    }
