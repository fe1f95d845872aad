"""Dataset names holding `#` (SQL Server's temporary tables, `db.dbo.#stage`, or paths), and
versions holding it: the last `#` of a dataset version's id starts its version, and a `#`
inside a version is written `%23` in the id."""

import uuid

import pytest

from lineage import nodes
from lineage.models import Edge, LineageEvent
from registry.models import DatasetVersion
from tests.lineage.conftest import dataset, run_event

MSSQL = "mssql://db.example.com:1433"


@pytest.mark.parametrize(
    ("namespace", "name", "version"),
    [
        (MSSQL, "db.dbo.#stage", "run:1"),
        (MSSQL, "db.dbo.##global", "7"),
        ("file", "/tmp/a b/c?d=1&e#f", "a#b"),
        ("s3://lake", "plain", "v#1#2"),
        ("s3://lake", "pct%23name", "1"),
    ],
)
def test_a_dataset_version_id_parses_back_to_its_name_and_version(namespace, name, version):
    node = nodes.dataset_id(namespace, name, version)
    ref = nodes.parse(node)
    assert (ref.namespace, ref.name, ref.version) == (namespace, name, version)
    assert nodes.base_of(node) == nodes.dataset_id(namespace, name)
    assert nodes.version_of(node) == version
    assert ref.id == node


@pytest.mark.django_db
def test_a_reader_of_a_name_holding_hash_reads_the_version_its_writer_wrote(post):
    writer, reader = uuid.uuid4(), uuid.uuid4()
    stage = dataset(MSSQL, "db.dbo.#stage")
    for event in (
        run_event(run_id=writer, job="w", outputs=[stage], time="2026-11-01T10:00:00Z"),
        run_event(run_id=reader, job="r", inputs=[stage], time="2026-11-01T11:00:00Z"),
    ):
        assert post(event).status_code == 201
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    read = Edge.objects.get(target=f"run:{reader}", relation="input")
    assert read.source == f"dataset:{MSSQL}:db.dbo.#stage#run:{writer}"
    assert read.source_base == f"dataset:{MSSQL}:db.dbo.#stage"


@pytest.mark.django_db
def test_a_late_writer_of_one_name_holding_hash_leaves_another_datasets_reader(post):
    """`db.dbo.#a` and `db.dbo.#b` are two datasets: a writer of the first arriving after a
    reader of the second must not re-point that reader."""
    writer, reader = uuid.uuid4(), uuid.uuid4()
    reads_b = run_event(
        run_id=reader, job="r", inputs=[dataset(MSSQL, "db.dbo.#b")], time="2026-11-01T11:00:00Z"
    )
    writes_a = run_event(
        run_id=writer, job="w", outputs=[dataset(MSSQL, "db.dbo.#a")], time="2026-11-01T10:00:00Z"
    )
    for event in (reads_b, writes_a):  # the writer arrives after the reader
        assert post(event).status_code == 201
    read = Edge.objects.get(target=f"run:{reader}", relation="input")
    assert read.source == f"dataset:{MSSQL}:db.dbo.#b#external"


@pytest.mark.django_db
def test_the_marquez_read_keeps_names_holding_hash_apart_and_finds_them_by_node_id(
    post, api, auditor
):
    run_id = uuid.uuid4()
    event = run_event(
        run_id=run_id,
        job="etl",
        inputs=[dataset(MSSQL, "db.dbo.#tmp_src")],
        outputs=[dataset(MSSQL, "db.dbo.#tmp")],
    )
    assert post(event).status_code == 201
    client = api(auditor)
    graph = client.get("/api/v1/lineage", {"nodeId": "job:airflow:etl", "depth": 2})
    assert graph.status_code == 200, graph.content
    ids = {node["id"] for node in graph.json()["graph"]}
    assert {f"dataset:{MSSQL}:db.dbo.#tmp", f"dataset:{MSSQL}:db.dbo.#tmp_src"} <= ids
    job = next(n for n in graph.json()["graph"] if n["id"] == "job:airflow:etl")
    assert job["data"]["inputs"] == [{"namespace": MSSQL, "name": "db.dbo.#tmp_src"}]
    assert job["data"]["outputs"] == [{"namespace": MSSQL, "name": "db.dbo.#tmp"}]
    # the dataset's own id, as the graph gives it, is a node id the read takes
    found = client.get("/api/v1/lineage", {"nodeId": f"dataset:{MSSQL}:db.dbo.#tmp", "depth": 1})
    assert found.status_code == 200, found.content
    assert "job:airflow:etl" in {node["id"] for node in found.json()["graph"]}


@pytest.mark.django_db
def test_a_version_holding_hash_is_stored_as_given_and_read_by_its_node_id(post, api, auditor):
    run_id = uuid.uuid4()
    out = dataset("s3://lake", "t", version={"datasetVersion": "snap#42"})
    assert post(run_event(run_id=run_id, outputs=[out])).status_code == 201
    assert DatasetVersion.objects.get(dataset__name="t").version == "snap#42"
    node = "dataset:s3://lake:t#snap%2342"
    assert Edge.objects.filter(source=f"run:{run_id}", target=node).exists()
    response = api(auditor).get(
        "/api/v1/lineage/upstream",
        {"type": "dataset", "namespace": "s3://lake", "name": "t", "version": "snap#42"},
    )
    assert response.status_code == 200, response.content
    assert f"run:{run_id}" in str(response.json())


@pytest.mark.django_db
def test_the_migration_works_out_again_the_bases_stored_for_names_holding_hash():
    """Edges stored before took the first `#` as the version's start; the migration fixes
    the bases where the name the last `#` gives is catalogued, and leaves an old id whose
    version held `#`."""
    import importlib

    from django.apps import apps

    from registry.models import Dataset

    rebase = importlib.import_module("lineage.migrations.0007_bases_of_names_holding_hash").rebase
    Dataset.objects.create(namespace=MSSQL, name="db.dbo.#stage")
    Dataset.objects.create(namespace="s3://lake", name="t")
    stage = f"dataset:{MSSQL}:db.dbo.#stage#run:1"
    snapshot = "dataset:s3://lake:t#snap#42"
    Edge.objects.create(
        source=stage,
        target="run:2",
        relation="input",
        source_base=f"dataset:{MSSQL}:db.dbo.",
        target_base="run:2",
    )
    Edge.objects.create(
        source="run:3",
        target=snapshot,
        relation="output",
        source_base="run:3",
        target_base="dataset:s3://lake:t",
    )

    rebase(apps, None)

    assert Edge.objects.get(source=stage).source_base == f"dataset:{MSSQL}:db.dbo.#stage"
    assert Edge.objects.get(target=snapshot).target_base == "dataset:s3://lake:t"
