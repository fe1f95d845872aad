"""Every write of oversight: validation reports and findings, monitoring points, alerts and
the re-validation requests they file, threshold rules and policies, periodic reviews.

Each public service takes keyword arguments and an explicit actor (None: the system, as in
Celery tasks), runs in one transaction and records one audit event per committed change.
E-mails and alert evaluation are queued after commit.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from approvals import permissions as approval_permissions
from approvals import services as approvals
from approvals.models import StageTransition
from audit.services import audit_record
from core.errors import Conflict
from oversight import permissions
from oversight.models import (
    SERIOUS,
    AlertStatus,
    Finding,
    FindingStatus,
    MonitoringAlert,
    MonitoringPoint,
    OversightPolicy,
    PeriodicReview,
    ReviewStatus,
    Severity,
    ThresholdRule,
    ValidationReport,
)
from oversight.monitoring import Point
from registry.models import ModelVersion, Stage

logger = logging.getLogger(__name__)
MAX_TEXT = 20_000


def _on_commit(task: Any, *args: Any) -> None:
    """Queue a task once the transaction commits; a failure to queue is logged, never raised
    into a request that already committed."""
    transaction.on_commit(partial(task.delay, *args), robust=True)


def _text(value: Any, field: str, what: str, *, required: bool = True, limit: int = MAX_TEXT):
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "Must be a string."}, code="invalid")
    text = value.strip()
    if required and not text:
        raise ValidationError({field: f"{what} is required."}, code="required")
    if len(text) > limit:
        raise ValidationError({field: f"At most {limit} characters."}, code="max_length")
    return text


def _user_ref(user: Any) -> str | None:
    return user.get_username() if user is not None else None


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
    version = finding.report.version
    if not permissions.may_close_finding(actor, version):
        raise PermissionDenied(
            "Closing a finding needs change rights on the model or an approver role."
        )
    if finding.severity in SERIOUS and version.created_by_id == actor.pk:
        raise PermissionDenied(
            f"This finding is {finding.severity}: someone other than the version's author "
            "must close it."
        )
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


# --- monitoring: points -----------------------------------------------------------------------


def rules_for(version: ModelVersion) -> list[ThresholdRule]:
    """The active rules that apply to a version: its model's, and its risk tier's."""
    return list(
        ThresholdRule.objects.filter(active=True).filter(
            Q(model_id=version.model_id) | Q(risk_tier=version.model.risk_tier)
        )
    )


def _breaching(rules: Sequence[ThresholdRule], metric: str, segment: str, value: float) -> bool:
    return any(
        r.metric == metric and (not r.segment or r.segment == segment) and r.breached_by(value)
        for r in rules
    )


class RecordedBatch(NamedTuple):
    points: list[MonitoringPoint]
    breaching: list[int]  # ids of the points beyond a threshold rule


@transaction.atomic
def monitoring_points_record(
    *, actor: AbstractBaseUser, version: ModelVersion, points: Sequence[Point]
) -> RecordedBatch:
    """Append a batch of production measurements of a version (one insert, one audit event).
    Points beyond a threshold are evaluated by a task after commit (alerts, re-validation)."""
    if not permissions.may_post_monitoring(actor, version):
        raise PermissionDenied(
            f"You may not post monitoring of model '{version.model.name}': its owner and users "
            "granted change permission on it may."
        )
    if version.model.archived:
        raise Conflict(f"Model '{version.model.name}' is archived.", code="archived")
    now = timezone.now()
    rows = MonitoringPoint.objects.bulk_create(
        [
            MonitoringPoint(
                version_id=version.pk,
                metric=p.metric,
                segment=p.segment,
                value=p.value,
                window_start=p.window_start,
                window_end=p.window_end,
                recorded_at=now,
            )
            for p in points
        ]
    )
    rules = rules_for(version)
    breaching = [r.pk for r in rows if _breaching(rules, r.metric, r.segment, r.value)]
    # Filed under the version's monitoring rather than the version itself, so that the
    # version's own trail (and its model card) is not one event per batch.
    audit_record(
        actor=actor,
        action="oversight.monitoring.recorded",
        object_type="oversight.monitoring",
        object_id=str(version.pk),
        object_repr=f"monitoring of {version}",
        changes={
            "points": len(rows),
            "ids": [rows[0].pk, rows[-1].pk],
            "metrics": sorted({r.metric for r in rows}),
            "breaching": len(breaching),
        },
    )
    if breaching:
        from oversight.tasks import evaluate_breaches

        _on_commit(evaluate_breaches, version.pk, breaching)
    return RecordedBatch(rows, breaching)


# --- monitoring: alerts and re-validation ------------------------------------------------------


@transaction.atomic
def monitoring_breaches_evaluate(*, version_id: int, point_ids: Sequence[int]) -> list[int]:
    """Open an alert per rule a point breaches (or count the breach on its open alert), and
    file a re-validation request where the rule says so. Run by a task after the points
    committed, by the system; idempotent (points an alert already counted are skipped).
    Returns the ids of the alerts opened."""
    version = (
        ModelVersion.objects.select_for_update(no_key=True)
        .select_related("model")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        return []
    points = list(MonitoringPoint.objects.filter(pk__in=point_ids, version=version).order_by("pk"))
    rules = rules_for(version)
    seen = dict(
        MonitoringAlert.objects.filter(version=version)
        .values("rule_id")
        .annotate(last=Max("last_point_id"))
        .values_list("rule_id", "last")
    )
    opened: list[MonitoringAlert] = []
    for rule in rules:
        hits = [
            p
            for p in points
            if p.metric == rule.metric
            and (not rule.segment or rule.segment == p.segment)
            and rule.breached_by(p.value)
            and p.pk > (seen.get(rule.pk) or 0)
        ]
        if not hits:
            continue
        alert = MonitoringAlert.objects.filter(
            version=version, rule=rule, status=AlertStatus.OPEN
        ).first()
        if alert is not None:
            MonitoringAlert.objects.filter(pk=alert.pk).update(
                breaches=alert.breaches + len(hits), last_point=hits[-1]
            )
            continue
        opened.append(_alert_open(version, rule, hits))
    return [a.pk for a in opened]


def _alert_open(version: ModelVersion, rule: ThresholdRule, hits: list[MonitoringPoint]):
    first = hits[0]
    alert = MonitoringAlert.objects.create(
        version=version,
        rule=rule,
        point=first,
        last_point=hits[-1],
        rule_text=str(rule)[:400],
        metric=first.metric,
        segment=first.segment,
        value=first.value,
        breaches=len(hits),
    )
    if rule.revalidate:
        request, note = _file_revalidation(version, alert)
        alert.revalidation_request, alert.revalidation_note = request, note
        alert.save(update_fields=["revalidation_request", "revalidation_note"])
    audit_record(
        actor=None,
        action="oversight.monitoring_alert.opened",
        target=alert,
        changes={
            "version": str(version),
            "rule": alert.rule_text,
            "metric": alert.metric,
            "segment": alert.segment,
            "value": alert.value,
            "point": first.pk,
            "revalidation_request": alert.revalidation_request_id,
            "revalidation_note": alert.revalidation_note,
        },
    )
    from oversight.tasks import notify_alert

    _on_commit(notify_alert, alert.pk)
    return alert


def _file_revalidation(version: ModelVersion, alert: MonitoringAlert) -> tuple[Any, str]:
    """File production → staging for the version as the system account, through the
    approvals service (its policy, gates, pending-request and approver rules apply). When
    approvals refuses — not in production, a request already pending, no one eligible to
    decide — the alert stays open and says why; nothing of the refused filing is written."""
    if version.stage != Stage.PRODUCTION:
        return None, f"Not filed: the version is in {version.stage}, not production."
    try:
        with transaction.atomic():
            request = approvals.promotion_request_file(
                actor=approval_permissions.system_account(),
                version=version,
                to_stage=Stage.STAGING,
                justification=(
                    f"Monitoring alert #{alert.pk}: {alert.metric}"
                    f"{' on ' + alert.segment if alert.segment else ''} = {alert.value:g} "
                    f"breaches {alert.rule_text}. Re-validate before it stays in production."
                ),
            )
    except (Conflict, PermissionDenied, ValidationError) as exc:
        message = getattr(exc, "detail", None) or "; ".join(getattr(exc, "messages", [str(exc)]))
        return None, f"Not filed: {message}"[:500]
    return request, ""


@transaction.atomic
def monitoring_alert_resolve(
    *, actor: AbstractBaseUser, alert: MonitoringAlert, comment: str
) -> MonitoringAlert:
    """Close an open alert with a comment (what was done about it)."""
    alert = MonitoringAlert.objects.select_related("version__model").get(pk=alert.pk)
    if not permissions.may_resolve_alert(actor, alert.version):
        raise PermissionDenied(
            "Resolving an alert needs change rights on the model or an approver role."
        )
    comment = _text(comment, "comment", "A comment", limit=10_000)
    now = timezone.now()
    updated = MonitoringAlert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=actor, resolution_comment=comment
    )
    if updated != 1:
        raise Conflict("This alert is already resolved.", code="not_open")
    alert.refresh_from_db()
    audit_record(
        actor=actor,
        action="oversight.monitoring_alert.resolved",
        target=alert,
        changes={"status": [AlertStatus.OPEN, AlertStatus.RESOLVED], "comment": comment},
    )
    return alert


# --- threshold rules and policies ---------------------------------------------------------------

RULE_FIELDS = (
    "model",
    "risk_tier",
    "metric",
    "segment",
    "comparator",
    "threshold",
    "revalidate",
    "active",
    "description",
)


def _plain(value: Any) -> Any:
    return str(value) if hasattr(value, "_meta") else value


def _require(actor: Any, perm: str, what: str) -> None:
    if not getattr(actor, "is_authenticated", False) or not actor.has_perm(perm):
        raise PermissionDenied(f"You may not change {what}.")


@transaction.atomic
def threshold_rule_create(*, actor: AbstractBaseUser, **fields: Any) -> ThresholdRule:
    """Add a threshold rule for one model or one risk tier (risk officers, superusers)."""
    _require(actor, permissions.EDIT_RULES, "threshold rules")
    unknown = sorted(set(fields) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError({k: "Unknown field." for k in unknown})
    rule = ThresholdRule(**fields)
    rule.full_clean()
    rule.save()
    audit_record(
        actor=actor,
        action="oversight.threshold_rule.created",
        target=rule,
        changes={f: [None, _plain(getattr(rule, f))] for f in RULE_FIELDS},
    )
    return rule


@transaction.atomic
def threshold_rule_update(
    *, actor: AbstractBaseUser, rule: ThresholdRule, data: Mapping[str, Any]
) -> ThresholdRule:
    """Edit a threshold rule (alerts already open keep the rule text they fired under)."""
    _require(actor, permissions.EDIT_RULES, "threshold rules")
    unknown = sorted(set(data) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError({k: "This field cannot be changed here." for k in unknown})
    rule = ThresholdRule.objects.select_for_update().get(pk=rule.pk)
    changes = {}
    for field, value in data.items():
        if getattr(rule, field) != value:
            changes[field] = [_plain(getattr(rule, field)), _plain(value)]
            setattr(rule, field, value)
    if not changes:
        return rule
    rule.full_clean()
    rule.save()
    audit_record(
        actor=actor, action="oversight.threshold_rule.updated", target=rule, changes=changes
    )
    return rule


POLICY_FIELDS = ("review_interval_months", "block_promotions_when_overdue")


@transaction.atomic
def oversight_policy_update(
    *, actor: AbstractBaseUser, policy: OversightPolicy, data: Mapping[str, Any]
) -> OversightPolicy:
    """Edit a tier's review interval or its overdue-blocks-promotions switch (audited)."""
    _require(actor, permissions.EDIT_POLICIES, "oversight policies")
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({k: "This field cannot be changed here." for k in unknown})
    months = data.get("review_interval_months", 1)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise ValidationError({"review_interval_months": "Must be a whole number from 1 to 120."})
    policy = OversightPolicy.objects.select_for_update().get(pk=policy.pk)
    changes = {}
    for field, value in data.items():
        if getattr(policy, field) != value:
            changes[field] = [getattr(policy, field), value]
            setattr(policy, field, value)
    if not changes:
        return policy
    policy.save()
    audit_record(
        actor=actor, action="oversight.oversight_policy.updated", target=policy, changes=changes
    )
    return policy


# --- periodic review -------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def review_due_at(version: ModelVersion, months: int) -> datetime | None:
    """When a production version's next review falls due: `months` after its approval to
    production or its last completed review, whichever is later."""
    approved = (
        StageTransition.objects.filter(version=version, to_stage=Stage.PRODUCTION)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    reviewed = (
        PeriodicReview.objects.filter(version=version, status=ReviewStatus.COMPLETED)
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)
        .first()
    )
    last = max((t for t in (approved, reviewed) if t is not None), default=None)
    return add_months(last, months) if last is not None else None


def periodic_reviews_open(*, now: datetime | None = None) -> int:
    """Open a review for every production version whose review falls due within the notice
    period (`OVERSIGHT_REVIEW_NOTICE_DAYS`), each in its own transaction with one audit event.
    Run by Celery beat; safe to run concurrently and again. Returns how many it opened."""
    now = now or timezone.now()
    notice = timedelta(days=settings.OVERSIGHT_REVIEW_NOTICE_DAYS)
    months = dict(OversightPolicy.objects.values_list("risk_tier", "review_interval_months"))
    candidates = (
        ModelVersion.objects.filter(stage=Stage.PRODUCTION, model__archived=False)
        .exclude(periodic_reviews__status=ReviewStatus.OPEN)
        .select_related("model")
    )
    opened = 0
    for version in candidates:
        interval = months.get(version.model.risk_tier)
        if interval is None:
            continue
        due = review_due_at(version, interval)
        if due is not None and due - notice <= now:
            opened += _review_open(version.pk, due, now)
    return opened


@transaction.atomic
def _review_open(version_id: int, due: datetime, now: datetime) -> int:
    version = ModelVersion.objects.select_for_update(no_key=True).get(pk=version_id)
    if version.stage != Stage.PRODUCTION:
        return 0
    try:
        with transaction.atomic():
            review = PeriodicReview.objects.create(version=version, due_at=due, opened_at=now)
    except IntegrityError:  # another beat opened it meanwhile
        return 0
    audit_record(
        actor=None,
        action="oversight.periodic_review.opened",
        target=review,
        changes={"version": str(version), "due_at": due.isoformat()},
    )
    return 1


@transaction.atomic
def periodic_review_complete(
    *, actor: AbstractBaseUser, review: PeriodicReview, comment: str
) -> PeriodicReview:
    """An approver of the model records that the production version was reviewed."""
    review = PeriodicReview.objects.select_related("version__model").get(pk=review.pk)
    if (refusal := permissions.review_refusal(actor, review.version)) is not None:
        raise PermissionDenied(refusal)
    comment = _text(comment, "comment", "A comment", limit=10_000)
    now = timezone.now()
    updated = PeriodicReview.objects.filter(pk=review.pk, status=ReviewStatus.OPEN).update(
        status=ReviewStatus.COMPLETED, completed_at=now, completed_by=actor, comment=comment
    )
    if updated != 1:
        raise Conflict("This review is already completed.", code="not_open")
    review.refresh_from_db()
    audit_record(
        actor=actor,
        action="oversight.periodic_review.completed",
        target=review,
        changes={
            "status": [ReviewStatus.OPEN, ReviewStatus.COMPLETED],
            "overdue": review.due_at < now,
            "comment": comment,
        },
    )
    return review
