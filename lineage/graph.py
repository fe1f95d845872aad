"""Graph logic with networkx (pure: no database): cycle checks, layering, export."""

from __future__ import annotations

import io
from collections.abc import Iterable

import networkx as nx

EdgeRow = tuple[str, str, str]  # (source, target, relation)


def find_cycle(
    new_edges: Iterable[tuple[str, str]], reach: dict[str, set[str]]
) -> list[str] | None:
    """A cycle that adding `new_edges` would close, as a node path, or None.

    `reach[x]` holds the touched nodes (endpoints of new edges) that x already reaches in the
    stored graph. Any new cycle uses at least one new edge, and the stretches between new edges
    are stored paths, so a graph of new edges plus those reachability shortcuts has a cycle
    exactly when the whole graph would.
    """
    successors: dict[str, list[str]] = {}
    for source, target in new_edges:
        successors.setdefault(source, []).append(target)
    for node, reached in reach.items():
        for other in sorted(reached):
            if other != node:
                successors.setdefault(node, []).append(other)
    # Depth-first search without recursion (a plain walk: a handful of nodes per event, where
    # building a networkx graph cost more than the search).
    done: set[str] = set()
    for root in successors:
        if root in done:
            continue
        path, on_path = [root], {root: 0}
        stack = [iter(successors.get(root, ()))]
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                finished = path.pop()
                del on_path[finished]
                done.add(finished)
                continue
            if node in on_path:
                return path[on_path[node] :] + [node]
            if node in done:
                continue
            on_path[node] = len(path)
            path.append(node)
            stack.append(iter(successors.get(node, ())))
    return None


def digraph(edges: Iterable[EdgeRow], nodes: Iterable[str] = ()) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for source, target, relation in edges:
        graph.add_edge(source, target, relation=relation)
    for node in graph.nodes:
        graph.nodes[node]["kind"] = node.split(":", 1)[0]
    return graph


def layers(graph: nx.DiGraph) -> list[list[str]]:
    """Nodes in left-to-right layers by topological generation (sorted within a layer)."""
    if nx.is_directed_acyclic_graph(graph):
        return [sorted(generation) for generation in nx.topological_generations(graph)]
    # Column-level graphs may hold name-level loops; fall back to a condensation.
    condensed = nx.condensation(graph)
    out = []
    for generation in nx.topological_generations(condensed):
        members = []
        for component in generation:
            members.extend(condensed.nodes[component]["members"])
        out.append(sorted(members))
    return out


def node_link(graph: nx.DiGraph) -> dict:
    return nx.node_link_data(graph, edges="edges")


def graphml(graph: nx.DiGraph) -> str:
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")
