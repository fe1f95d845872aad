"""Who may record validations, close findings, post monitoring, resolve alerts and complete
reviews. Seeing a model is registry's rule (404 otherwise); these decide what a person who
sees it may do (403 otherwise)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from approvals.permissions import holds_decide_permission, user_roles
from approvals.workflow import APPROVER_ROLES, VALIDATOR
from oversight.models import SERIOUS
from registry.models import ModelVersion
from registry.permissions import can_change_model, can_view_model

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
    remembered = user.__dict__.setdefault("_may_change_models", {})
    if version.model_id not in remembered:
        remembered[version.model_id] = can_change_model(user, version.model)
    return remembered[version.model_id]


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
