"""SVG drawing of a lineage subgraph (pure).

Nodes are laid out by topological generation, left to right; when that would be wider than
`max_width` the layout turns top to bottom and wraps each generation into rows, so a wide
graph stays legible on a screen and at print size. No edge runs under a box: one that skips
a generation runs below the boxes of those it passes (left to right) or down a lane beside the
rows (top to bottom), in lanes of their own (top to bottom, as many as the width has room
for, eight at least; beyond, they share). Each node shows its name and, below it, its
namespace (datasets and jobs), version, or — for a run — the job it ran, so an Airflow DAG
run and its task run read differently; the full id is in the node's tooltip. Shapes and
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
LANE = 10  # between the lanes of edges that pass other boxes
MAX_LANES = 8  # lanes right of a downward layout at least; more if the width has room
ARROW_LENGTH, ARROW_WIDTH = 7, 7
NAME_PX, DETAIL_PX = 12, 10
NAME_CHARS, DETAIL_CHARS = 23, 32  # what fits in NODE_W at those sizes (DejaVu Sans)
SCREEN_WIDTH = 900  # wider than this (4+ generations), a screen drawing turns top to bottom
PRINT_WIDTH = 660  # the A4 text column of the model card, in CSS pixels


@dataclass(frozen=True)
class Label:
    name: str
    detail: str = ""


def _clip(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: its beginning and its end around an ellipsis
    (names that differ only at the end, as `…_v1` and `…_v2`, or at the start, as `gs://`
    and `s3://`, still read apart; the full id is in the node's tooltip)."""
    if len(text) <= limit:
        return text
    tail = (limit - 1) // 2
    return text[: limit - 1 - tail] + "…" + text[-tail:]


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
            return Label(ref.name or "", _clip(namespace, DETAIL_CHARS))
        version = f"@{_clip(ref.version, 14)} · "
        return Label(
            ref.name or "",
            version + _clip(namespace, DETAIL_CHARS - len(version)),
        )
    if ref.kind == "datasetField":
        return Label(f"{ref.name}.{ref.field}", _clip(ref.namespace or "", DETAIL_CHARS))
    return Label(ref.name or "", _clip(ref.namespace or "", DETAIL_CHARS))


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


Point = tuple[float, float]


@dataclass
class Layout:
    """Where each node's box is (its top-left corner), the drawing's size, whether it runs
    downwards, and each edge's route: the points of a line that meets no box but its ends'."""

    position: dict[str, Point]
    width: float
    height: float
    downwards: bool
    routes: dict[tuple[str, str], list[Point]]


def _layout(graph: nx.DiGraph, columns: list[list[str]], max_width: int | None) -> Layout:
    across = _across(graph, columns)
    if max_width is None or across.width <= max_width or len(columns) <= 1:
        return across
    per_row = max(1, (max_width - MARGIN * 2 + GAP_X) // (NODE_W + GAP_X))
    while True:  # narrower rows until the lanes beside them fit too (one node a row at least)
        layout = _downwards(graph, columns, per_row, max_width)
        if layout.width <= max_width or per_row == 1:
            return layout
        per_row -= 1


def _across(graph: nx.DiGraph, columns: list[list[str]]) -> Layout:
    """Generations left to right. An edge to the next generation runs straight through the gap
    between them; a longer one runs below the boxes of each generation it passes, in a lane of
    its own there (the generation's height grows by a lane)."""
    position, column_of = {}, {}
    for col, members in enumerate(columns):
        for row, node in enumerate(members):
            position[node] = (MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y))
            column_of[node] = col
    lanes = [0] * len(columns)
    routes, backwards = {}, []
    for source, target in sorted(graph.edges):
        (x1, y1), (x2, y2) = position[source], position[target]
        if column_of[target] <= column_of[source]:
            backwards.append((source, target))
            continue
        points = [(x1 + NODE_W, y1 + NODE_H / 2)]
        for col in range(column_of[source] + 1, column_of[target]):
            y = MARGIN + len(columns[col]) * (NODE_H + GAP_Y) + lanes[col] * LANE + LANE / 2
            lanes[col] += 1
            left = MARGIN + col * (NODE_W + GAP_X)
            points += [(left, y), (left + NODE_W, y)]
        routes[(source, target)] = [*points, (x2, y2 + NODE_H / 2)]
    width = MARGIN * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    bottom = MARGIN + max(
        (
            len(m) * (NODE_H + GAP_Y) + lanes[c] * LANE
            if lanes[c]
            else len(m) * (NODE_H + GAP_Y) - GAP_Y
            for c, m in enumerate(columns)
        ),
        default=NODE_H,
    )
    # A loop of a column-level graph (its generations are those of the loops' condensation)
    # runs back below everything: out of its source's lower half into the gap after its
    # generation, along a lane of its own, up the gap before its target's and into its lower
    # half (the middles are for the edges running forward), beside the other loops.
    for index, (source, target) in enumerate(backwards):
        (x1, y1), (x2, y2) = position[source], position[target]
        y = bottom + GAP_Y / 2 + index * LANE
        low = NODE_H * (0.62 + index % 3 * 0.1)
        after, before = x1 + NODE_W + 10 + index % 4 * 5, x2 - 4 - index % 3 * 3
        routes[(source, target)] = [
            (x1 + NODE_W, y1 + low),
            (after, y1 + low),
            (after, y),
            (before, y),
            (before, y2 + low),
            (x2, y2 + low),
        ]
    if backwards:
        bottom += GAP_Y / 2 + len(backwards) * LANE
        if any(column_of[source] == len(columns) - 1 for source, _ in backwards):
            width += GAP_X / 2
    return Layout(position, width, bottom + MARGIN, False, routes)


def _downwards(
    graph: nx.DiGraph, columns: list[list[str]], per_row: int, max_width: int | None = None
) -> Layout:
    """Generations top to bottom, each wrapped into rows of `per_row`. An edge to the next row
    runs straight down the band between the rows; any other leaves its box into the band
    below, runs down a lane right of the rows and enters the band above its target (beside
    the centres, which edges between adjacent rows use). Each such edge has a lane of its
    own while `max_width` has room for them (MAX_LANES at least); beyond, they share."""
    rows = [m[start : start + per_row] for m in columns for start in range(0, len(m), per_row)]
    last_of_generation = set()
    count = 0
    for members in columns:
        count += -(-len(members) // per_row)
        last_of_generation.add(count - 1)
    widest = min(per_row, max(len(m) for m in columns))
    content = MARGIN * 2 + widest * (NODE_W + GAP_X) - GAP_X
    position, row_of, tops, y = {}, {}, [], MARGIN
    for index, row in enumerate(rows):
        row_width = len(row) * (NODE_W + GAP_X) - GAP_X
        x0 = (content - row_width) / 2
        for offset, node in enumerate(row):
            position[node] = (x0 + offset * (NODE_W + GAP_X), y)
            row_of[node] = index
        tops.append(y)
        y += NODE_H + (LAYER_GAP if index in last_of_generation else GAP_Y)
    height = y - LAYER_GAP + MARGIN
    room = int((max_width - content - MARGIN / 2) // LANE) if max_width else 0
    most_lanes = max(MAX_LANES, room)

    def band_below(row: int) -> tuple[float, float]:
        return tops[row] + NODE_H, tops[row + 1] if row + 1 < len(tops) else height

    def band_above(row: int) -> tuple[float, float]:
        return (tops[row - 1] + NODE_H if row else 0.0), tops[row]

    def attach(node: str, taken: dict[str, int]) -> float:
        """Where the next lane edge leaves or enters the node: right of its centre, a few
        pixels apart, wider than an arrowhead (the centre is for the edges between adjacent
        rows)."""
        index = taken[node] = taken.get(node, -1) + 1
        return position[node][0] + NODE_W / 2 + 8 + index % 4 * (ARROW_WIDTH + 1)

    routes, lanes, leaving, entering = {}, 0, {}, {}
    for source, target in sorted(graph.edges):
        (x1, y1), (x2, y2) = position[source], position[target]
        if row_of[target] == row_of[source] + 1:
            routes[(source, target)] = [(x1 + NODE_W / 2, y1 + NODE_H), (x2 + NODE_W / 2, y2)]
            continue
        # its own lane (up to MAX_LANES), and its own levels in the bands it crosses: leaving
        # in the upper part of the band below its row, entering in the lower part of the band
        # above its target's
        level = (1 + lanes % 3) / 8
        lane = content - MARGIN / 2 + LANE * (1 + lanes % most_lanes)
        lanes += 1
        (top, bottom), (over, under) = band_below(row_of[source]), band_above(row_of[target])
        out = top + (bottom - top) * level
        into = under - (under - over) * level
        x_out, x_in = attach(source, leaving), attach(target, entering)
        routes[(source, target)] = [
            (x_out, y1 + NODE_H),
            (x_out, out),
            (lane, out),
            (lane, into),
            (x_in, into),
            (x_in, y2),
        ]
    width = content + (LANE * min(lanes, most_lanes) + MARGIN / 2 if lanes else 0)
    return Layout(position, width, height, True, routes)


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


def _arrowhead(route: list[Point]) -> str:
    """The points of a triangle whose tip is the route's end, pointing along its last stretch.
    Drawn as a shape of its own rather than an SVG marker: the PDF renderer turns markers on
    horizontal and vertical lines a quarter turn off their direction."""
    (x0, y0), (x1, y1) = route[-2], route[-1]
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ux * ARROW_LENGTH, y1 - uy * ARROW_LENGTH
    half = ARROW_WIDTH / 2
    corners = [(x1, y1), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
    return " ".join(f"{round(x, 2):g},{round(y, 2):g}" for x, y in corners)


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
    layout = _layout(graph, columns, max_width)
    position, width = layout.position, layout.width
    height = layout.height + (24 if elided else 0)
    # No inline style (the Content-Security-Policy forbids it): pages scale with CSS.
    size = f'width="{width:g}" height="{height:g}"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {size} viewBox="0 0 {width:g} {height:g}" '
        f'preserveAspectRatio="xMinYMin meet" font-family="DejaVu Sans, sans-serif" '
        f'font-size="{NAME_PX}" role="img" aria-label="Lineage graph" class="lineage-drawing">',
    ]
    for source, target, data in sorted(graph.edges(data=True)):
        route = layout.routes[(source, target)]
        points = " ".join(f"{x:g},{y:g}" for x, y in route)
        dash = ' stroke-dasharray="4 3"' if data.get("relation") in ("parent", "column") else ""
        ends = f'data-source="{escape(source)}" data-target="{escape(target)}"'
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="#9ca3af"{dash} {ends}>'
            f"<title>{escape(str(data.get('relation', '')))}</title></polyline>"
            f'<polygon class="arrowhead" points="{_arrowhead(route)}" fill="#6b7280" {ends}/>'
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
