"""Periodic review: the beat task opens reviews of production versions falling due, approvers
complete them, overdue reviews are listed and (when the tier's policy says so) block further
promotions of the model."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from approvals.models import PromotionPolicy
from audit.models import AuditEvent
from core.errors import Conflict
from oversight import services
from oversight.models import OversightPolicy, PeriodicReview
from oversight.selectors import REVIEW_GATE
from oversight.tasks import open_periodic_reviews

pytestmark = pytest.mark.django_db


def test_default_intervals_follow_the_risk_tier():
    assert dict(OversightPolicy.objects.values_list("risk_tier", "review_interval_months")) == {
        "critical": 6,
        "high": 12,
        "medium": 24,
        "low": 36,
    }


def test_add_months_keeps_the_day_or_the_months_last():
    from datetime import datetime

    assert services.add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert services.add_months(datetime(2026, 11, 15), 14) == datetime(2028, 1, 15)


def test_no_review_before_it_falls_due(production_version):
    assert services.periodic_reviews_open() == 0
    assert not PeriodicReview.objects.exists()


def test_a_review_opens_within_the_notice_period_before_it_is_due(production_version, settings):
    settings.OVERSIGHT_REVIEW_NOTICE_DAYS = 30
    due = services.add_months(
        production_version.stage_transitions.get(to_stage="production").occurred_at, 12
    )
    assert services.periodic_reviews_open(now=due - timedelta(days=31)) == 0
    assert services.periodic_reviews_open(now=due - timedelta(days=29)) == 1
    review = PeriodicReview.objects.get()
    assert (review.version, review.status, review.due_at) == (production_version, "open", due)
    event = AuditEvent.objects.get(action="oversight.periodic_review.opened")
    assert event.actor_id is None
    # Again: nothing new while it is open.
    assert services.periodic_reviews_open(now=due + timedelta(days=5)) == 0


def test_the_beat_task_opens_due_reviews(production_version, settings):
    OversightPolicy.objects.filter(risk_tier="high").update(review_interval_months=1)
    settings.OVERSIGHT_REVIEW_NOTICE_DAYS = 40  # due in a month: within the notice already
    assert open_periodic_reviews.delay().get() == 1
    assert PeriodicReview.objects.get().version == production_version
    assert open_periodic_reviews.delay().get() == 0  # open already


def _overdue_review(version) -> PeriodicReview:
    approved = version.stage_transitions.get(to_stage="production").occurred_at
    services.periodic_reviews_open(now=services.add_months(approved, 13))
    review = PeriodicReview.objects.get()
    assert review.due_at < timezone.now() + timedelta(days=400)
    return review


def test_an_approver_completes_a_review_with_a_comment(api, production_version, approvers):
    review = _overdue_review(production_version)
    url = f"/api/v1/periodic-reviews/{review.pk}/complete"
    client = api(approvers["risk_officer"])
    assert client.post(url, {}, format="json").status_code == 400
    response = client.post(url, {"comment": "Backtest still holds."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"
    assert client.post(url, {"comment": "again"}, format="json").status_code == 409
    event = AuditEvent.objects.get(action="oversight.periodic_review.completed")
    assert event.changes["comment"] == "Backtest still holds."


def test_the_versions_author_and_non_approvers_may_not_complete_it(
    api, owner, auditor, outsider, production_version, approvers
):
    review = _overdue_review(production_version)
    url = f"/api/v1/periodic-reviews/{review.pk}/complete"
    assert api(owner).post(url, {"comment": "Mine."}, format="json").status_code == 403
    assert api(auditor).post(url, {"comment": "Looks ok."}, format="json").status_code == 403
    assert api(outsider).post(url, {"comment": "x"}, format="json").status_code == 404
    review.refresh_from_db()
    assert review.status == "open"


def test_the_next_review_counts_from_the_last_completed_one(production_version, approvers):
    review = _overdue_review(production_version)
    services.periodic_review_complete(
        actor=approvers["validator"], review=review, comment="Reviewed."
    )
    review.refresh_from_db()
    due = services.review_due_at(production_version, 12)
    assert due == services.add_months(review.completed_at, 12)


def test_overdue_reviews_are_listed(api, auditor, production_version):
    review = _overdue_review(production_version)
    PeriodicReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(days=3))
    data = api(auditor).get("/api/v1/periodic-reviews?overdue=true").json()
    assert [(r["id"], r["overdue"]) for r in data["results"]] == [(review.pk, True)]
    assert api(auditor).get("/api/v1/periodic-reviews?overdue=false").json()["results"] == []


def test_admin_lists_overdue_reviews(client, superuser, production_version):
    review = _overdue_review(production_version)
    PeriodicReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(days=3))
    client.force_login(superuser)
    page = client.get("/admin/oversight/overduereview/").content.decode()
    assert "credit-scoring v1" in page


def test_an_overdue_review_blocks_promotions_when_the_policy_says_so(
    risk_officer, production_version, make_version, file, superuser
):
    for policy in PromotionPolicy.objects.all():
        policy.filing_gates = [*policy.filing_gates, REVIEW_GATE]
        policy.save()
    review = _overdue_review(production_version)
    PeriodicReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(days=1))
    newer = make_version()
    file(newer, "staging")  # not blocking yet: the policy does not say so
    policy = OversightPolicy.objects.get(risk_tier="high")
    services.oversight_policy_update(
        actor=superuser, policy=policy, data={"block_promotions_when_overdue": True}
    )
    third = make_version()
    with pytest.raises(Conflict, match="periodic review"):
        file(third, "staging")


def test_policy_edits_need_the_permission_and_sane_values(owner, risk_officer):
    policy = OversightPolicy.objects.get(risk_tier="low")
    with pytest.raises(PermissionDenied):
        services.oversight_policy_update(
            actor=owner, policy=policy, data={"review_interval_months": 3}
        )
    from django.core.exceptions import ValidationError

    for bad in (0, 500, "6", True):
        with pytest.raises(ValidationError):
            services.oversight_policy_update(
                actor=risk_officer, policy=policy, data={"review_interval_months": bad}
            )
    services.oversight_policy_update(
        actor=risk_officer, policy=policy, data={"review_interval_months": 18}
    )
    assert OversightPolicy.objects.get(risk_tier="low").review_interval_months == 18
