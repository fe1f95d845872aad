"""SVG drawing of a lineage subgraph (pure).

Nodes are laid out by topological generation, left to right; when that would be wider than
`max_width` the layout turns top to bottom and wraps each generation into rows, so a wide
graph stays legible on a screen and at print size. Each node shows its name and, below it,
its namespace (datasets and jobs), version, or — for a run — the job it ran, so an Airflow
DAG run and its task run read differently; the full id is in the node's tooltip. Shapes and
colours tell kinds apart, every text is escaped. Beyond `max_nodes` the nodes farthest from
the focus are elided and counted in a note.

The drawing has its natural size in pixels and a `viewBox`, so a page scales it down to its
width with CSS (`max-width: 100%; height: auto` — a small graph is never blown up) and the
PDF renderer prints it as it is: at `PRINT_WIDTH` or less the 12 px name text prints at 9 pt
and the 10 px detail line at 7.5 pt on an A4 page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import networkx as nx

from lineage import nodes
from lineage.graph import layers

STYLE = {
    "dataset": ("#dbeafe", "#1d4ed8", "rect"),
    "run": ("#f3f4f6", "#4b5563", "ellipse"),
    "job": ("#f3f4f6", "#4b5563", "rect"),
    "model": ("#dcfce7", "#15803d", "hexagon"),
    "datasetField": ("#fef9c3", "#a16207", "rect"),
}
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 46, 60, 16, 20
LAYER_GAP = 34  # between generations when the layout runs top to bottom
NAME_PX, DETAIL_PX = 12, 10
NAME_CHARS, DETAIL_CHARS = 28, 34  # what fits in NODE_W at those sizes (DejaVu Sans)
SCREEN_WIDTH = 900  # wider than this (4+ generations), a screen drawing turns top to bottom
PRINT_WIDTH = 660  # the A4 text column of the model card, in CSS pixels


@dataclass(frozen=True)
class Label:
    name: str
    detail: str = ""


def _clip(text: str, limit: int, *, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if keep_end else text[: limit - 1] + "…"


def label(node: str, run_jobs: dict[str, tuple[str, str]] | None = None) -> Label:
    """What a node reads: a name, and a detail line (namespace, version, or a run's job)."""
    try:
        ref = nodes.parse(node)
    except ValueError:
        return Label(node)
    if ref.kind == "run":
        short = f"run {ref.name[:8]}"
        job = (run_jobs or {}).get(ref.name)
        if job is None:
            return Label(short)
        namespace, name = job
        return Label(name, _clip(f"{short} · {namespace}", DETAIL_CHARS))
    if ref.kind == "model":
        return Label(f"{ref.name} v{ref.version}", "model")
    if ref.kind == "dataset":
        namespace = ref.namespace or ""
        if not ref.version:
            return Label(ref.name or "", _clip(namespace, DETAIL_CHARS, keep_end=True))
        version = f"@{_clip(ref.version, 14)} · "
        return Label(
            ref.name or "",
            version + _clip(namespace, DETAIL_CHARS - len(version), keep_end=True),
        )
    if ref.kind == "datasetField":
        return Label(
            f"{ref.name}.{ref.field}", _clip(ref.namespace or "", DETAIL_CHARS, keep_end=True)
        )
    return Label(ref.name or "", _clip(ref.namespace or "", DETAIL_CHARS, keep_end=True))


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


def _layout(
    columns: list[list[str]], max_width: int | None
) -> tuple[dict[str, tuple[float, float]], float, float, bool]:
    """Positions (top-left corners), width, height, and whether the layout runs downwards."""
    across = MARGIN * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    if max_width is None or across <= max_width or len(columns) <= 1:
        position = {}
        for col, members in enumerate(columns):
            for row, node in enumerate(members):
                position[node] = (
                    MARGIN + col * (NODE_W + GAP_X),
                    MARGIN + row * (NODE_H + GAP_Y),
                )
        tallest = max((len(m) for m in columns), default=1)
        return position, across, MARGIN * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y, False
    per_row = max(1, (max_width - MARGIN * 2 + GAP_X) // (NODE_W + GAP_X))
    widest = min(per_row, max(len(m) for m in columns))
    width = MARGIN * 2 + widest * (NODE_W + GAP_X) - GAP_X
    position, y = {}, MARGIN
    for members in columns:
        for start in range(0, len(members), per_row):
            row = members[start : start + per_row]
            row_width = len(row) * (NODE_W + GAP_X) - GAP_X
            x0 = (width - row_width) / 2
            for index, node in enumerate(row):
                position[node] = (x0 + index * (NODE_W + GAP_X), y)
            y += NODE_H + GAP_Y
        y += LAYER_GAP - GAP_Y
    return position, width, y - LAYER_GAP + MARGIN, True


def _shape(kind: str, x: float, y: float, fill: str, stroke: str, stroke_width: int) -> str:
    _, _, shape = STYLE.get(kind, STYLE["job"])
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"'
    if shape == "ellipse":
        return (
            f'<ellipse cx="{x + NODE_W / 2}" cy="{y + NODE_H / 2}" rx="{NODE_W / 2}" '
            f'ry="{NODE_H / 2}" {paint}/>'
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
        return f'<polygon points="{pts}" {paint}/>'
    return f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" {paint}/>'


def draw(
    graph: nx.DiGraph,
    *,
    focus: str | None = None,
    max_nodes: int = 120,
    run_jobs: dict[str, tuple[str, str]] | None = None,
    max_width: int | None = SCREEN_WIDTH,
) -> str:
    """An SVG document (a string) drawing the graph. `run_jobs` maps a run's uuid to its
    job's (namespace, name); `max_width` turns a wider layout top to bottom (None: never)."""
    graph, elided = _elide(graph, focus, max_nodes)
    columns = layers(graph) if graph.number_of_nodes() else []
    position, width, height, downwards = _layout(columns, max_width)
    height += 24 if elided else 0
    # No inline style (the Content-Security-Policy forbids it): pages scale with CSS.
    size = f'width="{width:g}" height="{height:g}"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {size} viewBox="0 0 {width:g} {height:g}" '
        f'preserveAspectRatio="xMinYMin meet" font-family="DejaVu Sans, sans-serif" '
        f'font-size="{NAME_PX}" role="img" aria-label="Lineage graph" class="lineage-drawing">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#6b7280"/></marker></defs>',
    ]
    for source, target, data in sorted(graph.edges(data=True)):
        (x1, y1), (x2, y2) = position[source], position[target]
        if downwards:
            start, end = (x1 + NODE_W / 2, y1 + NODE_H), (x2 + NODE_W / 2, y2)
        else:
            start, end = (x1 + NODE_W, y1 + NODE_H / 2), (x2, y2 + NODE_H / 2)
        dash = ' stroke-dasharray="4 3"' if data.get("relation") in ("parent", "column") else ""
        parts.append(
            f'<line x1="{start[0]:g}" y1="{start[1]:g}" x2="{end[0]:g}" y2="{end[1]:g}" '
            f'stroke="#9ca3af" marker-end="url(#arrow)"{dash}>'
            f"<title>{escape(str(data.get('relation', '')))}</title></line>"
        )
    for node, (x, y) in sorted(position.items()):
        kind = node.split(":", 1)[0]
        fill, stroke, _ = STYLE.get(kind, STYLE["job"])
        text = label(node, run_jobs)
        centre = x + NODE_W / 2
        name_y = y + (NODE_H / 2 - 2 if text.detail else NODE_H / 2 + 4)
        focus_attr = ' data-focus="true"' if node == focus else ""
        parts.append(
            f'<g class="node {escape(kind)}" data-node="{escape(node)}"{focus_attr}>'
            f"<title>{escape(node)}</title>"
            + _shape(kind, x, y, fill, stroke, 3 if node == focus else 1)
            + f'<text x="{centre:g}" y="{name_y:g}" text-anchor="middle" fill="#111827" '
            f'font-weight="bold">{escape(_clip(text.name, NAME_CHARS))}</text>'
        )
        if text.detail:
            parts.append(
                f'<text x="{centre:g}" y="{y + NODE_H / 2 + 13:g}" text-anchor="middle" '
                f'fill="#4b5563" font-size="{DETAIL_PX}">'
                f"{escape(_clip(text.detail, DETAIL_CHARS))}</text>"
            )
        parts.append("</g>")
    if elided:
        parts.append(
            f'<text x="{MARGIN}" y="{height - 8:g}" fill="#b91c1c">{elided} more nodes '
            "not drawn; narrow the depth to see them.</text>"
        )
    if not position:
        parts.append(
            f'<text x="{MARGIN}" y="{MARGIN + 12}" fill="#6b7280">No lineage recorded.</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
