"""`GET /api/v1/lineage` answers as Marquez does: the connected graph within `depth` job hops
(both directions at every hop), each job with all its inputs and outputs."""

import uuid

import pytest

from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db

NS = "s3://bakery"


def _job(post, job, inputs=(), outputs=(), time="2026-09-02T08:00:00Z", **extra):
    response = post(
        run_event(
            run_id=uuid.uuid4(),
            job=job,
            time=time,
            inputs=[dataset(NS, n) for n in inputs],
            outputs=[dataset(NS, n) for n in outputs],
            **extra,
        )
    )
    assert response.status_code == 201


@pytest.fixture
def bakery(post):
    _job(post, "refine_sugar", ["cane"], ["sugar"], time="2026-09-01T05:00:00Z")
    _job(post, "harvest", [], ["apples"], time="2026-09-01T06:00:00Z")
    _job(post, "prepare_apple_filling", ["apples", "sugar", "cinnamon"], ["filling"])
    _job(post, "bake_pie", ["filling", "crust"], ["pie"], time="2026-09-03T09:00:00Z")
    _job(post, "taste_test", ["filling"], [], time="2026-09-03T10:00:00Z")
    _job(post, "serve", ["pie"], [], time="2026-09-04T10:00:00Z")


def _graph(api, user, node, depth):
    response = api(user).get("/api/v1/lineage", {"nodeId": node, "depth": depth})
    assert response.status_code == 200
    return {n["id"]: n for n in response.json()["graph"]}


def _ids(*names):
    return {f"dataset:{NS}:{n}" for n in names}


def test_a_job_found_from_one_input_lists_all_its_inputs(api, validator, bakery):
    graph = _graph(api, validator, f"dataset:{NS}:apples", 1)
    filling = graph["job:airflow:prepare_apple_filling"]
    assert {e["origin"] for e in filling["inEdges"]} == _ids("apples", "sugar", "cinnamon")
    assert {e["destination"] for e in filling["outEdges"]} == _ids("filling")
    assert filling["data"]["inputs"] == [
        {"namespace": NS, "name": n} for n in ("apples", "cinnamon", "sugar")
    ]


def test_depth_counts_job_hops_in_both_directions_at_every_hop(api, validator, bakery):
    near = _graph(api, validator, f"dataset:{NS}:apples", 1)
    # hop 0: the jobs touching apples; hop 1: jobs sharing any of their datasets, upstream
    # (refine_sugar) and downstream (bake_pie) and sideways (taste_test, another reader)
    assert {n for n in near if n.startswith("job:")} == {
        "job:airflow:harvest",
        "job:airflow:prepare_apple_filling",
        "job:airflow:refine_sugar",
        "job:airflow:bake_pie",
        "job:airflow:taste_test",
    }
    assert _ids("cane", "crust", "pie") <= set(near)  # all inputs and outputs of those jobs
    assert "job:airflow:serve" not in near
    far = _graph(api, validator, f"dataset:{NS}:apples", 2)
    assert "job:airflow:serve" in far


def test_nodes_and_edges_have_marquez_shape(api, validator, bakery):
    graph = _graph(api, validator, "job:airflow:bake_pie", 1)
    assert list(graph) == sorted(graph)
    pie = graph[f"dataset:{NS}:pie"]
    assert pie["type"] == "DATASET"
    assert pie["data"]["id"] == {"namespace": NS, "name": "pie"}
    assert {"name", "namespace", "physicalName", "fields", "tags", "createdAt"} <= set(pie["data"])
    assert pie["inEdges"] == [{"origin": "job:airflow:bake_pie", "destination": pie["id"]}]
    job = graph["job:airflow:bake_pie"]
    assert job["type"] == "JOB"
    assert job["data"]["id"] == {"namespace": "airflow", "name": "bake_pie"}
    # every edge is listed on both of its ends
    for node in graph.values():
        for edge in node["outEdges"]:
            assert edge in graph[edge["destination"]]["inEdges"]


def test_a_dataset_nobody_reads_or_writes_is_a_one_node_graph(api, validator, post):
    post(
        {
            "eventTime": "2026-11-01T10:00:00Z",
            "producer": "p",
            "dataset": dataset(NS, "lonely"),
        }
    )
    graph = _graph(api, validator, f"dataset:{NS}:lonely", 20)
    assert list(graph) == [f"dataset:{NS}:lonely"]
    assert graph[f"dataset:{NS}:lonely"]["inEdges"] == []


def test_models_a_job_trained_are_shown_only_to_who_may_see_them(
    api, post, validator, other_scientist
):
    facet = {"name": "pie-quality", "sha256": "c" * 64}
    _job(post, "train", ["pie"], [])
    post(
        run_event(
            run_id=uuid.uuid4(),
            job="train_quality",
            inputs=[dataset(NS, "pie")],
            outputs=[dataset("s3://models", "pq", modelgov_model=facet)],
        )
    )
    seen = _graph(api, validator, f"dataset:{NS}:pie", 1)
    assert "model:pie-quality:1" in seen
    hidden = _graph(api, other_scientist, f"dataset:{NS}:pie", 1)
    assert "model:pie-quality:1" not in hidden
    assert all(
        e["destination"] != "model:pie-quality:1" for n in hidden.values() for e in n["outEdges"]
    )
