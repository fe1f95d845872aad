"""Namespaces holding colons beyond `scheme://host:port`: Glue's ARN (the OpenLineage naming
spec's `arn:aws:glue:{region}:{account id}`), Kafka's list of bootstrap servers, an IPv6 host,
Spanner's project and instance.
The node ids the graph gives for them parse back to the same namespace and name, and the read
endpoints find them."""

import uuid

import pytest

from lineage import nodes
from tests.lineage.conftest import dataset, run_event

GLUE = "arn:aws:glue:us-east-1:123456789012"
KAFKA = "kafka://b1.example.com:9092,b2.example.com:9092"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        (GLUE, "table/salesdb/orders"),
        ("arn:aws-cn:glue:cn-north-1:123456789012", "table/db/t:with:colons"),
        (KAFKA, "orders"),
        ("kafka://b1:9092,b2,b3:9093", "topic:v2"),
        ("postgres://[2001:db8::1]:5432", "public.orders"),
        ("postgres://[::1]", "db.t"),
        ("postgres://[fe80::1%25eth0]:5432", "db.t"),  # a zone id, percent-encoded
        ("postgres://[fe80::1%eth0]", "db.t"),
        # Spanner (the naming spec's `spanner://{projectId}:{instanceId}`), with the database
        # after it as Flink's JDBC connector sends it
        ("spanner://my-project:my-instance", "db.schema.orders"),
        ("spanner://my-project:my-instance/my-database", "orders"),
        ("SPANNER://my-project:my-instance", "db.orders"),
        # the forms read before: a URI with and without a port, a plain namespace, colons
        # in the name
        ("postgres://warehouse:5432", "public.orders"),
        ("s3://lake", "raw/a:b:c"),
        ("bigquery", "project.dataset.table"),
        ("file", "/data/x:y"),
    ],
)
def test_a_dataset_id_parses_back_to_its_namespace_and_name(namespace, name):
    for version in (None, "3"):
        node = nodes.dataset_id(namespace, name, version)
        ref = nodes.parse(node)
        assert (ref.namespace, ref.name, ref.version) == (namespace, name, version)
        assert ref.id == node
    field = nodes.parse(nodes.field_id(namespace, name, "amount"))
    assert (field.namespace, field.name, field.field) == (namespace, name, "amount")
    job = nodes.parse(nodes.job_id(namespace, name))
    assert (job.namespace, job.name) == (namespace, name)


@pytest.mark.django_db
def test_the_graph_names_glue_and_kafka_datasets_and_finds_them_by_the_ids_it_gives(
    post, api, auditor
):
    run_id = uuid.uuid4()
    event = run_event(
        run_id=run_id,
        job="glue_to_kafka",
        inputs=[dataset(GLUE, "table/salesdb/orders")],
        outputs=[dataset(KAFKA, "orders")],
    )
    assert post(event).status_code == 201
    client = api(auditor)
    graph = client.get("/api/v1/lineage", {"nodeId": "job:airflow:glue_to_kafka", "depth": 2})
    assert graph.status_code == 200, graph.content
    by_id = {node["id"]: node for node in graph.json()["graph"]}
    glue, kafka = f"dataset:{GLUE}:table/salesdb/orders", f"dataset:{KAFKA}:orders"
    assert by_id[glue]["data"]["namespace"] == GLUE
    assert by_id[glue]["data"]["name"] == "table/salesdb/orders"
    assert by_id[kafka]["data"]["namespace"] == KAFKA
    job = by_id["job:airflow:glue_to_kafka"]
    assert job["data"]["inputs"] == [{"namespace": GLUE, "name": "table/salesdb/orders"}]
    assert job["data"]["outputs"] == [{"namespace": KAFKA, "name": "orders"}]
    for node in (glue, kafka):  # each id the graph gave is one the read takes
        found = client.get("/api/v1/lineage", {"nodeId": node, "depth": 1})
        assert found.status_code == 200, found.content
        assert "job:airflow:glue_to_kafka" in {n["id"] for n in found.json()["graph"]}
    down = client.get("/api/v1/lineage/downstream", {"nodeId": f"{glue}#external", "depth": 3})
    assert down.status_code == 200, down.content
    assert f"run:{run_id}" in {n["id"] for n in down.json()["nodes"]}
