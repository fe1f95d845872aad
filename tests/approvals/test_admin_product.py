"""The admin reads like a product: its name, plain verbose names, a queue of what the reviewer
may decide now (and apart from it what a gate holds back), the evidence before the decision,
a history in time order and plain words, and times to the second in UTC."""

import re

import pytest
from django.test import Client

from audit.models import AuditEvent

QUEUE = "/admin/approvals/approvalqueue/"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def _page(request_pk: int) -> str:
    return f"/admin/approvals/promotionrequest/{request_pk}/change/"


@pytest.fixture
def browser():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def test_verbose_names_read_as_words(browser, superuser, file, version, approvers):
    file(version, "staging")
    index = browser(superuser).get("/admin/").content.decode()
    assert ">API tokens<" in index and "Api tokens" not in index
    queue = browser(approvers["validator"]).get(QUEUE).content.decode()
    assert "1 approval queue entry" in queue


def test_the_queue_shows_what_a_reviewer_needs_to_choose(browser, file, version, approvers):
    request = file(version, "staging")
    html = browser(approvers["validator"]).get(QUEUE).content.decode()
    for heading in ("Model", "Version", "From → to", "Risk tier", "Filed by", "Filed", "Still"):
        assert heading in html, heading
    row = html[html.index(f"Review #{request.pk}<") :]
    row = row[: row.index("</tr>")]
    for cell in ("credit-scoring", "v1", "development → staging", "high", "owner-scientist"):
        assert cell in row, cell
    assert "1 model-validator" in row
    assert re.search(r"\d+\xa0minutes? ago|0\xa0minutes ago", row)


@pytest.mark.card_gate
def test_a_request_held_back_by_a_gate_is_listed_apart_with_the_gate_named(
    browser, file, promote, version, approvers
):
    promote(version, "staging")
    held = file(version, "production")  # no model card of this content yet
    client = browser(approvers["validator"])
    html = client.get(QUEUE).content.decode()
    ready, blocked = html.split('id="blocked"')
    assert f"Review #{held.pk}<" not in ready
    assert f"Review #{held.pk}<" in blocked
    assert "model card" in blocked.lower()
    assert "Approval queue (0)" in client.get("/admin/").content.decode()


def test_the_evidence_comes_first_and_the_decision_last(browser, file, version, approvers):
    request = file(version, "staging")
    html = browser(approvers["validator"]).get(_page(request.pk)).content.decode()
    positions = [
        html.index(f'id="{section}"')
        for section in ("request", "progress", "gates", "version", "metrics", "lineage")
    ]
    assert positions == sorted(positions)
    assert html.index('id="history"') < html.index('id="decision"')
    assert max(positions) < html.index('id="decision"') < html.index('id="approve"')
    assert f'href="/admin/registry/modelversion/{version.pk}/lineage.svg"' in html


def test_the_history_is_in_time_order_in_plain_words_with_who_did_what(
    browser, file, decide, version, approvers
):
    request = file(version, "staging")
    decide(request, approvers["validator"], comment="Reproduced the AUC.")
    html = browser(approvers["risk_officer"]).get(_page(request.pk)).content.decode()
    history = html[html.index('id="history"') : html.index('id="decision"')]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", history)
    assert [who for _, who, _ in rows] == ["owner-scientist", "validator", "validator"]
    assert rows[0][2] == "filed the request (development → staging)"
    assert rows[1][2] == "approved as model-validator — quorum met, request approved"
    assert rows[2][2] == "moved credit-scoring v1 from development to staging"
    assert all(re.fullmatch(TIME, when) for when, _, _ in rows)
    assert "approvals.promotion_decision" not in history
    assert "Reproduced the AUC." in history


def test_admin_times_have_seconds_and_utc(browser, superuser, version):
    html = browser(superuser).get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert re.search(TIME, html.content.decode())


@pytest.mark.django_db
def test_the_audit_list_runs_newest_first_and_filters_by_actor(browser, superuser, owner, version):
    html = browser(superuser).get("/admin/audit/auditevent/").content.decode()
    ids = [int(i) for i in re.findall(r'href="/admin/audit/auditevent/(\d+)/change/', html)]
    assert ids == sorted(ids, reverse=True) and len(ids) > 1
    filtered = browser(superuser).get(
        "/admin/audit/auditevent/", {"actor_username": owner.username}
    )
    shown = re.findall(r'href="/admin/audit/auditevent/(\d+)/change/', filtered.content.decode())
    expected = AuditEvent.objects.filter(actor_username=owner.username).count()
    assert len(shown) == expected > 0
