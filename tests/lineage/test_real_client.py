"""The openlineage-python client itself, over HTTP, against a live server."""

import uuid

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_metrics_input_dataset,
    schema_dataset,
)
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from lineage.models import LineageEvent
from registry import services
from registry.models import Feature, ModelVersion

PRODUCER = "https://github.com/acme/pipelines"
NS = "postgres://warehouse:5432"


@pytest.fixture
def ol_client(live_server, pipeline):
    _, token = services.api_token_issue(actor=None, user=pipeline, name="client")
    config = HttpConfig(
        url=live_server.url,
        endpoint="api/v1/lineage",
        timeout=5.0,
        compression="gzip",
        auth=ApiKeyTokenProvider({"apiKey": token}),
    )
    return OpenLineageClient(transport=HttpTransport(config))


def _events(run_id):
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name="customer_id", type="BIGINT"),
            schema_dataset.SchemaDatasetFacetFields(
                name="tenure_months", type="INTEGER", description="months since signup"
            ),
        ]
    )
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "tenure_months": column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=NS, name="public.customers", field="signup_date"
                    )
                ],
                transformationDescription="months between signup and today",
                transformationType="TRANSFORMATION",
            )
        }
    )
    inputs = [InputDataset(namespace=NS, name="public.customers")]
    features = OutputDataset(
        namespace=NS, name="features.churn", facets={"schema": schema, "columnLineage": lineage}
    )
    model_facet = {
        "modelgov_model": {
            "_producer": PRODUCER,
            "_schemaURL": "https://modelgov.example/spec/ModelFacet.json",
            "name": "churn",
            "artifactUri": "s3://models/churn/7/model.pkl",
            "sha256": "e" * 64,
            "framework": "lightgbm 4.5",
            "metrics": {"auc": 0.873},
        }
    }
    job = Job(namespace="airflow", name="train_churn")
    run = Run(runId=str(run_id))
    start = RunEvent(
        eventType=RunState.START,
        eventTime="2026-11-01T10:00:00+00:00",
        run=run,
        job=job,
        producer=PRODUCER,
        inputs=inputs,
        outputs=[features],
    )
    complete = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-11-01T10:20:00+00:00",
        run=run,
        job=job,
        producer=PRODUCER,
        inputs=inputs,
        outputs=[
            features,
            OutputDataset(namespace="s3://models", name="churn", facets=model_facet),
        ],
    )
    return start, complete


@pytest.mark.django_db(transaction=True)
def test_openlineage_python_client_events_become_a_queryable_graph(
    ol_client, live_server, validator
):
    run_id = uuid.uuid4()
    for event in _events(run_id):
        ol_client.emit(event)
        ol_client.emit(event)  # a retried delivery is harmless
    assert LineageEvent.objects.count() == 2
    assert ModelVersion.objects.get().metrics == {"auc": 0.873}
    assert Feature.objects.get(name="tenure_months").description == "months since signup"

    import requests

    _, token = services.api_token_issue(actor=None, user=validator, name="reader")
    response = requests.get(
        f"{live_server.url}/api/v1/lineage/upstream",
        params={"nodeId": "model:churn:1", "depth": 5},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200
    ids = {n["id"] for n in response.json()["nodes"]}
    assert f"run:{run_id}" in ids
    assert f"dataset:{NS}:public.customers#external" in ids
    response = requests.get(
        f"{live_server.url}/api/v1/lineage",
        params={"nodeId": "datasetField:" + NS + ":features.churn:tenure_months"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200
    fields = {n["id"] for n in response.json()["graph"]}
    assert f"datasetField:{NS}:public.customers:signup_date" in fields


@pytest.mark.django_db(transaction=True)
def test_the_python_client_delivers_what_spark_airflow_dbt_and_flink_send(ol_client):
    """Each producer's event shape through the client's HttpTransport (gzip), as they emit
    them: every one answered 201, stored as sent and mapped into the graph."""
    from tests.lineage.test_producers import airflow_events, dbt_event, flink_event, spark_event

    _, _, airflow = airflow_events()
    events = [spark_event(uuid.uuid4()), *airflow, dbt_event(uuid.uuid4(), uuid.uuid4())]
    events.append(flink_event(uuid.uuid4()))
    for event in events:
        response = ol_client.transport.emit(event)
        assert response.status_code == 201
    stored = {str(e.run_id): e for e in LineageEvent.objects.all()}
    assert len(stored) == len(events)
    for event in events:
        assert stored[event["run"]["runId"]].payload == _without_nulls(event)
        assert stored[event["run"]["runId"]].state == "mapped"


def _without_nulls(value):
    """What the client sends: it drops null values before serialising."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.django_db(transaction=True)
def test_the_python_clients_bare_nan_and_infinity_are_kept_as_jacksons_strings(ol_client):
    """The client writes non-finite statistics bare (json.dumps' default), which is not JSON:
    they are stored as the strings a Java client sends, and the event is mapped."""
    dq = data_quality_metrics_input_dataset
    metrics = dq.DataQualityMetricsInputDatasetFacet(
        rowCount=0,
        columnMetrics={
            "amount": dq.ColumnMetrics(
                nullCount=0, sum=float("nan"), min=float("inf"), max=float("-inf")
            )
        },
    )
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-11-01T10:20:00+00:00",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="airflow", name="check_payments"),
        producer=PRODUCER,
        inputs=[
            InputDataset(
                namespace=NS, name="public.payments", inputFacets={"dataQualityMetrics": metrics}
            )
        ],
    )
    ol_client.emit(event)
    stored = LineageEvent.objects.get()
    assert stored.state == "mapped"
    column = stored.payload["inputs"][0]["inputFacets"]["dataQualityMetrics"]["columnMetrics"]
    assert column["amount"] == {
        "nullCount": 0,
        "sum": "NaN",
        "min": "Infinity",
        "max": "-Infinity",
        "quantiles": {},
    }
