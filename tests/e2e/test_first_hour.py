"""The first hour of each kind of user, in a real browser at 1280 × 800 (headless Chromium
driven by Playwright): the risk officer decides a request from the queue, a data scientist
finds their model's lineage, an auditor downloads a model card and the audit export. Each
journey checks that the model node of the lineage drawing is inside the viewport."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from lineage import services as lineage
from modelcards import services as cards
from registry import services as registry
from registry.services import model_permission_grant
from tests.conftest import SHA, _user
from tests.e2e.test_approval_browser import awaiting_risk_officer, chromium  # noqa: F401

VIEWPORT = {"width": 1280, "height": 800}
ROOT = Path(__file__).resolve().parents[2]


def _sign_in(browser, live_server, user):
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", f"pw-{user.username}")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _screenshot(page, name: str) -> None:
    """With E2E_SCREENSHOTS=DIR, keep what the browser showed (to look at, not to compare)."""
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _assert_model_node_in_viewport(page, model_label: str):
    drawing = page.locator("svg.lineage-drawing").first
    drawing.scroll_into_view_if_needed()
    node = page.locator("svg.lineage-drawing g.node.model").first
    assert model_label in node.text_content()
    box = node.bounding_box()
    assert box is not None and box["width"] > 0
    assert 0 <= box["x"] and box["x"] + box["width"] <= VIEWPORT["width"], box
    assert 0 <= box["y"] and box["y"] + box["height"] <= VIEWPORT["height"], box
    _screenshot(page, f"drawing-{model_label}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], "the page scrolls sideways"


@pytest.fixture
def scientists_model(db, settings, tmp_path):
    """A data scientist's model whose version 1 a pipeline registered through OpenLineage,
    with its training lineage; a model card of it is rendered."""
    settings.MEDIA_ROOT = str(tmp_path)
    scientist = _user("hour-scientist", "data-scientist")
    pipeline = _user("hour-pipeline", "pipeline")
    auditor = _user("hour-auditor", "auditor")
    model = registry.registered_model_create(
        actor=scientist, name="loan-pd", risk_tier="high", business_unit="Retail Lending"
    )
    model_permission_grant(
        actor=scientist, model=model, grantee=pipeline, permission="change_registeredmodel"
    )
    client = APIClient()
    client.force_authenticate(pipeline)
    producer = "https://github.com/acme/pipelines"
    for job, inputs, outputs in (
        ("build_loan_features", [("postgres://warehouse:5432", "public.applications")], []),
        ("train_loan_pd", [("s3://features", "loans/v3")], []),
    ):
        outputs = (
            [{"namespace": "s3://features", "name": "loans/v3"}]
            if job == "build_loan_features"
            else [
                {
                    "namespace": "s3://models",
                    "name": "loan-pd",
                    "facets": {
                        "modelgov_model": {
                            "_producer": producer,
                            "_schemaURL": f"{producer}/modelgov_model.json",
                            "name": "loan-pd",
                            "artifactUri": "s3://models/loan-pd/1/model.pkl",
                            "sha256": SHA,
                            "metrics": {"auc": 0.83},
                        }
                    },
                }
            ]
        )
        response = client.post(
            "/api/v1/lineage",
            {
                "eventType": "COMPLETE",
                "eventTime": "2026-11-01T10:00:00Z",
                "producer": producer,
                "run": {"runId": str(uuid.uuid4())},
                "job": {"namespace": "airflow", "name": job},
                "inputs": [{"namespace": ns, "name": name} for ns, name in inputs],
                "outputs": outputs,
            },
            format="json",
        )
        assert response.status_code == 201, response.content
    version = model.versions.get()
    card, _ = cards.model_card_request(actor=auditor, version=version)
    cards.model_card_render(card_id=card.pk)
    return {"scientist": scientist, "auditor": auditor, "version": version}


@pytest.mark.django_db(transaction=True)
def test_risk_officer_decides_from_the_queue_with_the_drawing_in_view(
    chromium,  # noqa: F811
    live_server,
    awaiting_risk_officer,  # noqa: F811
):
    data = awaiting_risk_officer
    version = data["version"]
    lineage.model_version_link_run(actor=data["user"], version=version)
    page = _sign_in(chromium, live_server, data["user"])
    page.click("text=Approval queue (1)")
    row = page.locator(f"tr:has-text('Review #{data['request'].pk}')")
    assert "staging → production" in row.inner_text()
    assert "1 risk-officer" in row.inner_text()
    row.locator("a").click()
    _assert_model_node_in_viewport(page, "churn v1")
    _screenshot(page, "risk-officer-evidence")
    page.fill("#id_comment", "Risk assessment reviewed; within appetite.")
    page.click("#approve")
    page.wait_for_selector("text=is now in production")
    history = page.locator("#history").inner_text()
    assert "approved as risk-officer — quorum met" in history
    assert "moved churn v1 from staging to production" in history


@pytest.mark.django_db(transaction=True)
def test_data_scientist_finds_their_models_lineage(
    chromium,  # noqa: F811
    live_server,
    scientists_model,
):
    page = _sign_in(chromium, live_server, scientists_model["scientist"])
    page.click("text=Model versions")
    page.click("#result_list a:has-text('loan-pd')")
    _assert_model_node_in_viewport(page, "loan-pd v1")
    text = page.locator("svg.lineage-drawing").text_content()
    for name in ("public.applications", "build_loan_features", "loans/v3", "train_loan_pd"):
        assert name in text, name
    with page.expect_popup() as popup:
        page.click("text=Open the drawing at full size")
    full = popup.value
    full.wait_for_load_state()
    assert "loan-pd v1" in full.locator("svg").text_content()


@pytest.mark.django_db(transaction=True)
def test_auditor_downloads_a_model_card_and_an_export_that_verifies(
    chromium,  # noqa: F811
    live_server,
    scientists_model,
    tmp_path,
):
    page = _sign_in(chromium, live_server, scientists_model["auditor"])
    page.click("text=Model versions")
    page.click("#result_list a:has-text('loan-pd')")
    _assert_model_node_in_viewport(page, "loan-pd v1")

    page.goto(f"{live_server.url}/admin/")
    page.click("a[href$='/modelcards/modelcard/']")
    _screenshot(page, "auditor-model-cards")
    row = page.locator("#result_list tbody tr").first
    download_link = row.locator("text=download")
    box = download_link.bounding_box()
    assert box and box["x"] + box["width"] <= VIEWPORT["width"]  # on screen, not scrolled to
    with page.expect_download() as card_download:
        download_link.click()
    card = tmp_path / "card.pdf"
    card_download.value.save_as(card)
    assert card.read_bytes().startswith(b"%PDF")

    page.goto(f"{live_server.url}/admin/")
    page.click("text=Audit events")
    with page.expect_download() as export_download:
        page.click("#export-jsonl")
    export = tmp_path / "audit.jsonl"
    export_download.value.save_as(export)
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "scripts" / "verify_audit_export.py")]
        + [str(export), "--no-checkpoint"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verified ")


@pytest.mark.django_db(transaction=True)
def test_lists_of_long_names_keep_every_column_on_screen(
    chromium,  # noqa: F811
    live_server,
    scientists_model,
):
    """A Spark job's name, a lake's partition path and a warehouse table: unbroken names of
    80 to 120 characters, as real producers send them, wrap inside their columns."""
    pipeline = get_user_model().objects.get(username="hour-pipeline")
    client = APIClient()
    client.force_authenticate(pipeline)
    response = client.post(
        "/api/v1/lineage",
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-11-02T10:00:00Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark",
            "run": {"runId": str(uuid.uuid4())},
            "job": {
                "namespace": "spark-cluster-prod-europe-west1",
                "name": "databricks_shell.execute_insert_into_hadoop_fs_relation_command."
                "warehouse_customer_transactions_enriched_daily",
            },
            "inputs": [
                {
                    "namespace": "gs://acme-data-lake-production-europe-west1",
                    "name": "warehouse/customer_transactions/partitioned_by_date/"
                    "year=2026/month=11",
                }
            ],
            "outputs": [
                {
                    "namespace": "bigquery",
                    "name": "acme-analytics-prod.customer_features.transactions_enriched_daily",
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    page = _sign_in(chromium, live_server, scientists_model["auditor"])
    for path in (
        "/admin/lineage/lineageevent/",
        "/admin/lineage/edge/",
        "/admin/registry/run/",
        "/admin/registry/datasetversion/",
    ):
        page.goto(f"{live_server.url}{path}")
        assert "customer_transactions" in page.locator("#result_list").inner_text()
        _screenshot(page, "list" + path.replace("/", "-").rstrip("-"))
        right = page.evaluate(
            "document.querySelector('#result_list').getBoundingClientRect().right"
        )
        assert right <= VIEWPORT["width"], (path, right)
