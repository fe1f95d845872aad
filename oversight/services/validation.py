"""Validation reports and findings."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from oversight import permissions
from oversight.models import (
    Finding,
    FindingStatus,
    Severity,
    ValidationReport,
)
from oversight.services._common import _text, _user_ref
from registry.models import ModelVersion

# --- validation reports and findings --------------------------------------------------------


@transaction.atomic
def validation_report_create(
    *,
    actor: AbstractBaseUser,
    version: ModelVersion,
    scope: str,
    methods: str,
    conclusion: str = "",
    conditions_of_use: str = "",
) -> ValidationReport:
    """Record an independent validator's report on a version (findings are added to it)."""
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    permissions.require_validator(actor, version)
    report = ValidationReport.objects.create(
        version=version,
        validator=actor,
        scope=_text(scope, "scope", "The scope"),
        methods=_text(methods, "methods", "The methods"),
        conclusion=_text(conclusion, "conclusion", "", required=False),
        conditions_of_use=_text(conditions_of_use, "conditions_of_use", "", required=False),
    )
    audit_record(
        actor=actor,
        action="oversight.validation_report.recorded",
        target=report,
        changes={
            "version": str(version),
            "content_digest": version.content_digest,
            "scope": report.scope,
            "methods": report.methods,
            "conclusion": report.conclusion,
            "conditions_of_use": report.conditions_of_use,
        },
    )
    return report


@transaction.atomic
def finding_record(
    *,
    actor: AbstractBaseUser,
    report: ValidationReport,
    title: str,
    severity: str,
    description: str = "",
    owner: AbstractBaseUser | None = None,
    due_date: date | None = None,
) -> Finding:
    """Add a finding (open) to a validation report."""
    report = ValidationReport.objects.select_related("version__model").get(pk=report.pk)
    permissions.require_validator(actor, report.version)
    if severity not in Severity.values:
        raise ValidationError(
            {"severity": f"Must be one of {', '.join(Severity.values)}."}, code="invalid_choice"
        )
    if due_date is not None and not isinstance(due_date, date):
        raise ValidationError({"due_date": "Must be a date."}, code="invalid")
    if owner is not None and not owner.is_active:
        raise ValidationError({"owner": "Must be an active user."}, code="invalid")
    finding = Finding.objects.create(
        report=report,
        title=_text(title, "title", "A title", limit=200),
        description=_text(description, "description", "", required=False),
        severity=severity,
        owner=owner,
        due_date=due_date,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action="oversight.finding.recorded",
        target=finding,
        changes={
            "report": report.pk,
            "version": str(report.version),
            "title": finding.title,
            "severity": severity,
            "status": FindingStatus.OPEN,
            "owner": _user_ref(owner),
            "due_date": due_date.isoformat() if due_date else None,
        },
    )
    return finding


@transaction.atomic
def finding_close(
    *, actor: AbstractBaseUser, finding: Finding, status: str, comment: str
) -> Finding:
    """Close an open finding as remediated or accepted, with a comment. A high or critical
    finding must be closed by someone other than the version's author."""
    finding = (
        Finding.objects.select_for_update(of=("self",))
        .select_related("report__version__model")
        .get(pk=finding.pk)
    )
    refusal = permissions.finding_close_refusal(actor, finding)
    if refusal:
        raise PermissionDenied(refusal)
    if status not in (FindingStatus.REMEDIATED, FindingStatus.ACCEPTED):
        raise ValidationError({"status": "Must be remediated or accepted."}, code="invalid_choice")
    comment = _text(comment, "comment", "A comment", limit=10_000)
    now = timezone.now()
    updated = Finding.objects.filter(pk=finding.pk, status=FindingStatus.OPEN).update(
        status=status, closed_by=actor, closed_at=now, closing_comment=comment
    )
    if updated != 1:
        raise Conflict(f"This finding is already {finding.status}.", code="not_open")
    finding.refresh_from_db()
    audit_record(
        actor=actor,
        action="oversight.finding.closed",
        target=finding,
        changes={"status": [FindingStatus.OPEN, status], "comment": comment},
    )
    return finding
