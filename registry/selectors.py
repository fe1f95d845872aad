"""Reads of the catalogue that respect who may see what (filtered in SQL, never per object)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Run
from registry.permissions import CHANGE_MODEL, VIEW_MODEL


def models_visible_to(user: Any) -> QuerySet[RegisteredModel]:
    """Models the user may see: owned, granted (object or global view), or all for superusers."""
    base = RegisteredModel.objects.select_related("owner")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return base.none()
    if user.is_superuser or user.has_perm(VIEW_MODEL):
        return base
    granted = get_objects_for_user(
        user,
        [VIEW_MODEL, CHANGE_MODEL],
        klass=RegisteredModel,
        any_perm=True,
        with_superuser=False,
        accept_global_perms=False,
        use_groups=True,
    )
    return base.filter(Q(owner=user) | Q(pk__in=granted.values("pk")))


def versions_visible_to(user: Any) -> QuerySet[ModelVersion]:
    """Versions of the models the user may see."""
    return ModelVersion.objects.select_related(
        "model", "model__owner", "created_by", "training_run"
    ).filter(model__in=models_visible_to(user).values("pk"))


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


def latest_dataset_versions(
    dataset_ids: Iterable[int], *, not_produced_by: Run | None = None
) -> dict[int, str]:
    """For each dataset, its latest version (by creation), leaving out versions written by
    `not_produced_by`: dataset id → version, one query for them all (datasets without such a
    version are absent)."""
    ids = sorted(set(dataset_ids))
    if not ids:
        return {}
    # A correlated subquery: for each dataset, a scan of its versions on the dataset_id index.
    other_run = (
        ""
        if not_produced_by is None
        else (" AND (v.produced_by_id IS NULL OR v.produced_by_id <> %s)")
    )
    sql = (
        f"SELECT d.id, (SELECT v.version FROM {DatasetVersion._meta.db_table} v "
        f"WHERE v.dataset_id = d.id{other_run} ORDER BY v.created_at DESC, v.id DESC LIMIT 1) "
        f"FROM {Dataset._meta.db_table} d WHERE d.id IN ({', '.join(['%s'] * len(ids))})"
    )
    params = ([] if not_produced_by is None else [not_produced_by.pk]) + ids
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {pk: version for pk, version in rows if version is not None}
