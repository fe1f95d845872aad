"""Upstream, downstream, impact and the Marquez-shaped graph."""

import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db
NS = "postgres://warehouse:5432"


@pytest.fixture
def trained(post, owner, pipeline):
    """raw.loans → (etl run) → features → (train run) → model credit v1."""
    etl, train = uuid.uuid4(), uuid.uuid4()
    post(
        run_event(
            run_id=etl, job="etl", inputs=[(NS, "raw.loans")], outputs=[(NS, "features.loans")]
        )
    )
    facet = {"name": "credit", "sha256": "c" * 64, "metrics": {"auc": 0.8}}
    post(
        run_event(
            run_id=train,
            job="train",
            inputs=[(NS, "features.loans")],
            outputs=[dataset("s3://models", "credit", modelgov_model=facet)],
        )
    )
    return {"etl": etl, "train": train}


def test_upstream_of_a_model_version_reaches_the_raw_data(api, validator, trained):
    body = api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1").json()
    ids = {n["id"] for n in body["nodes"]}
    assert f"dataset:{NS}:raw.loans#external" in ids
    assert f"run:{trained['etl']}" in ids


def test_depth_bounds_the_walk(api, validator, trained):
    body = api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1&depth=1").json()
    ids = {n["id"] for n in body["nodes"]}
    assert f"dataset:{NS}:raw.loans#external" not in ids
    assert f"run:{trained['train']}" in ids


def test_explicit_type_namespace_name_parameters_handle_colons(api, validator, trained):
    response = api(validator).get(
        "/api/v1/lineage/downstream", {"type": "dataset", "namespace": NS, "name": "raw.loans"}
    )
    ids = {n["id"] for n in response.json()["nodes"]}
    assert "model:credit:1" in ids


def test_graphml_export(api, validator, trained):
    response = api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1&format=graphml")
    assert response["Content-Type"].startswith("application/graphml+xml")
    root = ET.fromstring(response.content)
    assert root.tag.endswith("graphml")
    assert len(root.findall(".//{http://graphml.graphdrawing.org/xmlns}node")) == 5


def test_svg_drawing_escapes_labels(api, validator, post):
    post(run_event(inputs=[("s3://x", "<script>alert(1)</script>")], outputs=[("s3://x", "out")]))
    response = api(validator).get(
        "/api/v1/lineage/downstream",
        {
            "type": "dataset",
            "namespace": "s3://x",
            "name": "<script>alert(1)</script>",
            "format": "svg",
        },
    )
    svg = response.content.decode()
    assert response["Content-Type"] == "image/svg+xml"
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_impact_lists_model_versions_production_first(
    api, risk_officer, post, owner, pipeline, trained
):
    facet = {"name": "credit", "sha256": "d" * 64}
    post(
        run_event(
            job="train",
            inputs=[(NS, "features.loans")],
            outputs=[dataset("s3://models", "credit", modelgov_model=facet)],
        )
    )
    response = api(risk_officer).get(
        "/api/v1/lineage/impact", {"type": "dataset", "namespace": NS, "name": "raw.loans"}
    )
    assert response.status_code == 200
    assert [(m["model"], m["version"]) for m in response.json()["models"]] == [
        ("credit", 1),
        ("credit", 2),
    ]


def test_impact_of_one_dataset_version(api, risk_officer, trained):
    node = f"dataset:{NS}:features.loans#run:{trained['etl']}"
    models = api(risk_officer).get("/api/v1/lineage/impact", {"nodeId": node}).json()["models"]
    assert [m["node"] for m in models] == ["model:credit:1"]


def test_impact_hides_models_the_caller_may_not_see(api, other_scientist, trained):
    models = (
        api(other_scientist)
        .get("/api/v1/lineage/impact", {"nodeId": f"dataset:{NS}:raw.loans"})
        .json()["models"]
    )
    assert models == []


def test_marquez_graph_shape(api, validator, trained):
    body = api(validator).get("/api/v1/lineage", {"nodeId": f"dataset:{NS}:raw.loans"}).json()
    by_id = {n["id"]: n for n in body["graph"]}
    assert by_id[f"dataset:{NS}:raw.loans"]["type"] == "DATASET"
    assert by_id["job:airflow:etl"]["type"] == "JOB"
    assert {"origin": f"dataset:{NS}:raw.loans", "destination": "job:airflow:etl"} in (
        by_id["job:airflow:etl"]["inEdges"]
    )
    assert [n["id"] for n in body["graph"]] == sorted(by_id)


def test_unknown_node_answers_404(api, validator, db):
    response = api(validator).get("/api/v1/lineage", {"nodeId": "dataset:nope:nothing"})
    assert response.status_code == 404


def test_malformed_node_id_answers_400(api, validator, db):
    response = api(validator).get("/api/v1/lineage/upstream", {"nodeId": "table:x"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "nodeId"


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/upstream"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"nodeId": "run:not-a-uuid"}, "nodeId"),
        ({"type": "run", "runId": "not-a-uuid"}, "runId"),
        ({"type": "run", "name": "12345"}, "name"),
        ({"type": "run"}, "runId"),
    ],
)
def test_a_run_id_that_is_no_uuid_answers_400_naming_its_field(
    api, validator, db, path, query, field
):
    response = api(validator).get(path, query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert "UUID" in response.json()["errors"][0]["message"]


def test_depth_over_the_limit_answers_400(api, validator, trained, settings):
    settings.LINEAGE_MAX_DEPTH = 5
    response = api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1&depth=6")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "depth"


def test_node_cap_answers_400(api, validator, trained, settings):
    settings.LINEAGE_MAX_NODES = 2
    response = api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1")
    assert response.status_code == 400
    assert "too large" in response.json()["errors"][0]["message"]


def test_model_nodes_are_hidden_from_those_who_may_not_see_them(api, other_scientist, trained):
    response = api(other_scientist).get(
        "/api/v1/lineage/downstream", {"nodeId": f"dataset:{NS}:raw.loans"}
    )
    ids = {n["id"] for n in response.json()["nodes"]}
    assert "model:credit:1" not in ids
    assert (
        api(other_scientist)
        .get("/api/v1/lineage/upstream", {"nodeId": "model:credit:1"})
        .status_code
        == 404
    )


def test_reading_lineage_needs_a_role(api, outsider, trained):
    assert (
        api(outsider).get("/api/v1/lineage/upstream", {"nodeId": "model:credit:1"}).status_code
        == 403
    )


def test_query_count_of_an_upstream_query_is_fixed(
    api, validator, trained, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        api(validator).get("/api/v1/lineage/upstream?nodeId=model:credit:1")


def test_reads_resolve_to_the_latest_version_written_by_another_run_however_they_are_split(
    monkeypatch, django_assert_num_queries
):
    from datetime import UTC, datetime, timedelta

    from lineage import selectors, services
    from lineage.models import Relation

    t0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
    v1, v2 = "dataset:ns:d#v1", "dataset:ns:d#v2"
    services.add_edges(
        {("run:a", v1, Relation.OUTPUT), ("run:b", v2, Relation.OUTPUT)},
        at={("run:a", v1): t0, ("run:b", v2): t0 + timedelta(hours=1)},
    )
    reads = [
        ("dataset:ns:d", t0 - timedelta(minutes=1), "run:x"),  # before any write: left out
        ("dataset:ns:d", t0 + timedelta(minutes=1), "run:x"),
        ("dataset:ns:d", t0 + timedelta(hours=2), "run:x"),
        ("dataset:ns:d", t0 + timedelta(hours=2), "run:b"),  # not its own write
    ]
    expected = {reads[1]: v1, reads[2]: v2, reads[3]: v1}
    with django_assert_num_queries(1):
        assert selectors.versions_at(reads) == expected
    monkeypatch.setattr(selectors, "READS_PER_STATEMENT", 3)
    with django_assert_num_queries(2):
        assert selectors.versions_at(reads) == expected
