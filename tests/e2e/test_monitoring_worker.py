"""A real Celery worker, against Redis and the PostgreSQL test database, turns a breaching
monitoring point posted through the API into an alert, a re-validation request filed by the
system account and the alert's e-mail."""

import pytest

from approvals.models import PromotionRequest
from audit.models import AuditEvent
from oversight import services
from oversight.models import MonitoringAlert, MonitoringPoint
from tests.approvals.conftest import (  # noqa: F401 - fixtures
    _policies_without_card_gate,
    appoint,
    approvers,
    decide,
    file,
    make_version,
    promote,
    training_run,
    validator_2,
    version,
)
from tests.e2e.test_card_worker import broker, start_worker, stop, wait_for  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_a_worker_opens_the_alert_and_files_the_revalidation(
    broker,  # noqa: F811
    api,
    owner,
    risk_officer,
    credit_model,
    version,  # noqa: F811
    promote,  # noqa: F811
):
    promote(version, "staging")
    promote(version, "production")
    services.threshold_rule_create(
        actor=risk_officer,
        model=credit_model,
        metric="psi",
        comparator="gt",
        threshold=0.25,
        revalidate=True,
    )
    worker = start_worker(broker, "monitoring1@%h")
    try:
        response = api(owner).post(
            f"/api/v1/models/credit-scoring/versions/{version.version}/monitoring",
            {
                "points": [
                    {
                        "metric": "psi",
                        "value": 0.4,
                        "segment": "income",
                        "window_start": "2026-11-01T00:00:00Z",
                        "window_end": "2026-11-02T00:00:00Z",
                    }
                ]
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["breaching"] == 1  # evaluated by the worker, after commit
        alert = wait_for(
            lambda: MonitoringAlert.objects.filter(notified_at__isnull=False).first(),
            60,
            "the alert and its e-mail",
        )
    finally:
        stop(worker)
    assert (alert.metric, alert.segment, alert.value) == ("psi", "income", 0.4)
    request = PromotionRequest.objects.get(pk=alert.revalidation_request_id)
    assert (request.from_stage, request.to_stage, request.status) == (
        "production",
        "staging",
        "pending",
    )
    assert request.requester.username == "modelgov-system"
    opened = AuditEvent.objects.get(action="oversight.monitoring_alert.opened")
    assert opened.channel == "task" and opened.actor_id is None
    assert MonitoringPoint.objects.count() == 1
