import uuid

import pytest
from rest_framework.test import APIClient

from registry import services

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def run_event(
    event_type="COMPLETE",
    *,
    run_id=None,
    job="train",
    inputs=(),
    outputs=(),
    time="2026-11-01T10:00:00.000000Z",
    run_facets=None,
    **extra,
):
    """A RunEvent as the openlineage-python client serialises it."""
    event = {
        "eventTime": time,
        "eventType": event_type,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": str(run_id or uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": "airflow", "name": job, "facets": {}},
        "inputs": [dataset(*i) if isinstance(i, tuple) else i for i in inputs],
        "outputs": [dataset(*o) if isinstance(o, tuple) else o for o in outputs],
    }
    event.update(extra)
    return event


def dataset(namespace, name, **facets):
    return {"namespace": namespace, "name": name, "facets": facets}


def schema_facet(*fields):
    return {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json",
        "fields": list(fields),
    }


@pytest.fixture
def pipeline_client(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="ol")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def post(pipeline_client):
    def send(event, **kwargs):
        return pipeline_client.post("/api/v1/lineage", event, format="json", **kwargs)

    return send
