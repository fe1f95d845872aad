"""SVG drawing of a lineage subgraph (pure): layered left to right by topological generation,
shape and colour by kind, labels escaped. Beyond `max_nodes` the nodes farthest from the focus
are elided and counted in a note, so the drawing stays legible."""

from __future__ import annotations

from html import escape

import networkx as nx

from lineage.graph import layers

STYLE = {
    "dataset": ("#dbeafe", "#1d4ed8", "rect"),
    "run": ("#f3f4f6", "#4b5563", "ellipse"),
    "job": ("#f3f4f6", "#4b5563", "rect"),
    "model": ("#dcfce7", "#15803d", "hexagon"),
    "datasetField": ("#fef9c3", "#a16207", "rect"),
}
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 190, 40, 70, 18, 20


def label(node: str) -> str:
    kind, _, rest = node.partition(":")
    if kind == "run":
        return f"run {rest[:8]}"
    if kind == "model":
        name, _, version = rest.rpartition(":")
        return f"{name} v{version}"
    if kind == "dataset":
        base, _, version = rest.partition("#")
        name = base.rsplit(":", 1)[-1]
        short = version[:12] if version else ""
        return f"{name} @{short}" if short else name
    return rest.rsplit(":", 1)[-1]


def _elide(graph: nx.DiGraph, focus: str | None, max_nodes: int) -> tuple[nx.DiGraph, int]:
    if graph.number_of_nodes() <= max_nodes:
        return graph, 0
    if focus in graph:
        distance = nx.single_source_shortest_path_length(graph.to_undirected(as_view=True), focus)
        ranked = sorted(graph.nodes, key=lambda n: (distance.get(n, 10**9), n))
    else:
        ranked = sorted(graph.nodes)
    keep = ranked[:max_nodes]
    return graph.subgraph(keep).copy(), graph.number_of_nodes() - len(keep)


def _shape(kind: str, x: float, y: float, fill: str, stroke: str) -> str:
    _, _, shape = STYLE.get(kind, STYLE["job"])
    if shape == "ellipse":
        return (
            f'<ellipse cx="{x + NODE_W / 2}" cy="{y + NODE_H / 2}" rx="{NODE_W / 2}" '
            f'ry="{NODE_H / 2}" fill="{fill}" stroke="{stroke}"/>'
        )
    if shape == "hexagon":
        d = 12
        points = [
            (x + d, y),
            (x + NODE_W - d, y),
            (x + NODE_W, y + NODE_H / 2),
            (x + NODE_W - d, y + NODE_H),
            (x + d, y + NODE_H),
            (x, y + NODE_H / 2),
        ]
        pts = " ".join(f"{px},{py}" for px, py in points)
        return f'<polygon points="{pts}" fill="{fill}" stroke="{stroke}"/>'
    return (
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" '
        f'fill="{fill}" stroke="{stroke}"/>'
    )


def draw(graph: nx.DiGraph, *, focus: str | None = None, max_nodes: int = 120) -> str:
    """An SVG document (a string) drawing the graph."""
    graph, elided = _elide(graph, focus, max_nodes)
    columns = layers(graph) if graph.number_of_nodes() else []
    position = {}
    for col, members in enumerate(columns):
        for row, node in enumerate(members):
            position[node] = (MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y))
    tallest = max((len(m) for m in columns), default=1)
    width = MARGIN * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + tallest * (NODE_H + GAP_Y) + (24 if elided else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
        'role="img" aria-label="Lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#6b7280"/></marker></defs>',
    ]
    for source, target, data in sorted(graph.edges(data=True)):
        (x1, y1), (x2, y2) = position[source], position[target]
        dash = ' stroke-dasharray="4 3"' if data.get("relation") in ("parent", "column") else ""
        parts.append(
            f'<line x1="{x1 + NODE_W}" y1="{y1 + NODE_H / 2}" x2="{x2}" y2="{y2 + NODE_H / 2}" '
            f'stroke="#9ca3af" marker-end="url(#arrow)"{dash}>'
            f"<title>{escape(str(data.get('relation', '')))}</title></line>"
        )
    for node, (x, y) in sorted(position.items()):
        kind = node.split(":", 1)[0]
        fill, stroke, _ = STYLE.get(kind, STYLE["job"])
        width_px = 3 if node == focus else 1
        text = label(node)
        if len(text) > 26:
            text = text[:25] + "…"
        parts.append(
            f'<g class="node {escape(kind)}"><title>{escape(node)}</title>'
            + _shape(kind, x, y, fill, stroke).replace("/>", f' stroke-width="{width_px}"/>')
            + f'<text x="{x + NODE_W / 2}" y="{y + NODE_H / 2 + 4}" text-anchor="middle" '
            f'fill="#111827">{escape(text)}</text></g>'
        )
    if elided:
        parts.append(
            f'<text x="{MARGIN}" y="{height - 8}" fill="#b91c1c">{elided} more nodes '
            "not drawn; narrow the depth to see them.</text>"
        )
    if not position:
        parts.append(
            f'<text x="{MARGIN}" y="{MARGIN + 12}" fill="#6b7280">No lineage recorded.</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
