"""Concurrent posts about the same runs and datasets never duplicate anything (PostgreSQL)."""

import threading
import uuid

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from lineage.models import Edge, LineageEvent
from registry import services
from registry.models import Dataset, DatasetVersion, Feature, Job, Run
from tests.lineage.conftest import dataset, run_event, schema_facet

THREADS = 6


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_about_the_same_entities_store_each_once(pipeline):
    _, token = services.api_token_issue(actor=None, user=pipeline, name="c")
    run_id = uuid.uuid4()
    facet = schema_facet(*({"name": f"c{i}", "type": "INT"} for i in range(10)))
    events = [
        run_event(
            kind,
            run_id=run_id,
            time=f"2026-11-01T10:0{i}:00Z",
            inputs=[dataset("s3://raw", "shared", schema=facet)],
            outputs=[dataset("s3://out", "result", schema=facet)],
        )
        for i, kind in enumerate(["START", "RUNNING", "COMPLETE"])
    ]
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    def post(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait(timeout=30)
            for event in events[index % 3 :] + events[: index % 3]:
                statuses.append(client.post("/api/v1/lineage", event, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Every post is a success (201) or, when the database detected a deadlock, a retriable 503.
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.count(201) >= 3
    assert LineageEvent.objects.count() == 3
    assert Run.objects.filter(run_id=run_id).count() == 1
    assert Run.objects.get(run_id=run_id).state == "COMPLETE"
    assert Job.objects.count() == 1
    assert Dataset.objects.count() == 2
    assert Feature.objects.count() == 20
    assert DatasetVersion.objects.filter(dataset__name="result").count() == 1
    assert Edge.objects.count() == len(
        set(Edge.objects.values_list("source", "target", "relation"))
    )


@pytest.mark.django_db
def test_database_outage_answers_503_with_retry_after(post, monkeypatch):
    from lineage import services as lineage_services

    def unavailable(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(lineage_services, "lineage_events_accept", unavailable)
    response = post(run_event())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
