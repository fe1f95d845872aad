"""Model cards: request, render (in-process), download, permissions, idempotency, safety."""

import hashlib
import http.server
import io
import threading

import pytest
from pypdf import PdfReader

from audit.models import AuditEvent
from modelcards import render, services
from modelcards.models import ModelCard
from registry import services as registry
from registry.services import model_permission_grant

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit-scoring/versions/1/model-cards"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _request(client, capture, **payload):
    with capture(execute=True):
        return client.post(URL, payload, format="json")


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_auditor_requests_a_card_and_downloads_the_pdf(
    api, auditor, credit_version, django_capture_on_commit_callbacks
):
    client = api(auditor)
    response = _request(client, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    assert response["Location"] == response.json()["status_url"]
    card = client.get(response.json()["status_url"]).json()
    assert card["status"] == "ready" and card["page_count"] >= 1
    download = client.get(card["pdf_url"])
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    pdf = b"".join(download.streaming_content)
    assert download["ETag"] == f'"{hashlib.sha256(pdf).hexdigest()}"'
    text = _text(pdf)
    assert "credit-scoring" in text and "0.87" in text
    rendered = AuditEvent.objects.get(action="modelcards.model_card.rendered")
    assert rendered.changes["sha256"] == hashlib.sha256(pdf).hexdigest()


def test_every_download_is_audited(
    api, auditor, credit_version, django_capture_on_commit_callbacks
):
    client = api(auditor)
    card = _request(client, django_capture_on_commit_callbacks).json()
    client.get(f"/api/v1/model-cards/{card['id']}/pdf")
    client.get(f"/api/v1/model-cards/{card['id']}/pdf")
    events = AuditEvent.objects.filter(action="modelcards.model_card.downloaded")
    assert [e.actor_id for e in events] == [auditor.pk, auditor.pk]


def test_unchanged_etag_answers_304_without_a_download(
    api, auditor, credit_version, django_capture_on_commit_callbacks
):
    client = api(auditor)
    card = _request(client, django_capture_on_commit_callbacks).json()
    ready = client.get(card["status_url"]).json()
    response = client.get(ready["pdf_url"], HTTP_IF_NONE_MATCH=f'"{ready["sha256"]}"')
    assert response.status_code == 304


def test_a_second_request_returns_the_ready_card(
    api, auditor, credit_version, django_capture_on_commit_callbacks
):
    client = api(auditor)
    first = _request(client, django_capture_on_commit_callbacks).json()
    second = _request(client, django_capture_on_commit_callbacks)
    assert second.status_code == 200
    assert second.json()["id"] == first["id"]
    assert ModelCard.objects.count() == 1


def test_a_card_from_before_the_record_changed_is_not_handed_out_again(
    api, auditor, owner, validator, credit_version, django_capture_on_commit_callbacks
):
    """Same content, newer record: a promotion filed (and later an approval, a stage change)
    after the card was made would be missing from it, so a request renders a new card."""
    from approvals import services as approvals

    client = api(auditor)
    first = _request(client, django_capture_on_commit_callbacks).json()
    approvals.promotion_request_file(
        actor=owner, version=credit_version, to_stage="staging", justification="Validated."
    )
    second = _request(client, django_capture_on_commit_callbacks)
    assert second.status_code == 202 and second.json()["id"] != first["id"]
    assert "staging" in _text(ModelCard.objects.get(pk=second.json()["id"]).file.read())
    third = _request(client, django_capture_on_commit_callbacks)  # nothing changed since
    assert third.status_code == 200 and third.json()["id"] == second.json()["id"]

    registry.model_version_label_set(actor=owner, version=credit_version, key="k", value="v")
    fourth = _request(client, django_capture_on_commit_callbacks)
    assert fourth.status_code == 202 and fourth.json()["id"] != second.json()["id"]


def test_oversight_recorded_after_a_card_was_made_is_not_left_out_of_the_next(
    api, auditor, owner, validator, credit_version, django_capture_on_commit_callbacks
):
    """Monitoring posted, a validation report and a finding's closing are on the card:
    after each, a request renders a new one instead of handing out the card without it."""
    from datetime import UTC, datetime

    from oversight.monitoring import Point
    from oversight.services import monitoring_points_record, validation_report_create

    client = api(auditor)
    first = _request(client, django_capture_on_commit_callbacks).json()
    day = datetime(2026, 11, 1, tzinfo=UTC)
    monitoring_points_record(
        actor=owner, version=credit_version, points=[Point("psi", 0.07, day, day)]
    )
    second = _request(client, django_capture_on_commit_callbacks)
    assert second.status_code == 202 and second.json()["id"] != first["id"]
    assert "psi" in _text(ModelCard.objects.get(pk=second.json()["id"]).file.read())
    assert _request(client, django_capture_on_commit_callbacks).json()["id"] == second.json()["id"]

    validation_report_create(
        actor=validator, version=credit_version, scope="Full.", methods="Backtest."
    )
    third = _request(client, django_capture_on_commit_callbacks)
    assert third.status_code == 202 and third.json()["id"] != second.json()["id"]
    assert "Backtest." in _text(ModelCard.objects.get(pk=third.json()["id"]).file.read())


def test_force_renders_again(api, auditor, credit_version, django_capture_on_commit_callbacks):
    client = api(auditor)
    first = _request(client, django_capture_on_commit_callbacks).json()
    forced = _request(client, django_capture_on_commit_callbacks, force=True)
    assert forced.status_code == 202 and forced.json()["id"] != first["id"]


def test_a_changed_version_gets_a_new_card(
    api, auditor, owner, credit_version, django_capture_on_commit_callbacks
):
    client = api(auditor)
    first = _request(client, django_capture_on_commit_callbacks).json()
    registry.model_version_update(
        actor=owner, version=credit_version, data={"limitations": "Retail only."}
    )
    second = _request(client, django_capture_on_commit_callbacks).json()
    assert second["id"] != first["id"]
    assert second["content_digest"] != first["content_digest"]


@pytest.mark.parametrize(
    "persona,status",
    [
        ("owner", 202),
        ("validator", 202),
        ("risk_officer", 202),
        ("other_scientist", 404),
        ("outsider", 404),
    ],
)
def test_who_may_request_a_card(
    request, api, credit_version, persona, status, django_capture_on_commit_callbacks
):
    user = request.getfixturevalue(persona)
    assert _request(api(user), django_capture_on_commit_callbacks).status_code == status


def test_a_pipeline_with_change_rights_may_not_read_cards(
    api, owner, pipeline, credit_version, django_capture_on_commit_callbacks
):
    model_permission_grant(
        actor=owner,
        model=credit_version.model,
        grantee=pipeline,
        permission="change_registeredmodel",
    )
    assert _request(api(pipeline), django_capture_on_commit_callbacks).status_code == 403
    assert not ModelCard.objects.exists()


def test_unknown_fields_in_the_request_are_refused(api, auditor, credit_version):
    response = api(auditor).post(URL, {"force": True, "colour": "red"}, format="json")
    assert response.status_code == 400
    assert not ModelCard.objects.exists()


def test_a_card_not_ready_cannot_be_downloaded(api, auditor, credit_version):
    card, _ = services.model_card_request(actor=auditor, version=credit_version)
    response = api(auditor).get(f"/api/v1/model-cards/{card.pk}/pdf")
    assert response.status_code == 409


def test_rendering_twice_produces_one_file_and_one_event(
    auditor, credit_version, settings, tmp_path
):
    card, _ = services.model_card_request(actor=auditor, version=credit_version)
    assert services.model_card_render(card_id=card.pk) is not None
    assert services.model_card_render(card_id=card.pk) is None  # a redelivered task
    assert len(list((tmp_path / "modelcards").glob("*.pdf"))) == 1
    assert AuditEvent.objects.filter(action="modelcards.model_card.rendered").count() == 1


def test_only_the_latest_claim_finishes_a_card(auditor, credit_version, tmp_path, monkeypatch):
    card, _ = services.model_card_request(actor=auditor, version=credit_version)
    real_render = render.html_to_pdf
    calls = []

    def render_with_redelivery(html):
        # While this attempt renders, the broker hands the task to a second worker.
        if not calls:
            calls.append("first")
            services.model_card_render(card_id=card.pk)
        return real_render(html)

    monkeypatch.setattr(services, "html_to_pdf", render_with_redelivery)
    assert services.model_card_render(card_id=card.pk) is None  # the first attempt lost
    card.refresh_from_db()
    assert card.status == "ready" and card.attempt == 2
    assert [p.name for p in (tmp_path / "modelcards").glob("*.pdf")] == [
        card.file.name.split("/")[1]
    ]
    assert AuditEvent.objects.filter(action="modelcards.model_card.rendered").count() == 1


def test_a_card_whose_version_changed_meanwhile_fails_with_a_reason(auditor, owner, credit_version):
    card, _ = services.model_card_request(actor=auditor, version=credit_version)
    registry.model_version_update(
        actor=owner, version=credit_version, data={"limitations": "changed"}
    )
    services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    assert card.status == "failed" and "changed" in card.error


def test_unknown_facts_read_not_provided(auditor, owner, credit_model):
    version = registry.model_version_create(actor=owner, model=credit_model)
    card, _ = services.model_card_request(actor=auditor, version=version)
    services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    text = _text(card.file.read())
    assert text.count("not provided") >= 8


# --- safety ----------------------------------------------------------------------------------


@pytest.fixture
def canary():
    """A local HTTP server that counts every request it receives."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def _hostile(base: str) -> dict[str, str]:
    return {
        "intended_use": '<img src="file:///etc/passwd"> and <img src="' + base + '/img">',
        "limitations": '<link rel="attachment" href="' + base + '/attach">',
        "ethical_considerations": "<style>@import url(" + base + "/import.css);</style>",
        "evaluation_summary": '<svg><image href="' + base + '/svg.png"/></svg>',
    }


def test_hostile_model_card_fields_are_text_and_fetch_nothing(auditor, owner, credit_model, canary):
    base, hits = canary
    version = registry.model_version_create(actor=owner, model=credit_model, **_hostile(base))
    card, _ = services.model_card_request(actor=auditor, version=version)
    services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    assert card.status == "ready", card.error
    pdf = card.file.read()
    text = _text(pdf)
    assert 'src="file:///etc/passwd"' in text
    assert 'rel="attachment"' in text and "@import" in text
    assert PdfReader(io.BytesIO(pdf)).attachments == {}
    assert hits == []
    assert b"root:x:0:0" not in pdf


def test_the_renderer_itself_refuses_every_url_but_data(canary):
    base, hits = canary
    html = (
        f'<html><head><link rel="stylesheet" href="{base}/a.css">'
        f"<style>@import url({base}/b.css);</style>"
        f'<link rel="attachment" href="{base}/c.bin"></head><body>'
        f'<img src="{base}/d.png"><img src="file:///etc/passwd">'
        f'<svg><image href="{base}/e.png"/></svg>'
        '<img src="data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9'
        'zdmciIHdpZHRoPSIxMCIgaGVpZ2h0PSIxMCIvPg==">ok</body></html>'
    )
    pdf, pages = render.html_to_pdf(html)
    assert pages == 1
    assert hits == []
    assert PdfReader(io.BytesIO(pdf)).attachments == {}


def test_metric_chart_escapes_metric_names():
    svg = render.metrics_chart({"<script>": 1.0, "auc": 0.5})
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# --- admin -----------------------------------------------------------------------------------


def test_admin_action_generates_a_card_and_the_version_page_links_it(
    client, auditor, credit_version, django_capture_on_commit_callbacks
):
    client.force_login(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/registry/modelversion/",
            {"action": "generate_model_card", "_selected_action": [credit_version.pk]},
        )
    assert response.status_code == 302
    card = ModelCard.objects.get()
    assert card.status == "ready"
    page = client.get(f"/admin/registry/modelversion/{credit_version.pk}/change/")
    assert f"/api/v1/model-cards/{card.pk}/pdf" in page.content.decode()
    download = client.get(f"/api/v1/model-cards/{card.pk}/pdf")
    assert download.status_code == 200


def test_admin_action_says_what_became_of_the_card(
    client, auditor, credit_version, django_capture_on_commit_callbacks, monkeypatch
):
    client.force_login(auditor)
    action = {"action": "generate_model_card", "_selected_action": [credit_version.pk]}
    with django_capture_on_commit_callbacks(execute=True):  # renders once the action is done
        first = client.post("/admin/registry/modelversion/", action, follow=True)
    card = ModelCard.objects.get()
    assert f"model card #{card.pk} queued (being rendered)." in first.content.decode()
    # the message begins with the version's name as it is spelt: names are case-sensitive
    assert f'<li class="success">{credit_version}: model card' in first.content.decode()
    again = client.post("/admin/registry/modelversion/", action, follow=True)
    assert (
        f"model card #{card.pk} ready (requested before, for the same content)."
        in again.content.decode()
    )

    def failing(*, actor, version):  # where tasks run in-process, rendering happens at once
        card, created = request_card(actor=actor, version=version)
        ModelCard.objects.filter(pk=card.pk).update(status="failed", error="Renderer crashed.")
        return card, created

    request_card = services.model_card_request
    monkeypatch.setattr(services, "model_card_request", failing)
    failed = client.post("/admin/registry/modelversion/", action, follow=True)
    assert f"model card #{card.pk} failed: Renderer crashed." in failed.content.decode()


def test_auditors_search_the_card_list(client, auditor, credit_version):
    services.model_card_request(actor=auditor, version=credit_version)
    client.force_login(auditor)
    page = client.get("/admin/modelcards/modelcard/?q=credit")
    assert page.status_code == 200 and "credit-scoring v1" in page.content.decode()
    assert client.get("/admin/modelcards/modelcard/add/").status_code == 403


def test_a_cards_admin_page_links_the_audited_download_not_the_stored_file(
    client, auditor, credit_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        card, _ = services.model_card_request(actor=auditor, version=credit_version)
    card.refresh_from_db()
    assert card.status == "ready" and card.file.name
    client.force_login(auditor)
    page = client.get(f"/admin/modelcards/modelcard/{card.pk}/change/").content.decode()
    assert f'href="/api/v1/model-cards/{card.pk}/pdf"' in page
    assert card.file.name in page  # named, as text
    assert f'href="/media/{card.file.name}"' not in page
    assert client.get(f"/media/{card.file.name}").status_code == 404  # media is not served


# --- a worker that died mid-render --------------------------------------------------------------


def _stall(card, seconds_ago=3600):
    """The card as a worker that crashed mid-render leaves it: claimed long ago."""
    from datetime import timedelta

    from django.utils import timezone

    services._claim(card.pk)
    ModelCard.objects.filter(pk=card.pk).update(
        started_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    card.refresh_from_db()
    return card


def test_a_rerequest_of_a_stuck_card_starts_a_new_render(
    api, auditor, credit_version, django_capture_on_commit_callbacks
):
    stuck = _stall(services.model_card_request(actor=auditor, version=credit_version)[0])
    response = _request(api(auditor), django_capture_on_commit_callbacks)
    assert response.status_code == 202
    assert response.json()["id"] != stuck.pk
    assert ModelCard.objects.get(pk=response.json()["id"]).status == "ready"
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "Stalled" in stuck.error
    assert AuditEvent.objects.filter(
        action="modelcards.model_card.failed", object_id=str(stuck.pk)
    ).exists()


def test_a_rerequest_of_a_card_rendering_within_bounds_returns_it(auditor, credit_version):
    card = _stall(services.model_card_request(actor=auditor, version=credit_version)[0], 5)
    again, created = services.model_card_request(actor=auditor, version=credit_version)
    assert (again.pk, created) == (card.pk, False)
    card.refresh_from_db()
    assert card.status == "rendering"


def test_a_worker_that_progressed_meanwhile_keeps_its_card(auditor, credit_version):
    seen = _stall(services.model_card_request(actor=auditor, version=credit_version)[0])
    services._claim(seen.pk)  # a redelivered task claimed it after we read it
    assert services._give_up_if_stuck(seen) is False
    seen.refresh_from_db()
    assert seen.status == "rendering" and seen.attempt == 2


def test_the_sweep_requeues_a_stalled_render_which_then_finishes(
    auditor, credit_version, django_capture_on_commit_callbacks
):
    card = _stall(services.model_card_request(actor=auditor, version=credit_version)[0])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.model_cards_requeue_stalled() == 1
    card.refresh_from_db()
    assert card.status == "ready" and card.attempt == 2
    assert AuditEvent.objects.filter(
        action="modelcards.model_card.requeued", object_id=str(card.pk)
    ).exists()


def test_the_sweep_leaves_a_live_render_alone(auditor, credit_version):
    card = _stall(services.model_card_request(actor=auditor, version=credit_version)[0], 5)
    assert services.model_cards_requeue_stalled() == 0
    card.refresh_from_db()
    assert card.status == "rendering" and card.attempt == 1


def test_the_sweep_fails_a_card_that_stalled_too_often(auditor, credit_version, settings):
    settings.MODEL_CARD_MAX_ATTEMPTS = 1
    card = _stall(services.model_card_request(actor=auditor, version=credit_version)[0])
    assert services.model_cards_requeue_stalled() == 1
    card.refresh_from_db()
    assert card.status == "failed" and "stalled 1 times" in card.error


def test_training_data_no_tracked_run_wrote_says_so_instead_of_at_external(
    owner, pipeline, auditor, credit_model
):
    """The training run read `features` after the etl run wrote it, and `raw` that no run
    modelgov knows of wrote: the card names the first's version and says the second's is
    not tracked (it read "@ external")."""
    import uuid

    from rest_framework.test import APIClient

    model_permission_grant(
        actor=owner, model=credit_model, grantee=pipeline, permission="change_registeredmodel"
    )
    client = APIClient()
    client.force_authenticate(pipeline)
    facet = {"name": credit_model.name, "sha256": "b" * 64, "metrics": {"auc": 0.8}}
    for job, time, inputs, outputs in (
        ("etl", "2026-11-01T09:00:00Z", [], [{"namespace": "s3://lake", "name": "features"}]),
        (
            "train",
            "2026-11-01T10:00:00Z",
            [
                {"namespace": "s3://lake", "name": "features"},
                {"namespace": "s3://lake", "name": "raw"},
            ],
            [{"namespace": "s3://m", "name": "credit", "facets": {"modelgov_model": facet}}],
        ),
    ):
        event = {
            "eventType": "COMPLETE",
            "eventTime": time,
            "producer": "https://github.com/apache/airflow",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "airflow", "name": job},
            "inputs": inputs,
            "outputs": outputs,
        }
        assert client.post("/api/v1/lineage", event, format="json").status_code == 201
    version = credit_model.versions.get()
    card, _ = services.model_card_request(actor=auditor, version=version)
    services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    with card.file.open("rb") as handle:
        text = " ".join(_text(handle.read()).split())
    assert "s3://lake:raw (version not tracked)" in text
    assert "No run known to the registry wrote this dataset" in text
    assert "s3://lake:features @ run:" in text
    assert "@ external" not in text
