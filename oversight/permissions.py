"""Who may record validations, close findings, post monitoring, resolve alerts and complete
reviews. Seeing a model is registry's rule (404 otherwise); these decide what a person who
sees it may do (403 otherwise)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q

from approvals.permissions import holds_decide_permission, user_roles
from approvals.workflow import APPROVER_ROLES, VALIDATOR
from oversight.models import SERIOUS
from registry.models import ModelVersion
from registry.permissions import can_change_model, can_view_model, object_grants

EDIT_RULES = "oversight.change_thresholdrule"
EDIT_POLICIES = "oversight.change_oversightpolicy"


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def validation_refusal(user: Any, version: ModelVersion) -> str | None:
    """Why `user` may not record a validation (report or finding) of `version`; None when
    they may: a model validator (or superuser) independent of the version's author."""
    if not _active(user) or not can_view_model(user, version.model):
        return "You may not see this model."
    if not (user.is_superuser or VALIDATOR in user_roles(user)):
        return "Recording a validation needs the role model-validator."
    if version.created_by_id == user.pk:
        return "You created this version; its validation must be independent of its authors."
    return None


def require_validator(user: Any, version: ModelVersion) -> None:
    if (refusal := validation_refusal(user, version)) is not None:
        raise PermissionDenied(refusal)


def may_close_finding(user: Any, version: ModelVersion) -> bool:
    """The model's owners (reporting a remediation) and approvers in a role (validators,
    risk officers) who see it."""
    if not _active(user):
        return False
    return can_change_model(user, version.model) or bool(
        user_roles(user) and can_view_model(user, version.model)
    )


def finding_close_refusal(user: Any, finding: Any) -> str | None:
    """Why `user` may not close `finding`; None when they may. A high or critical finding is
    closed by someone other than the version's author (asked before anything they send)."""
    version = finding.report.version
    if not may_close_finding(user, version):
        return "Closing a finding needs change rights on the model or an approver role."
    if finding.severity in SERIOUS and version.created_by_id == user.pk:
        return (
            f"This finding is {finding.severity}: someone other than the version's author "
            "must close it."
        )
    return None


def may_post_monitoring(user: Any, version: ModelVersion) -> bool:
    """Who may change the model: its owner, those granted change on it (pipelines).

    Remembered on the user object, which lives for one request (or task): the view asks
    before parsing a batch (so a hidden model is 404 whatever the body) and the service asks
    again, on the ingest hot path."""
    remembered = _remembered(user)
    if version.model_id not in remembered:
        remembered[version.model_id] = can_change_model(user, version.model)
    return remembered[version.model_id]


def _remembered(user: Any) -> dict[int, bool]:
    return user.__dict__.setdefault("_may_change_models", {})


# What ingest reads of a version and its model (not the documentation it carries).
INGEST_FIELDS = (
    "model_id",
    "version",
    "stage",
    "created_by_id",
    "model__name",
    "model__owner_id",
    "model__risk_tier",
    "model__archived",
)


def version_for_monitoring(user: Any, model_name: str, number: int) -> ModelVersion | None:
    """The version named by a monitoring URL, with its model, and whether `user` may post
    monitoring of it — in one query when they may (the ingest hot path asks this once per
    batch); a refusal asks again, for the version alone.

    The answer is registry's `can_change_model` (owner, object permission granted to the user
    or one of their groups, superuser) asked in SQL, and is remembered for
    `may_post_monitoring`. None when no such version exists (whoever asks)."""
    versions = (
        ModelVersion.objects.select_related("model")
        .filter(model__name=model_name, version=number)
        .only(*INGEST_FIELDS)
    )
    if not _active(user):
        return _one(versions)  # nothing to remember: may_post_monitoring says no
    if user.is_superuser:
        version, may_change = _one(versions), True
    else:
        changers = Q(model__owner_id=user.pk) | object_grants(
            user, ("change_registeredmodel",), OuterRef("model_id")
        )
        version = _one(versions.filter(changers))
        may_change = version is not None
        if version is None:
            version = _one(versions)
    if version is not None:
        _remembered(user)[version.model_id] = may_change
    return version


def _one(versions: Any) -> ModelVersion | None:
    # A model's version numbers are unique: no ordering needed to take the one.
    return next(iter(versions[:1]), None)


def may_resolve_alert(user: Any, version: ModelVersion) -> bool:
    return may_close_finding(user, version)


def review_refusal(user: Any, version: ModelVersion) -> str | None:
    """Why `user` may not complete a periodic review of `version`; None when they may: an
    approver of the model (role and per-model permission), not the version's author."""
    if not _active(user) or not can_view_model(user, version.model):
        return "You may not see this model."
    if not set(APPROVER_ROLES) & user_roles(user) or not holds_decide_permission(
        user, version.model
    ):
        return (
            f"Completing a review needs an approver role and the permission to decide "
            f"promotions of model '{version.model.name}'."
        )
    if version.created_by_id == user.pk:
        return "You created this version; its review must be independent of its authors."
    return None
