"""Filing a promotion request from the version's admin page, through the service the API
uses: offered to those who may file, refused in plain words (the typed justification kept),
nothing written on a refusal."""

import pytest
from django.test import Client

from approvals.models import PromotionRequest
from audit.models import AuditEvent
from tests.conftest import _user

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(version) -> str:
    return f"/admin/registry/modelversion/{version.pk}/promote/"


def test_the_owner_files_from_the_version_page_and_lands_on_the_evidence_page(
    owner, version, approvers
):
    client = _client(owner)
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert f'href="{_url(version)}"' in page
    form = client.get(_url(version)).content.decode()
    assert '<option value="staging">Staging</option>' in form
    assert "production" not in form.split('id="filing-form"')[1]  # not a next stage
    assert "Needs 1 model-validator" in form and "Evaluation metrics present" in form
    response = client.post(
        _url(version), {"to_stage": "staging", "justification": "AUC 0.87 out of time."}
    )
    request = PromotionRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/approvals/promotionrequest/{request.pk}/change/"
    assert (request.requester, request.to_stage) == (owner, "staging")
    assert request.justification == "AUC 0.87 out of time."
    assert AuditEvent.objects.filter(action="approvals.promotion_request.filed").count() == 1
    landed = client.get(response["Location"]).content.decode()
    assert f"Request #{request.pk} filed:" in landed and "1 model-validator" in landed


def test_a_refused_filing_says_why_keeps_the_text_and_writes_nothing(
    owner, version, approvers, monkeypatch
):
    from approvals import gates

    failing = gates.GateResult("metrics_present", "Evaluation metrics present", False, "None.")
    monkeypatch.setattr(gates, "failures", lambda names, version: [failing])
    client = _client(owner)
    audited = AuditEvent.objects.count()  # after the sign-in's own event
    response = client.post(_url(version), {"to_stage": "staging", "justification": "Second."})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cannot file this request: the evidence is incomplete." in html
    assert "Second.</textarea>" in html
    assert not PromotionRequest.objects.exists()
    assert AuditEvent.objects.count() == audited


@pytest.mark.parametrize(
    "data",
    [
        {"to_stage": "staging", "justification": ""},
        {"to_stage": "staging", "justification": "   "},
        {"to_stage": "production", "justification": "Skip staging."},
        {"to_stage": "nowhere", "justification": "x"},
        {"justification": "no stage"},
        {"to_stage": "staging", "justification": "x" * 10_001},
    ],
)
def test_bad_input_is_refused_on_the_form_and_nothing_is_filed(owner, version, approvers, data):
    client = _client(owner)
    audited = AuditEvent.objects.count()  # after the sign-in's own event
    response = client.post(_url(version), data)
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert not PromotionRequest.objects.exists()
    assert AuditEvent.objects.count() == audited


def test_only_those_who_may_file_are_offered_the_page(auditor, outsider, owner, version):
    for user, status in ((auditor, 403), (outsider, 404)):
        client = _client(user)
        assert client.get(_url(version)).status_code == status
        assert (
            client.post(_url(version), {"to_stage": "staging", "justification": "x"}).status_code
            == status
        )
        if status == 403:
            page = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
            assert _url(version) not in page.content.decode()
    assert not PromotionRequest.objects.exists()
    assert _client(_user("anon-ish", "data-scientist")).get(_url(version)).status_code == 404


def test_the_evidence_page_leads_back_to_a_list_its_reader_may_open(
    owner, version, approvers, file
):
    request = file(version, "staging")
    page = f"/admin/approvals/promotionrequest/{request.pk}/change/"
    for user, back in (
        (owner, "/admin/approvals/promotionrequest/"),
        (approvers["validator"], "/admin/approvals/approvalqueue/"),
    ):
        client = _client(user)
        html = client.get(page).content.decode()
        crumbs = html[
            html.index('class="breadcrumbs"') : html.index(
                "</div>", html.index('class="breadcrumbs"')
            )
        ]
        assert f'href="{back}"' in crumbs
        assert client.get(back).status_code == 200


def test_the_page_names_a_pending_request_instead_of_offering_a_filing_it_would_refuse(
    owner, version, approvers, file
):
    request = file(version, "staging")
    html = _client(owner).get(_url(version)).content.decode()
    assert f'href="/admin/approvals/promotionrequest/{request.pk}/change/">#{request.pk}<' in html
    assert "is pending: it must be decided" in html and 'id="filing-form"' not in html
    # once the version changed, that request can no longer be decided: filing replaces it
    from registry import services as registry

    registry.model_version_update(actor=owner, version=version, data={"limitations": "New."})
    html = _client(owner).get(_url(version)).content.decode()
    assert 'id="filing-form"' in html and "is pending" not in html
