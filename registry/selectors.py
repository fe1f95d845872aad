"""Reads of the catalogue that respect who may see what (filtered in SQL, never per object)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from registry.models import ModelAlias, ModelVersion, RegisteredModel
from registry.permissions import can_view_model, visibility


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def models_visible_to(user: Any) -> QuerySet[RegisteredModel]:
    """Models the user may see: owned, granted (object or global view), or all for superusers."""
    base = RegisteredModel.objects.select_related("owner")
    if not _active(user):
        return base.none()
    condition = visibility(user)
    return base if condition is None else base.filter(condition)


def versions_visible_to(user: Any) -> QuerySet[ModelVersion]:
    """Versions of the models the user may see."""
    base = ModelVersion.objects.select_related(
        "model", "model__owner", "created_by", "training_run"
    )
    if not _active(user):
        return base.none()
    condition = visibility(user, "model__")
    return base if condition is None else base.filter(condition)


def visible_model(user: Any, name: str, queryset: QuerySet | None = None) -> RegisteredModel | None:
    """The model of that name if the user may see it (None otherwise, as if it did not exist):
    one keyed fetch, then the single-object check of registry.permissions."""
    if not _active(user):
        return None
    if queryset is None:
        queryset = RegisteredModel.objects.select_related("owner")
    model = queryset.filter(name=name).first()
    return model if model is not None and can_view_model(user, model) else None


def visible_version(
    user: Any, name: str, number: Any, queryset: QuerySet | None = None
) -> ModelVersion | None:
    """Version `number` of the model `name` if the user may see the model (None otherwise):
    one keyed fetch with the model, its owner, the creator and the training run, then the
    single-object check."""
    if not _active(user):
        return None
    if queryset is None:
        queryset = ModelVersion.objects.all()
    version = (
        queryset.select_related("model", "model__owner", "created_by", "training_run")
        .filter(model__name=name, version=number)
        .first()
    )
    return version if version is not None and can_view_model(user, version.model) else None


def model_grants(model: RegisteredModel) -> list[dict[str, str]]:
    """Object permissions granted on one model, to users and to groups."""
    from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

    grants = []
    users = get_users_with_perms(
        model, attach_perms=True, with_group_users=False, with_superusers=False
    )
    for user, perms in sorted(users.items(), key=lambda item: item[0].username):
        grants += [{"user": user.username, "group": None, "permission": p} for p in sorted(perms)]
    for group, perms in sorted(
        get_groups_with_perms(model, attach_perms=True).items(), key=lambda item: item[0].name
    ):
        grants += [{"user": None, "group": group.name, "permission": p} for p in sorted(perms)]
    return grants


def governed_aliases_of(version: ModelVersion) -> list[str]:
    """The governed aliases (settings.GOVERNED_ALIASES) that name this version: those of
    its stage (production holds one version at most)."""
    return [alias for alias, stage in settings.GOVERNED_ALIASES.items() if stage == version.stage]


def stored_aliases(versions: Any) -> dict[int, list[str]]:
    """Version id → the names of the (ungoverned) aliases pointing at it."""
    found: dict[int, list[str]] = {}
    for version_id, alias in ModelAlias.objects.filter(version__in=versions).values_list(
        "version_id", "alias"
    ):
        found.setdefault(version_id, []).append(alias)
    return found


def alias_rows(models: Any) -> list[tuple[int, int, int, str]]:
    """(model id, version id, version number, alias) of every alias of the given models:
    stored aliases, plus the governed ones, which always name the version in their stage."""
    rows = list(
        ModelAlias.objects.filter(model__in=models).values_list(
            "model_id", "version_id", "version__version", "alias"
        )
    )
    governed = settings.GOVERNED_ALIASES
    if governed:
        for version in ModelVersion.objects.filter(
            model__in=models, stage__in=set(governed.values())
        ).only("pk", "model_id", "version", "stage"):
            rows += [
                (version.model_id, version.pk, version.version, alias)
                for alias in governed_aliases_of(version)
            ]
    return rows


def version_by_alias(model: RegisteredModel, alias: str) -> ModelVersion | None:
    """The version an alias of a model names (a governed alias: the latest in its stage)."""
    stage = settings.GOVERNED_ALIASES.get(alias)
    versions = ModelVersion.objects.select_related("model", "created_by", "training_run")
    if stage is not None:
        return versions.filter(model=model, stage=stage).order_by("-version").first()
    return versions.filter(model=model, aliases__alias=alias).first()
