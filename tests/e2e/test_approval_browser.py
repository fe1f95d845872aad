"""A risk officer, in a real browser (headless Chromium driven by Playwright), signs in to the
admin, opens the approval queue, approves a production request with a comment, and the
version page then shows production."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import Group
from django.db import connections

from approvals import services
from modelcards import services as cards
from registry import services as registry
from tests.conftest import REQUIRE_SERVICES, SHA, _user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def chromium(monkeypatch):
    """Headless Chromium from the system (never a downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("needs the playwright package (pip install -e '.[dev]')")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous, so Django's async-safety check is lifted for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
            # Database work done while Playwright's loop ran used its own connection.
            connections.close_all()


@pytest.fixture
def awaiting_risk_officer(db, settings, tmp_path):
    """A medium-risk model whose version 1 needs only the risk officer's approval to reach
    production (the validator has approved, having generated the model card), built through
    the services."""
    settings.MEDIA_ROOT = str(tmp_path)
    owner = _user("browser-owner", "data-scientist")
    validator = _user("browser-validator", "model-validator")
    risk = _user("browser-risk", "risk-officer")
    pipeline = _user("browser-pipeline", "pipeline")
    admin = _user("browser-admin", is_superuser=True)
    assert Group.objects.filter(name="risk-officer").exists()
    model = registry.registered_model_create(actor=owner, name="churn", risk_tier="medium")
    job = registry.job_create(actor=pipeline, namespace="airflow", name="train_churn")
    run = registry.run_create(actor=pipeline, job=job, state="COMPLETE")
    version = registry.model_version_create(
        actor=owner,
        model=model,
        artifact_uri="s3://models/churn/1",
        artifact_sha256=SHA,
        metrics={"auc": 0.81},
        training_run=run,
        intended_use="Churn propensity.",
        limitations="Subscription customers only.",
        training_data_summary="Customer events 2025-2026.",
        evaluation_summary="Out-of-time validation.",
    )
    for approver in (validator, risk):
        services.decide_permission_grant(actor=admin, model=model, grantee=approver)
    for stage in ("staging", "production"):
        request = services.promotion_request_file(
            actor=owner, version=version, to_stage=stage, justification="Validated."
        )
        if stage == "production":  # approvers decide on a model card of this content
            card, _ = cards.model_card_request(actor=validator, version=version)
            cards.model_card_render(card_id=card.pk)
        services.promotion_decide(
            actor=validator, request=request, outcome="approve", comment="Reproduced."
        )
    return {"user": risk, "password": "pw-browser-risk", "request": request, "version": version}


@pytest.mark.django_db(transaction=True)
def test_risk_officer_approves_from_the_queue_and_the_version_shows_production(
    chromium, live_server, awaiting_risk_officer
):
    data = awaiting_risk_officer
    page = chromium.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", data["user"].username)
    page.fill("#id_password", data["password"])
    page.click("input[type=submit]")

    page.click("text=Approval queue (1)")
    page.click(f"text=Review #{data['request'].pk}")
    assert page.locator("#request-status").inner_text().startswith("pending")
    page.fill("#id_comment", "Risk assessment reviewed; within appetite.")
    page.click("#approve")
    page.wait_for_selector("text=is now in production")
    assert page.locator("#version-stage").inner_text() == "production"

    page.click("#version a")  # the version's own admin page
    page.wait_for_url(re.compile(r"/admin/registry/modelversion/\d+/change/"))
    stage = page.locator(".field-stage .readonly").inner_text()
    assert stage.strip() == "Production"
    data["version"].refresh_from_db()
    assert data["version"].stage == "production"
