"""The real `mlflow` client, unchanged, registers into modelgov: a separate MLflow tracking
server (`mlflow server`) logs the run and its model, `mlflow.register_model` registers it in
modelgov, and governance answers through MLflow's own verbs.

modelgov is served by gunicorn on PostgreSQL (the test database, so both processes see the
same rows), or by the in-process live server on SQLite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from approvals import services as approvals
from approvals.models import PromotionRequest
from audit.models import AuditEvent
from registry import services as registry
from registry.models import ModelVersion
from tests.approvals.conftest import _policies_without_card_gate  # noqa: F401 - autouse
from tests.conftest import REQUIRE_SERVICES, SHA, _user
from tests.webhooks.conftest import receiver_fixture  # noqa: F401 - fixture `receiver`
from webhooks import services as webhooks

ROOT = Path(__file__).resolve().parents[2]
mlflow = pytest.importorskip("mlflow", reason="needs the mlflow package (pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """`mlflow server`: runs, logged models and their artifacts (not the registry)."""
    home = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=home,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/health", process, 180, "the MLflow tracking server")
        yield url
    finally:
        _stop(process)


@pytest.fixture
def modelgov_url(request):
    """gunicorn against the PostgreSQL test database; the live server on SQLite."""
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("needs PostgreSQL (DATABASE_URL=postgres://…) to serve with gunicorn")
        yield request.getfixturevalue("live_server").url
        return
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        # The test's key: webhook secrets encrypted here are read there.
        "SECRET_KEY": settings.SECRET_KEY,
        "WEBHOOK_ALLOWED_TARGETS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/api/v1/health", process, 60, "gunicorn")
        yield url
    finally:
        _stop(process)


@pytest.fixture
def client_env(monkeypatch, tracking_server, receiver, modelgov_url):
    """The MLflow client as a pipeline would configure it: tracking server, modelgov as the
    registry, a modelgov token as MLFLOW_TRACKING_TOKEN (sent as `Authorization: Bearer`)."""
    owner = _user("owner-scientist", "data-scientist")
    _, token = registry.api_token_issue(actor=None, user=owner, name="mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", modelgov_url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(tracking_server)
    mlflow.set_registry_uri(modelgov_url)
    yield owner
    mlflow.set_registry_uri(None)
    mlflow.set_tracking_uri(None)
    # Close the client's pooled keep-alive connections before the servers stop.
    from mlflow.utils import request_utils

    request_utils._cached_get_request_session.cache_clear()


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


def _approve(request_id: int, *users) -> None:
    for user in users:
        approvals.promotion_decide(
            actor=user,
            request=PromotionRequest.objects.get(pk=request_id),
            outcome="approve",
            comment="Evidence reviewed.",
        )


@pytest.mark.django_db(transaction=True)
def test_the_mlflow_client_registers_and_is_governed(client_env, receiver):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    owner = client_env
    superuser = _user("root", is_superuser=True)
    validator = _user("vera-validator", "model-validator")
    risk = _user("rick-risk", "risk-officer")
    # A registry-wide webhook to a receiver that verifies every delivery (standardwebhooks).
    _, receiver.secret = webhooks.webhook_create(actor=superuser, name="ci", url=receiver.url)

    # A pipeline trains and logs a model on the tracking server…
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.91)
        mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
    # …whose run lineage already told modelgov about (same run id), so it links the version.
    job = registry.job_create(actor=owner, namespace="mlflow", name="train_churn")
    registry.run_create(actor=owner, job=job, run_id=run.info.run_id, state="COMPLETE")

    # Register: creates the model and version 1 in modelgov, unchanged client code.
    registered = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
    assert (registered.name, registered.version, registered.current_stage) == ("churn", "1", "None")
    stored = ModelVersion.objects.get(model__name="churn", version=1)
    assert stored.source_run_id == run.info.run_id
    assert stored.training_run.run_id.hex == run.info.run_id
    assert stored.created_by == owner
    assert AuditEvent.objects.filter(
        action="registry.model_version.created", channel="mlflow"
    ).exists()

    client = MlflowClient()
    # Search, tags, ordinary aliases.
    found = client.search_registered_models(filter_string="name LIKE 'chu%'")
    assert [m.name for m in found] == ["churn"]
    client.set_registered_model_tag("churn", "team", "crm")
    client.set_model_version_tag("churn", "1", "validated", "offline")
    assert client.get_registered_model("churn").tags == {"team": "crm"}
    assert [m.name for m in client.search_registered_models("tags.team = 'crm'")] == ["churn"]
    assert client.get_model_version("churn", "1").tags == {"validated": "offline"}
    client.set_registered_model_alias("churn", "challenger", "1")
    assert client.get_model_version_by_alias("churn", "challenger").version == "1"
    versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert [(v.name, v.version) for v in versions] == [("churn", "1")]

    # A governed alias is refused, with the request to file instead.
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("churn", "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "transition_model_version_stage" in refused.value.message
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("no-such-model")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # The evidence governance asks for (metrics, documentation), from the native side.
    registry.model_version_update(
        actor=owner,
        version=stored,
        data={
            "metrics": {"auc": 0.91},
            "artifact_sha256": SHA,
            "intended_use": "Retention offers.",
            "limitations": "Retail customers only.",
            "training_data_summary": "CRM events 2024-2026.",
            "evaluation_summary": "Out-of-time AUC 0.91.",
        },
    )
    for user in (validator, risk):
        approvals.decide_permission_grant(actor=superuser, model=stored.model, grantee=user)

    # A transition does not move the stage: it files a request, and says so.
    answer = client.transition_model_version_stage("churn", "1", "Staging")
    assert answer.current_stage == "None"
    staging = PromotionRequest.objects.get(to_stage="staging")
    assert staging.status == "pending" and staging.requester == owner
    assert f"Promotion request #{staging.pk} to Staging is pending" in answer.status_message
    _approve(staging.pk, validator)
    assert client.get_model_version("churn", "1").current_stage == "Staging"

    # To production: filed from MLflow, approved in modelgov by two people, seen in MLflow.
    client.transition_model_version_stage("churn", "1", "Production")
    production = PromotionRequest.objects.get(to_stage="production")
    assert client.get_model_version("churn", "1").current_stage == "Staging"
    _approve(production.pk, validator, risk)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert (champion.version, champion.current_stage) == ("1", "Production")
    assert [v.version for v in client.get_latest_versions("churn", stages=["Production"])] == ["1"]
    model = client.get_registered_model("churn")
    assert model.aliases == {"challenger": "1", "champion": "1", "production": "1"}

    # Every change above reached the webhook, signed: the receiver verified each one.
    deadline = time.monotonic() + 30
    while len(receiver.received) < 9 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert receiver.rejected == []
    assert sorted(m["payload"]["type"] for m in receiver.received) == sorted(
        [
            "registered_model.created",
            "model_version.created",
            "model_version.lineage_linked",  # to the training run lineage told of
            "promotion.requested",
            "promotion.approved",
            "model_version.stage_changed",
            "promotion.requested",
            "promotion.approved",
            "model_version.stage_changed",
        ]
    )
    assert {m["payload"]["data"]["model"] for m in receiver.received} == {"churn"}
