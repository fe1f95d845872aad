"""Periodic review and the oversight policies that time it."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import StageTransition
from audit.services import audit_record
from core.errors import Conflict
from oversight import permissions
from oversight.models import (
    OversightPolicy,
    PeriodicReview,
    ReviewStatus,
)
from oversight.services._common import _require, _text
from registry.models import ModelVersion, Stage

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
