"""`seed_demo` leaves a pending production request that demo-risk can approve."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from approvals import selectors, services
from tests.conftest import ensure_roles


@pytest.mark.card_gate
def test_demo_risk_officer_can_complete_the_pending_production_request(db):
    ensure_roles()
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent: nothing new
    risk = get_user_model().objects.get(username="demo-risk")
    queue = list(selectors.awaiting(risk))
    assert [(r.version.model.name, r.to_stage) for r in queue] == [
        ("churn-predictor", "production")
    ]
    services.promotion_decide(
        actor=risk, request=queue[0], outcome="approve", comment="Risk assessment done."
    )
    queue[0].version.refresh_from_db()
    assert queue[0].version.stage == "production"
