"""`seed_demo` leaves a pending production request that demo-risk can approve."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from approvals import selectors, services
from approvals.models import PromotionRequest
from registry.models import ModelVersion
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


@pytest.mark.parametrize(
    ("model_name", "tier", "approvers"),
    [
        ("credit-scoring", "high", ["demo-validator", "demo-validator-2", "demo-risk"]),
        ("fraud-detector", "critical", ["demo-validator", "demo-risk", "demo-risk-2"]),
    ],
)
def test_demo_approvers_can_take_every_tier_to_production(db, model_name, tier, approvers):
    """The high tier's production policy needs two validators and the critical tier's two risk
    officers: the demo users alone complete both (filing was refused, 409 no_approver)."""
    ensure_roles()
    call_command("seed_demo", stdout=io.StringIO())
    users = {user.username: user for user in get_user_model().objects.all()}
    version = ModelVersion.objects.get(model__name=model_name, version=2)  # v1: no lineage
    assert version.model.risk_tier == tier
    scientist = users["demo-scientist"]
    staging = PromotionRequest.objects.filter(version=version, status="pending").first()
    if staging is None:  # credit-scoring v2's is seeded
        staging = services.promotion_request_file(
            actor=scientist, version=version, to_stage="staging", justification="Validated."
        )
    services.promotion_decide(
        actor=users["demo-validator"], request=staging, outcome="approve", comment="Checked."
    )
    production = services.promotion_request_file(
        actor=scientist, version=version, to_stage="production", justification="Shadow run ok."
    )
    for name in approvers:
        version.refresh_from_db()
        assert version.stage == "staging"
        services.promotion_decide(
            actor=users[name], request=production, outcome="approve", comment=f"{name} agrees."
        )
    version.refresh_from_db()
    assert version.stage == "production"
