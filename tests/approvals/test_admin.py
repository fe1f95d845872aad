"""The admin for reviewers: approval queue, evidence page, decisions and policies — the same
services as the API, refusals in plain words."""

import pytest
from django.test import Client

from approvals.models import PromotionPolicy
from audit.models import AuditEvent
from registry import services as registry

QUEUE = "/admin/approvals/approvalqueue/"


def _page(request_pk: int) -> str:
    return f"/admin/approvals/promotionrequest/{request_pk}/change/"


@pytest.fixture
def browser():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def _post(client, request, outcome="approve", comment="Reproduced the metrics."):
    return client.post(_page(request.pk), {"outcome": outcome, "comment": comment}, follow=True)


def test_queue_lists_only_the_requests_the_user_may_decide(
    browser, file, make_version, approvers, risk_officer
):
    mine = file(make_version(), "staging")
    filed_by_validator = file(make_version(), "staging", actor=approvers["validator"])
    html = browser(approvers["validator"]).get(QUEUE).content.decode()
    assert f"Review #{mine.pk}<" in html
    assert f"Review #{filed_by_validator.pk}<" not in html
    assert "Review #" not in browser(risk_officer).get(QUEUE).content.decode()


def test_admin_index_shows_the_queue_count(browser, file, make_version, approvers):
    file(make_version(), "staging")
    file(make_version(), "staging")
    html = browser(approvers["validator"]).get("/admin/").content.decode()
    assert "Approval queue (2)" in html


def test_evidence_page_shows_the_evidence_on_one_screen(browser, file, version, approvers):
    request = file(version, "staging")
    response = browser(approvers["validator"]).get(_page(request.pk))
    assert response.status_code == 200
    html = response.content.decode()
    for section in ("request", "decision", "progress", "gates", "version", "metrics"):
        assert f'id="{section}"' in html
    for section in ("lineage", "model-card", "history"):
        assert f'id="{section}"' in html
    assert "auc" in html and "0.87" in html
    assert "Evaluation metrics present" in html
    assert "Unchanged since filing." in html
    assert 'id="approve"' in html


def test_evidence_page_links_model_cards_only_where_the_viewer_may_follow(
    browser, owner, file, version, approvers
):
    request = file(version, "staging")
    cards = "/admin/modelcards/modelcard/"
    version_page = f"/admin/registry/modelversion/{version.pk}/change/"
    for viewer, lists_cards in ((approvers["validator"], True), (owner, False)):
        client = browser(viewer)
        html = client.get(_page(request.pk)).content.decode()
        assert (f'href="{cards}?q={version.content_digest}"' in html) is lists_cards
        assert client.get(cards).status_code == (200 if lists_cards else 403)
        assert f'href="{version_page}"' in html
        assert client.get(version_page).status_code == 200


def test_admin_approval_with_a_comment_applies_the_transition(browser, file, version, approvers):
    request = file(version, "staging")
    response = _post(browser(approvers["validator"]), request)
    assert "Approved. The quorum is met: credit-scoring v1 is now in staging." in (
        response.content.decode()
    )
    version.refresh_from_db()
    assert version.stage == "staging"
    event = AuditEvent.objects.get(action="approvals.model_version.stage_changed")
    assert (event.channel, event.actor_username) == ("admin", approvers["validator"].username)


def test_admin_decision_without_a_comment_is_refused(browser, file, version, approvers):
    request = file(version, "staging")
    response = _post(browser(approvers["validator"]), request, comment="")
    assert "Write a comment" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"


def test_admin_explains_to_the_requester_why_they_cannot_decide(browser, file, version, approvers):
    request = file(version, "staging", actor=approvers["validator"])
    client = browser(approvers["validator"])
    html = client.get(_page(request.pk)).content.decode()
    assert "You filed this request; another approver must decide it." in html
    assert 'id="approve"' not in html
    response = _post(client, request)
    assert "You filed this request; another approver must decide it." in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"


def test_admin_refuses_the_versions_creator(browser, owner, file, make_version, approvers):
    from registry.services import model_permission_grant

    creator = approvers["validator"]
    model_permission_grant(
        actor=owner,
        model=owner.owned_models.get(),
        grantee=creator,
        permission="change_registeredmodel",
    )
    request = file(make_version(actor=creator), "staging")
    response = _post(browser(creator), request)
    assert "You created this version" in response.content.decode()


def test_admin_refuses_a_reviewer_not_appointed_on_the_model(
    browser, file, version, validator, appointed_only
):
    request = file(version, "staging")
    html = browser(validator).get(_page(request.pk)).content.decode()
    assert "not an approver for model" in html


def test_admin_rejection_ends_the_request(browser, file, version, approvers):
    request = file(version, "staging")
    response = _post(browser(approvers["validator"]), request, "reject", "Metrics not reproduced.")
    assert "Rejected. The request is closed." in response.content.decode()
    request.refresh_from_db()
    assert request.status == "rejected"


def test_admin_decision_on_changed_content_supersedes(browser, owner, file, version, approvers):
    request = file(version, "staging")
    registry.model_version_update(actor=owner, version=version, data={"limitations": "New."})
    client = browser(approvers["validator"])
    assert "Changed since filing" in client.get(_page(request.pk)).content.decode()
    response = _post(client, request)
    assert "superseded" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "superseded"


def test_policy_edit_in_the_admin_is_audited(browser, risk_officer):
    policy = PromotionPolicy.objects.get(to_stage="production", risk_tier="low")
    response = browser(risk_officer).post(
        f"/admin/approvals/promotionpolicy/{policy.pk}/change/",
        {
            "required_approvals": '{"model-validator": 2, "risk-officer": 1}',
            "filing_gates": '["metrics_present"]',
            "approval_gates": '["metrics_present"]',
            "expiry_days": "14",
            "fallback": "role",
        },
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.required_approvals == {"model-validator": 2, "risk-officer": 1}
    event = AuditEvent.objects.get(action="approvals.promotion_policy.updated")
    assert event.changes["expiry_days"] == [30, 14]


def test_policy_edit_refuses_an_unknown_role(browser, risk_officer):
    policy = PromotionPolicy.objects.get(to_stage="production", risk_tier="low")
    response = browser(risk_officer).post(
        f"/admin/approvals/promotionpolicy/{policy.pk}/change/",
        {
            "required_approvals": '{"data-scientist": 1}',
            "filing_gates": "[]",
            "approval_gates": "[]",
            "expiry_days": "30",
            "fallback": "role",
        },
    )
    assert response.status_code == 200
    assert "Unknown approver role" in response.content.decode()
    assert not AuditEvent.objects.filter(action="approvals.promotion_policy.updated").exists()


def test_validators_may_not_edit_policies(browser, validator):
    policy = PromotionPolicy.objects.get(to_stage="production", risk_tier="low")
    url = f"/admin/approvals/promotionpolicy/{policy.pk}/change/"
    response = browser(validator).post(url, {"expiry_days": "1"})
    assert response.status_code == 403
