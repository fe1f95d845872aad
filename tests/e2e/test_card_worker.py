"""A real Celery worker, against Redis and the PostgreSQL test database, renders model cards
requested through the API — and finishes one whose first worker was killed mid-render."""

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection
from pypdf import PdfReader

from approvals import services as approvals
from audit.models import AuditEvent
from modelcards.models import ModelCard
from registry import services as registry
from tests.conftest import REQUIRE_SERVICES, _user

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.fixture
def broker(settings, tmp_path):
    """The test process sends tasks to Redis instead of running them in-process."""
    if connection.vendor != "postgresql" or not _redis_available():
        message = "needs PostgreSQL (DATABASE_URL=postgres://…) and Redis at " + BROKER
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    settings.MEDIA_ROOT = str(tmp_path)
    conf = current_app.conf
    saved = (conf.task_always_eager, conf.broker_url, dict(conf.broker_transport_options))
    conf.task_always_eager = False
    conf.broker_url = BROKER
    conf.broker_transport_options = {"visibility_timeout": 4}
    _reset_connections()
    yield tmp_path
    conf.task_always_eager, conf.broker_url, _ = saved
    conf.broker_transport_options = saved[2]
    _reset_connections()


def _reset_connections() -> None:
    """Drop the app's broker connections so that the next send uses the current broker_url."""
    from kombu import pools

    pools.reset()  # kombu caches pools per connection, process-wide
    current_app._pool = None
    current_app.amqp._producer_pool = None


def start_worker(media: Path, name: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "MEDIA_ROOT": str(media),
        "SECRET_KEY": "worker-test",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            name,
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=20)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _card_status(card_id: int) -> str:
    return ModelCard.objects.values_list("status", flat=True).get(pk=card_id)


@pytest.mark.django_db(transaction=True)
def test_a_worker_renders_a_card_requested_through_the_api(
    broker, api, auditor, owner, superuser, credit_model, credit_version
):
    # An approval history for the card to show: vera-validator approved staging.
    vera = _user("vera-validator", "model-validator")
    approvals.decide_permission_grant(actor=superuser, model=credit_model, grantee=vera)
    staging = approvals.promotion_request_file(
        actor=owner, version=credit_version, to_stage="staging", justification="Validated."
    )
    approvals.promotion_decide(
        actor=vera, request=staging, outcome="approve", comment="Reproduced the AUC."
    )
    worker = start_worker(broker, "cards1@%h")
    try:
        response = api(auditor).post(
            "/api/v1/models/credit-scoring/versions/1/model-cards", {}, format="json"
        )
        assert response.status_code == 202
        card_id = response.json()["id"]
        wait_for(lambda: _card_status(card_id) in ("ready", "failed"), 90, "the card")
    finally:
        stop(worker)
    card = api(auditor).get(f"/api/v1/model-cards/{card_id}").json()
    assert card["status"] == "ready", card["error"]
    download = api(auditor).get(card["pdf_url"])
    pdf = b"".join(download.streaming_content)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "credit-scoring" in text and "0.87" in text
    assert "vera-validator" in text and "Reproduced the AUC." in text  # the approver
    event = AuditEvent.objects.get(action="modelcards.model_card.rendered")
    assert event.changes["sha256"] == hashlib.sha256(pdf).hexdigest() == card["sha256"]
    assert event.channel == "task"


@pytest.mark.django_db(transaction=True)
def test_a_card_completes_after_its_worker_is_killed_mid_render(
    broker, api, auditor, owner, credit_model
):
    # A long document, so that the kill lands while it renders.
    long_text = "Lorem ipsum dolor sit amet. " * 300
    version = registry.model_version_create(
        actor=owner,
        model=credit_model,
        metrics={f"metric_{i}": i / 7 for i in range(150)},
        intended_use=long_text,
        limitations=long_text,
        evaluation_summary=long_text,
    )
    first = start_worker(broker, "cards-doomed@%h")
    try:
        response = api(auditor).post(
            f"/api/v1/models/credit-scoring/versions/{version.version}/model-cards",
            {},
            format="json",
        )
        card_id = response.json()["id"]
        wait_for(lambda: _card_status(card_id) == "rendering", 60, "rendering to start")
    finally:
        stop(first, signal.SIGKILL)
    assert _card_status(card_id) == "rendering"  # the kill interrupted it
    second = start_worker(broker, "cards-rescue@%h")
    try:
        wait_for(lambda: _card_status(card_id) in ("ready", "failed"), 120, "the card")
    finally:
        stop(second)
    card = ModelCard.objects.get(pk=card_id)
    assert card.status == "ready", card.error
    assert card.attempt >= 2
    assert AuditEvent.objects.filter(action="modelcards.model_card.rendered").count() == 1
    assert len(list((broker / "modelcards").glob("*.pdf"))) == 1
