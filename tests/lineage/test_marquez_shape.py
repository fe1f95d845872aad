"""Marquez's response shapes (lineage.marquez): pure, no database."""

from lineage import graph, marquez, nodes

RUN = "0b0ed1b5-8ad6-4c38-9a3a-2bbd6c5b1e4d"
UNKNOWN_RUN = "5f1c6a0e-0d43-4a4e-9d1e-6f9a2b7c3d11"


def _edges(node):
    return sorted(e["origin"] for e in node["inEdges"]), sorted(
        e["destination"] for e in node["outEdges"]
    )


def test_versions_collapse_into_datasets_and_runs_into_jobs():
    raw_v1 = nodes.dataset_id("s3://a", "raw", "v1")
    raw_v2 = nodes.dataset_id("s3://a", "raw", "v2")
    out = nodes.dataset_id("s3://a", "out", f"run:{RUN}")
    sub = graph.digraph(
        [
            (raw_v1, nodes.run_id(RUN), "input"),
            (raw_v2, nodes.run_id(RUN), "input"),
            (nodes.run_id(RUN), out, "output"),
            (out, nodes.run_id(UNKNOWN_RUN), "input"),
        ]
    )
    ref = nodes.parse("dataset:s3://a:raw")
    shaped = marquez.collapsed_graph(sub, ref, {RUN: ("airflow", "dag.task")}, datasets={})
    by_id = {node["id"]: node for node in shaped}
    assert list(by_id) == sorted(by_id)  # sorted by id
    job = "job:airflow:dag.task"
    assert set(by_id) == {
        "dataset:s3://a:raw",
        "dataset:s3://a:out",
        job,
        f"run:{UNKNOWN_RUN}",  # a run whose job is not known stays a run
    }
    assert _edges(by_id[job]) == (["dataset:s3://a:raw"], ["dataset:s3://a:out"])
    assert _edges(by_id["dataset:s3://a:raw"]) == ([], [job])  # two versions, one edge
    assert by_id[job]["type"] == "JOB" and by_id["dataset:s3://a:raw"]["type"] == "DATASET"
    assert by_id["dataset:s3://a:raw"]["data"] == {"namespace": "s3://a", "name": "raw"}


def test_a_field_computed_from_itself_keeps_its_edge_when_versions_collapse():
    amount = nodes.field_id("s3://a", "orders", "amount")
    total = nodes.field_id("s3://a", "orders", "total")
    sub = graph.digraph([(amount, amount, "column"), (amount, total, "column")])
    shaped = marquez.collapsed_graph(sub, nodes.parse(amount), {}, datasets={})
    by_id = {node["id"]: node for node in shaped}
    assert _edges(by_id[amount]) == ([amount], sorted([amount, total]))
    assert _edges(by_id[total]) == ([amount], [])


def test_jobs_list_their_datasets_and_catalogued_datasets_their_data():
    job = "job:airflow:dag.task"
    found = {
        job: {"in": {"dataset:s3://a:raw", "model:churn:3"}, "out": {"dataset:s3://a:out"}},
        "dataset:s3://a:raw": {"in": set(), "out": {job}},
        "dataset:s3://a:out": {"in": {job}, "out": set()},
        "model:churn:3": {"in": set(), "out": {job}},
    }
    known = {"id": {"namespace": "s3://a", "name": "out"}, "type": "DB_TABLE"}
    shaped = {n["id"]: n for n in marquez.graph(found, {"dataset:s3://a:out": known})}
    assert shaped[job]["data"]["inputs"] == [{"namespace": "s3://a", "name": "raw"}]
    assert shaped[job]["data"]["outputs"] == [{"namespace": "s3://a", "name": "out"}]
    assert shaped[job]["data"]["simpleName"] == "task"
    assert shaped["dataset:s3://a:out"]["data"] is known
    assert shaped["model:churn:3"]["data"] == {"namespace": None, "name": "churn", "version": 3}
    assert shaped["model:churn:3"]["type"] == "MODEL"
