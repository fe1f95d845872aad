"""Marquez's response shapes for the graph (pure: no database; the reads are in selectors).

A node reads `{"id", "type", "data", "inEdges", "outEdges"}`, nodes sorted by id and edges
sorted. `GET /lineage` of a dataset field collapses the versioned graph: versions into their
dataset, runs into their job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lineage import nodes

NODE_TYPES = {
    "dataset": "DATASET",
    "job": "JOB",
    "model": "MODEL",
    "run": "RUN",
    "datasetField": "DATASET_FIELD",
}

Links = dict[str, dict[str, set]]  # node id → {"in": origins, "out": destinations}


def graph(found: Links, datasets: Mapping[str, dict]) -> list[dict]:
    """Marquez's nodes for `found`; `datasets` holds the data of the dataset nodes known to
    the catalogue (see `dataset_data`), jobs list their inputs and outputs."""
    out = []
    for node_id in sorted(found):
        links = found[node_id]
        if node_id.startswith("job:"):
            data = job_data(node_id, links)
        else:
            data = datasets.get(node_id) or plain_data(node_id)
        out.append(
            {
                "id": node_id,
                "type": NODE_TYPES[node_id.split(":", 1)[0]],
                "data": data,
                "inEdges": [{"origin": o, "destination": node_id} for o in sorted(links["in"])],
                "outEdges": [{"origin": node_id, "destination": d} for d in sorted(links["out"])],
            }
        )
    return out


def collapsed_graph(sub, ref, run_jobs: Mapping[str, tuple[str, str]], datasets) -> list[dict]:
    """The versioned subgraph `sub` around `ref`, versions collapsed into their dataset and
    runs into their job (`run_jobs`: run uuid → (namespace, name)), in Marquez's node shape.
    Unlike `graph`, every node keeps its plain data (a job here lists no inputs)."""

    def collapse(node: str) -> str:
        if node.startswith("run:"):
            job = run_jobs.get(node.split(":", 1)[1])
            return nodes.job_id(*job) if job else node
        return nodes.base_of(node)

    collapsed: Links = {}
    for node in sub.nodes:
        collapsed.setdefault(collapse(node), {"in": set(), "out": set()})
    if ref.kind in ("dataset", "job", "datasetField"):
        start = nodes.dataset_id(ref.namespace, ref.name) if ref.kind == "dataset" else ref.id
        collapsed.setdefault(start, {"in": set(), "out": set()})
    for source, target in sub.edges:
        a, b = collapse(source), collapse(target)
        # a field computed from itself (`SET amount = amount * 1.2`) keeps its edge; what
        # collapsing alone joins (two versions of one dataset) does not
        if a != b or source == target:
            collapsed[a]["out"].add(b)
            collapsed[b]["in"].add(a)
    return [
        {
            "id": node_id,
            "type": NODE_TYPES[node_id.split(":", 1)[0]],
            "data": datasets.get(node_id) or plain_data(node_id),
            "inEdges": [
                {"origin": o, "destination": node_id} for o in sorted(collapsed[node_id]["in"])
            ],
            "outEdges": [
                {"origin": node_id, "destination": d} for d in sorted(collapsed[node_id]["out"])
            ],
        }
        for node_id in sorted(collapsed)
    ]


def dataset_nodes(node_ids: Iterable[str]) -> list[str]:
    """The dataset nodes among `node_ids` (those `dataset_data` describes)."""
    return [node for node in node_ids if node.startswith("dataset:")]


def job_data(node_id: str, links: dict[str, set]) -> dict:
    ref = nodes.parse(node_id)

    def ids(found):
        return [
            {"namespace": r.namespace, "name": r.name}
            for r in (
                nodes.parse(n, versioned=False) for n in sorted(found) if n.startswith("dataset:")
            )
        ]

    return {
        "id": {"namespace": ref.namespace, "name": ref.name},
        "type": "BATCH",
        "name": ref.name,
        "simpleName": ref.name.rsplit(".", 1)[-1],
        "namespace": ref.namespace,
        "inputs": ids(links["in"]),
        "outputs": ids(links["out"]),
    }


def plain_data(node_id: str) -> dict:
    try:  # Marquez's dataset nodes are datasets, never versions
        ref = nodes.parse(node_id, versioned=False)
    except ValueError:
        return {"id": node_id}
    data: dict[str, Any] = {"namespace": ref.namespace, "name": ref.name}
    if ref.kind == "model":
        data["version"] = int(ref.version)
    if ref.kind == "datasetField":
        data = {"namespace": ref.namespace, "dataset": ref.name, "field": ref.field}
    return data


def dataset_data(datasets: Mapping[str, Any]) -> dict[str, dict]:
    """Marquez's dataset data, by node id, of catalogued datasets (node id → a Dataset with
    its features prefetched)."""
    return {
        node_id: {
            "id": {"namespace": dataset.namespace, "name": dataset.name},
            "type": "DB_TABLE",
            "name": dataset.name,
            "physicalName": dataset.name,
            "namespace": dataset.namespace,
            "description": dataset.description or None,
            "createdAt": dataset.created_at.isoformat(),
            "fields": [
                {
                    "name": f.name,
                    "type": f.dtype or None,
                    "tags": [],
                    "description": f.description or None,
                }
                for f in dataset.features.all()
            ],
            "tags": ["PII"] if dataset.contains_pii else [],
        }
        for node_id, dataset in datasets.items()
    }
