"""Pure helpers of ingestion: the facet depth check and the event hash."""

import random

import networkx as nx
import pytest

from core.canonical import sha256_hex
from lineage.graph import find_cycle
from lineage.openlineage import _deeper_than
from lineage.services import _strip_nulls, event_hash


def _depth(value, level=0):
    """The definition: the deepest level of any value (a container's items one level down)."""
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _random_value(rng, level=0):
    kind = rng.random()
    if level > 7 or kind < 0.3:
        return rng.choice([1, "x", None, 0.5, True, {}, []])
    if kind < 0.65:
        return {f"k{i}": _random_value(rng, level + 1) for i in range(rng.randint(0, 3))}
    return [_random_value(rng, level + 1) for _ in range(rng.randint(0, 3))]


def test_deeper_than_agrees_with_the_definition():
    rng = random.Random(7)
    for _ in range(2000):
        value = _random_value(rng)
        for limit in range(0, 9):
            assert _deeper_than(value, limit) == (_depth(value) > limit), (value, limit)


def test_deeper_than_needs_no_recursion():
    value: dict = {}
    node = value
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    assert _deeper_than(value, 32)


@pytest.mark.parametrize(
    "payload",
    [
        {"a": 1, "b": [1, 2, {"c": "x"}]},
        {"a": None, "b": [None, {"c": None, "d": 1}]},
        {"text": "null", "nullable": "a null value", "n": {"null": 1}},
        {"text": "null", "gone": None},
    ],
)
def test_event_hash_is_the_canonical_hash_without_nulls(payload):
    assert event_hash(payload) == sha256_hex(_strip_nulls(payload))


def test_nulls_do_not_change_the_event_hash():
    assert event_hash({"a": 1, "b": None, "c": [{"d": None}]}) == event_hash({"a": 1, "c": [{}]})


def test_find_cycle_agrees_with_networkx_and_returns_a_real_cycle():
    rng = random.Random(11)
    for _ in range(3000):
        nodes = [f"n{i}" for i in range(rng.randint(1, 7))]
        edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(rng.randint(0, 9))]
        reach = {
            n: {rng.choice(nodes) for _ in range(rng.randint(0, 2))}
            for n in nodes
            if rng.random() < 0.3
        }
        graph = nx.DiGraph(edges)
        graph.add_edges_from((n, o) for n, others in reach.items() for o in others if o != n)
        path = find_cycle(edges, reach)
        assert (path is not None) == (not nx.is_directed_acyclic_graph(graph)), (edges, reach)
        if path is not None:
            assert path[0] == path[-1] and len(path) >= 2
            assert all(graph.has_edge(a, b) for a, b in zip(path, path[1:], strict=False))


def test_events_parsed_together_read_each_schema_once_and_never_confuse_two():
    from lineage.openlineage import STORED, parse_event

    def event(fields):
        return {
            "eventTime": "2026-11-01T10:00:00Z",
            "producer": "p",
            "run": {"runId": "0b0ed1b5-8ad6-4c38-9a3a-2bbd6c5b1e4d"},
            "job": {"namespace": "n", "name": "j"},
            "inputs": [
                {"namespace": "s3://a", "name": "t", "facets": {"schema": {"fields": fields}}}
            ],
        }

    first = [{"name": "a", "type": "INT"}, {"name": "b", "type": "INT"}]
    same = [{"name": "a", "type": "INT"}, {"name": "b", "type": "INT"}]
    # same length, same first and last names: only the type differs
    other = [{"name": "a", "type": "STRING"}, {"name": "b", "type": "INT"}]
    schemas: dict = {}
    read = [parse_event(event(f), STORED, schemas).inputs[0].fields for f in (first, same, other)]
    alone = [parse_event(event(f), STORED).inputs[0].fields for f in (first, same, other)]
    assert read == alone
    assert read[0] is read[1]  # read once
    assert read[2] == (("a", "STRING", ""), ("b", "INT", ""))


def test_a_run_changed_by_two_attempts_is_audited_from_its_first_value_to_its_last():
    from lineage.services import _merge
    from registry.ingest import Ledger

    ledger = Ledger()
    _merge(ledger, Ledger(runs_created=["r2"], runs_updated={"r1": {"state": ["OTHER", "START"]}}))
    _merge(
        ledger,
        Ledger(
            runs_updated={"r1": {"state": ["START", "COMPLETE"], "facets": ["b", "a"]}},
            versions_created=["s3://a:t#v1"],
        ),
    )
    _merge(ledger, Ledger(runs_updated={"r1": {"facets": ["c", "a"]}}))
    assert ledger.changes() == {
        "runs_created": ["r2"],
        "runs_updated": {"r1": {"state": ["OTHER", "COMPLETE"], "facets": ["a", "b", "c"]}},
        "dataset_versions_created": ["s3://a:t#v1"],
    }
