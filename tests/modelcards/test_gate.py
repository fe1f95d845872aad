"""The promotion gate "model card generated for the current content", under the default
policies, and the approval history a card shows."""

import io
import uuid

import pytest
from pypdf import PdfReader

from approvals import services as approvals
from approvals.gates import known_gates
from approvals.models import PromotionDecision, PromotionPolicy
from audit.models import AuditEvent
from core.errors import Conflict
from modelcards import services
from modelcards.models import ModelCard
from registry import services as registry
from tests.conftest import SHA, _user

pytestmark = pytest.mark.django_db
GATE = "model_card_current"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def vera(db):
    return _user("vera-validator", "model-validator")


@pytest.fixture
def churn_version(owner, pipeline, superuser, vera, risk_officer):
    """A medium-risk model's version with full evidence, in staging (approved by vera)."""
    model = registry.registered_model_create(actor=owner, name="churn", risk_tier="medium")
    job = registry.job_create(actor=pipeline, namespace="airflow", name=f"t-{uuid.uuid4()}")
    run = registry.run_create(actor=pipeline, job=job, state="COMPLETE")
    version = registry.model_version_create(
        actor=owner,
        model=model,
        artifact_uri="s3://models/churn/1",
        artifact_sha256=SHA,
        metrics={"auc": 0.81},
        training_run=run,
        intended_use="Churn propensity.",
        limitations="Subscribers only.",
        training_data_summary="Events 2025-2026.",
        evaluation_summary="Out-of-time validation.",
    )
    for approver in (vera, risk_officer):
        approvals.decide_permission_grant(actor=superuser, model=model, grantee=approver)
    staging = _file(owner, version, "staging")
    approvals.promotion_decide(
        actor=vera, request=staging, outcome="approve", comment="Reproduced the AUC of 0.81."
    )
    version.refresh_from_db()
    assert version.stage == "staging"
    return version


def _file(owner, version, to_stage):
    return approvals.promotion_request_file(
        actor=owner, version=version, to_stage=to_stage, justification="Validated."
    )


def _card(actor, version, render=True) -> ModelCard:
    card, _ = services.model_card_request(actor=actor, version=version)
    if render:
        services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    return card


def _text(card: ModelCard) -> str:
    with card.file.open("rb") as handle:
        pages = PdfReader(io.BytesIO(handle.read())).pages
    return "\n".join(page.extract_text() for page in pages)


def test_the_gate_is_registered_and_every_default_production_policy_requires_it():
    assert GATE in known_gates()
    policies = list(PromotionPolicy.objects.all())
    assert {p.to_stage for p in policies} >= {"staging", "production", "archived"}
    for policy in policies:
        assert (GATE in policy.approval_gates) == (policy.to_stage == "production"), policy
        assert GATE not in policy.filing_gates  # filing comes first; approvers read the card


def test_approving_production_without_a_card_is_refused_and_nothing_is_written(
    api, owner, vera, churn_version
):
    request = _file(owner, churn_version, "production")
    events = AuditEvent.objects.count()
    response = api(vera).post(
        f"/api/v1/promotions/{request.pk}/approve", {"comment": "Looks fine."}, format="json"
    )
    assert response.status_code == 409
    message = response.json()["errors"][0]["message"]
    assert "Model card generated for the current content" in message
    assert churn_version.content_digest[:12] in message
    assert not PromotionDecision.objects.filter(request=request).exists()
    request.refresh_from_db()
    assert request.status == "pending"
    assert AuditEvent.objects.count() == events


def test_the_admin_keeps_the_comment_of_an_approval_the_gate_refuses(owner, vera, churn_version):
    from django.test import Client

    request = _file(owner, churn_version, "production")
    client = Client()
    client.force_login(vera)
    comment = "Drift report of 2026-11 read; backtest reproduced."
    response = client.post(
        f"/admin/approvals/promotionrequest/{request.pk}/change/",
        {"outcome": "approve", "comment": comment},
    )
    assert response.status_code == 200  # the page again, not a redirect that drops the text
    html = response.content.decode()
    assert "Model card generated for the current content" in html
    assert f"{comment}</textarea>" in html
    assert not PromotionDecision.objects.filter(request=request).exists()


def test_a_card_that_is_not_ready_does_not_count(owner, vera, churn_version):
    request = _file(owner, churn_version, "production")
    queued = _card(vera, churn_version, render=False)
    assert queued.status == "queued"
    with pytest.raises(Conflict) as refused:
        approvals.promotion_decide(actor=vera, request=request, outcome="approve", comment="ok")
    assert refused.value.code == "gate_failed"
    ModelCard.objects.filter(pk=queued.pk).update(status="failed", error="renderer crashed")
    with pytest.raises(Conflict):
        approvals.promotion_decide(actor=vera, request=request, outcome="approve", comment="ok")
    assert not PromotionDecision.objects.filter(request=request).exists()


def test_a_card_of_earlier_content_does_not_count(owner, vera, churn_version):
    old = _card(vera, churn_version)
    assert old.status == "ready"
    registry.model_version_update(
        actor=owner, version=churn_version, data={"limitations": "Subscribers only; not B2B."}
    )
    churn_version.refresh_from_db()
    assert churn_version.content_digest != old.content_digest
    request = _file(owner, churn_version, "production")
    with pytest.raises(Conflict) as refused:
        approvals.promotion_decide(actor=vera, request=request, outcome="approve", comment="ok")
    assert "No model card" in str(refused.value)


def test_with_a_card_of_the_current_content_the_promotion_completes(
    owner, vera, risk_officer, churn_version
):
    request = _file(owner, churn_version, "production")
    assert _card(vera, churn_version).status == "ready"
    approvals.promotion_decide(actor=vera, request=request, outcome="approve", comment="Read it.")
    approvals.promotion_decide(
        actor=risk_officer, request=request, outcome="approve", comment="Within appetite."
    )
    churn_version.refresh_from_db()
    assert churn_version.stage == "production"


def test_the_staging_policy_needs_no_card(owner, vera, churn_version):
    # churn_version reached staging without any card: the fixture did it.
    assert not ModelCard.objects.filter(version=churn_version).exists()
    assert churn_version.stage == "staging"


def test_a_request_closed_before_any_decision_says_so(owner, vera, churn_version):
    request = _file(owner, churn_version, "production")
    approvals.promotion_request_cancel(actor=owner, request=request, reason="Not yet.")
    text = " ".join(_text(_card(vera, churn_version)).split())
    assert "None: the request was cancelled before anyone decided." in text
    assert text.count("No decisions yet.") == 0  # the staging request has its decision


def test_the_card_shows_the_approval_history(owner, vera, churn_version):
    request = _file(owner, churn_version, "production")
    text = _text(_card(vera, churn_version))
    assert "vera-validator" in text
    assert "Reproduced the AUC of 0.81." in text
    assert "staging" in text and "production" in text
    assert request.justification in text
