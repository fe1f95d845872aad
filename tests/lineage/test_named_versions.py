"""Versions a run writes before an event of its own names them (`run:<runId>` stands in):
naming them is checked like any write, keeps what a version holds, and never fails a batch
for good."""

import uuid

import networkx as nx
import pytest

from audit.models import AuditEvent
from lineage import services
from lineage.models import Edge, LineageEvent
from registry.models import Dataset, DatasetVersion
from tests.lineage.conftest import schema_facet
from tests.lineage.test_arrival_order import NS, _event, _id

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def deferred(settings):
    settings.LINEAGE_MAP_INLINE = False


def _map(pipeline, *events):
    """Accept the events, then map them (together, when they fit one batch)."""
    services.lineage_events_accept(actor=pipeline, payloads=list(events))
    return services.lineage_events_map_all()


def _states():
    return list(LineageEvent.objects.order_by("id").values_list("state", flat=True))


def _acyclic():
    pairs = list(Edge.objects.exclude(relation="column").values_list("source", "target"))
    return nx.is_directed_acyclic_graph(nx.DiGraph(pairs))


def test_two_stand_ins_named_the_same_version_in_one_batch_become_one(pipeline):
    """Two runs (a retry, say) write the same partition: both START unversioned, then both
    COMPLETEs, in one batch, name the same version."""
    _map(
        pipeline,
        _event("a", "load", "2026-11-01T10:00:00Z", outputs=["orders"], event_type="START"),
        _event("b", "load", "2026-11-01T10:01:00Z", outputs=["orders"], event_type="START"),
    )
    result = _map(
        pipeline,
        _event("a", "load", "2026-11-01T10:05:00Z", outputs=[("orders", "2026-11-01")]),
        _event("b", "load", "2026-11-01T10:06:00Z", outputs=[("orders", "2026-11-01")]),
    )
    assert (result.mapped, result.rejected) == (2, 0)
    assert set(_states()) == {"mapped"}
    assert list(
        DatasetVersion.objects.filter(dataset__name="orders").values_list("version", flat=True)
    ) == ["2026-11-01"]
    writes = set(Edge.objects.filter(relation="output").values_list("source", "target"))
    node = f"dataset:{NS}:orders#2026-11-01"
    assert writes == {(f"run:{_id('a')}", node), (f"run:{_id('b')}", node)}
    assert AuditEvent.objects.filter(action="registry.dataset_version.merged").count() == 1


@pytest.mark.parametrize("complete_first", [False, True])
def test_naming_a_stand_in_that_would_close_a_cycle_through_another_run_is_refused(
    pipeline, complete_first
):
    """W reads d2@a and writes orders; R reads orders@1 and writes d2@a; W's COMPLETE names
    its write orders@1: W → orders@1 → R → d2@a → W. One of W's events is refused, whichever
    arrives first, and the graph stays acyclic."""
    start = _event("w", "w", "2026-11-01T10:00:00Z", [("d2", "a")], ["orders"], event_type="START")
    reader = _event("r", "r", "2026-11-01T10:03:00Z", [("orders", "1")], [("d2", "a")])
    complete = _event("w", "w", "2026-11-01T10:05:00Z", outputs=[("orders", "1")])
    for event in [complete, reader, start] if complete_first else [start, reader, complete]:
        _map(pipeline, event)
    rejected = LineageEvent.objects.get(state="rejected")
    assert rejected.run_id == _id("w") and "cycle" in rejected.reason
    assert _acyclic()


def test_a_stand_in_read_by_many_runs_is_named_in_one_go(pipeline):
    """The reads of a stand-in (a long job's table read while it runs) move with it, however
    many: no statement grows with them beyond what the database takes."""
    _map(pipeline, _event("w", "w", "2026-11-01T10:00:00Z", outputs=["orders"], event_type="START"))
    stand_in = f"dataset:{NS}:orders#run:{_id('w')}"
    readers = [f"run:{uuid.uuid4()}" for _ in range(1200)]
    Edge.objects.bulk_create(
        Edge(
            source=stand_in,
            target=reader,
            relation="input",
            source_base=f"dataset:{NS}:orders",
            target_base=reader,
        )
        for reader in readers
    )
    _map(pipeline, _event("w", "w", "2026-11-01T10:05:00Z", outputs=[("orders", "1")]))
    assert set(_states()) == {"mapped"}
    moved = set(
        Edge.objects.filter(source=f"dataset:{NS}:orders#1", relation="input").values_list(
            "target", flat=True
        )
    )
    assert moved == set(readers)
    assert not Edge.objects.filter(source=stand_in).exists()


def _with_schema(event, *names):
    event["outputs"][0]["facets"]["schema"] = schema_facet(*({"name": n} for n in names))
    return event


@pytest.mark.parametrize("order", ["in time order", "complete first", "one batch", "reader first"])
def test_a_named_version_keeps_the_schema_an_event_gave_it_whatever_arrives_first(pipeline, order):
    """START gives the output's schema, COMPLETE names the version without one."""
    start = _with_schema(
        _event("w", "w", "2026-11-01T10:00:00Z", outputs=["orders"], event_type="START"), "id"
    )
    complete = _event("w", "w", "2026-11-01T10:05:00Z", outputs=[("orders", "1")])
    reader = _event("r", "r", "2026-11-01T11:00:00Z", inputs=[("orders", "1")])
    reader["inputs"][0]["facets"]["schema"] = schema_facet({"name": "id"})
    if order == "one batch":
        _map(pipeline, start, complete)
    else:
        arrival = {
            "in time order": [start, complete],
            "complete first": [complete, start],
            "reader first": [reader, start, complete],
        }[order]
        for event in arrival:
            _map(pipeline, event)
    version = DatasetVersion.objects.get(dataset__name="orders", version="1")
    assert [field["name"] for field in version.schema] == ["id"]
    assert version.produced_by.run_id == _id("w")


def test_a_version_registered_through_the_api_takes_its_writer_but_keeps_its_schema(pipeline, api):
    dataset = Dataset.objects.create(namespace=NS, name="orders")
    response = api(pipeline).post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"version": "1", "schema": [{"name": "amount", "type": "DECIMAL", "description": ""}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    _map(pipeline, _event("w", "w", "2026-11-01T10:05:00Z", outputs=[("orders", "1")]))
    version = DatasetVersion.objects.get(dataset=dataset, version="1")
    assert version.produced_by.run_id == _id("w")
    assert [field["name"] for field in version.schema] == ["amount"]


def test_a_stand_in_of_an_archived_dataset_is_not_renamed(pipeline, api, owner):
    _map(pipeline, _event("w", "w", "2026-11-01T10:00:00Z", outputs=["orders"], event_type="START"))
    Dataset.objects.filter(name="orders").update(archived=True)
    _map(pipeline, _event("w", "w", "2026-11-01T10:05:00Z", outputs=[("orders", "1")]))
    assert _states() == ["mapped", "rejected"]
    assert "archived" in LineageEvent.objects.get(state="rejected").reason
    assert DatasetVersion.objects.filter(version=f"run:{_id('w')}").exists()
