"""Lineage drawings people can read: they fit their container, name what each node is (with its
namespace, a run by its job), keep the full id in a tooltip, and stay legible in print."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import drawing, graph
from registry.models import ModelVersion
from tests.lineage.conftest import PRODUCER, dataset, run_event

SVG = "{http://www.w3.org/2000/svg}"


def _chain(length: int) -> graph.nx.DiGraph:
    """dataset → run → dataset → run … → model: `length` generations, one node each."""
    nodes = []
    for index in range(length - 1):
        if index % 2:
            nodes.append(f"run:{uuid.UUID(int=index)}")
        else:
            nodes.append(f"dataset:postgres://warehouse:5432:public.step_{index}")
    nodes.append("model:churn:3")
    edges = [(a, b, "input") for a, b in zip(nodes, nodes[1:], strict=False)]
    return graph.digraph(edges)


def _texts(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f".//{SVG}text")


def _font_px(element: ET.Element, root: ET.Element) -> float:
    return float(element.get("font-size") or root.get("font-size"))


def test_a_screen_drawing_has_its_natural_size_and_a_viewbox_to_scale_by():
    svg = drawing.draw(_chain(5), focus="model:churn:3")
    root = ET.fromstring(svg)
    _, _, width, height = (float(n) for n in root.get("viewBox").split())
    assert (float(root.get("width")), float(root.get("height"))) == (width, height)
    assert root.get("style") is None  # the Content-Security-Policy allows no inline style


def test_admin_pages_scale_drawings_down_to_their_width():
    from pathlib import Path

    for css in ("lineage/static/lineage/drawing.css", "approvals/static/approvals/evidence.css"):
        rules = Path(__file__).resolve().parents[2].joinpath(css).read_text()
        assert "max-width: 100%" in rules and "height: auto" in rules, css


def test_a_wide_graph_turns_top_to_bottom_instead_of_running_off_the_screen():
    svg = drawing.draw(_chain(12), focus="model:churn:3")
    width = float(ET.fromstring(svg).get("viewBox").split()[2])
    assert width <= drawing.SCREEN_WIDTH
    narrow = drawing.draw(_chain(3), focus="model:churn:3")
    assert float(ET.fromstring(narrow).get("viewBox").split()[2]) < width or width < 1000


def test_full_names_stay_in_the_tooltips_when_the_label_is_shortened():
    long_name = "public.customer_events_enriched_with_marketing_consent_2026"
    node = f"dataset:postgres://warehouse:5432:{long_name}"
    svg = drawing.draw(graph.digraph([(node, "model:churn:1", "trained_on")]))
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("data-node") == node)
    assert group.find(f"{SVG}title").text == node
    shown = group.findall(f"{SVG}text")[0].text
    head, tail = shown.split("…")
    assert long_name.startswith(head) and long_name.endswith(tail) and len(shown) <= 28


def test_long_names_differing_only_at_either_end_are_shortened_apart():
    table = "acme-analytics-prod.customer_features.transactions_enriched_daily_aggregates"
    lake = "warehouse/customer_transactions/partitioned_by_date/year=2026/month=11"
    edges = [
        (f"dataset:bigquery:{table}_v1", "model:churn:1", "trained_on"),
        (f"dataset:bigquery:{table}_v2", "model:churn:1", "trained_on"),
        (
            f"dataset:gs://acme-data-lake-production-europe-west1:{lake}",
            "model:churn:1",
            "trained_on",
        ),
        (
            f"dataset:s3://acme-data-lake-production-europe-west1:{lake}",
            "model:churn:1",
            "trained_on",
        ),
    ]
    texts = [t.text for t in _texts(drawing.draw(graph.digraph(edges)))]
    names = [t for t in texts if t.startswith("acme-analyt")]
    assert len(names) == 2 and names[0] != names[1]
    assert {n[-3:] for n in names} == {"_v1", "_v2"}
    namespaces = [t for t in texts if t.endswith("europe-west1")]
    assert {n[:5] for n in namespaces} == {"gs://", "s3://"}


def test_namespaces_are_shown_under_the_names():
    node = "dataset:postgres://warehouse:5432:public.loans"
    job = "job:airflow-prod:nightly_etl"
    svg = drawing.draw(graph.digraph([(node, job, "input")]))
    texts = [t.text for t in _texts(svg)]
    assert "public.loans" in texts and "postgres://warehouse:5432" in texts
    assert "nightly_etl" in texts and "airflow-prod" in texts


def test_runs_are_labelled_by_their_job_so_a_dag_run_and_its_task_run_differ():
    dag_run, task_run = uuid.UUID(int=1), uuid.UUID(int=2)
    edges = [(f"run:{dag_run}", f"run:{task_run}", "parent")]
    jobs = {str(dag_run): ("airflow", "etl_dag"), str(task_run): ("airflow", "etl_dag.extract")}
    svg = drawing.draw(graph.digraph(edges), run_jobs=jobs)
    names = [t.text for t in _texts(svg) if t.get("font-weight") == "bold"]
    assert sorted(names) == ["etl_dag", "etl_dag.extract"]
    without = drawing.draw(graph.digraph(edges))
    assert len({t.text for t in _texts(without)}) == 1  # what the job names fix: "run 00000000"


def test_in_print_a_wide_graph_wraps_and_its_text_is_at_least_7_points():
    svg = drawing.draw(_chain(14), focus="model:churn:3", max_width=drawing.PRINT_WIDTH)
    root = ET.fromstring(svg)
    width = float(root.get("width"))
    assert width == float(root.get("viewBox").split()[2]) <= drawing.PRINT_WIDTH
    # The card's text column (A4 less 16 mm margins, in CSS px at 96 per inch) holds the
    # drawing at its own size or larger, so a px of the drawing prints at 0.75 pt or more.
    column_px = (210 - 16 - 16) / 25.4 * 96
    scale = min(1.0, column_px / width)
    for text in _texts(svg):
        assert _font_px(text, root) * 0.75 * scale >= 7, text.text


def test_the_model_card_template_keeps_the_margins_the_print_width_assumes():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    template = root / "modelcards/templates/modelcards/model_card.html"
    margin = re.search(r"@page \{\s*size: A4;\s*margin: ([^;]+);", template.read_text())
    right, left = (float(v.rstrip("m")) for v in margin.group(1).split()[1::2])
    assert (210 - right - left) / 25.4 * 96 >= drawing.PRINT_WIDTH


@pytest.mark.django_db
def test_drawings_from_the_database_label_airflow_runs_by_their_task(client, post, superuser):
    dag_run, task_run = uuid.uuid4(), uuid.uuid4()
    post(run_event(run_id=dag_run, job="etl_dag", event_type="START"))
    parent = {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json",
        "run": {"runId": str(dag_run)},
        "job": {"namespace": "airflow", "name": "etl_dag"},
    }
    facet = {"name": "churn", "sha256": "f" * 64}
    post(
        run_event(
            run_id=task_run,
            job="etl_dag.train",
            run_facets={"parent": parent},
            inputs=[("s3://lake", "features")],
            outputs=[dataset("s3://models", "churn", modelgov_model=facet)],
        )
    )
    client.force_login(superuser)
    version = ModelVersion.objects.get()
    html = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    svg = re.search(r'<svg[^>]*class="lineage-drawing".*?</svg>', html, re.S).group(0)
    names = [t.text for t in _texts(svg) if t.get("font-weight") == "bold"]
    assert "etl_dag.train" in names
    assert f"run {str(dag_run)[:8]}" not in names and f"run {str(task_run)[:8]}" not in names


@pytest.mark.django_db
def test_the_version_page_links_to_the_drawing_at_full_size(client, post, superuser, outsider):
    facet = {"name": "churn", "sha256": "f" * 64}
    post(
        run_event(
            inputs=[("s3://x", "raw")],
            outputs=[dataset("s3://m", "churn", **{"modelgov_model": facet})],
        )
    )
    version = ModelVersion.objects.get()
    client.force_login(superuser)
    page = f"/admin/registry/modelversion/{version.pk}/change/"
    html = client.get(page).content.decode()
    link = f"/admin/registry/modelversion/{version.pk}/lineage.svg"
    assert f'href="{link}"' in html
    response = client.get(link)
    assert response["Content-Type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.get("width") != "100%" and float(root.get("width")) > 0
    client.force_login(outsider)
    assert client.get(link).status_code == 404  # hidden, as if it did not exist


def _boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """Each node's box (left, top, right, bottom), from its shape."""
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        shape = next(iter(group.findall(f"{SVG}rect") + group.findall(f"{SVG}ellipse")), None)
        if shape is None:
            shape = group.find(f"{SVG}polygon")
            xs, ys = zip(
                *(map(float, p.split(",")) for p in shape.get("points").split()), strict=True
            )
            boxes[group.get("data-node")] = (min(xs), min(ys), max(xs), max(ys))
        elif shape.tag == f"{SVG}rect":
            x, y, w, h = (float(shape.get(a)) for a in ("x", "y", "width", "height"))
            boxes[group.get("data-node")] = (x, y, x + w, y + h)
        else:
            cx, cy, rx, ry = (float(shape.get(a)) for a in ("cx", "cy", "rx", "ry"))
            boxes[group.get("data-node")] = (cx - rx, cy - ry, cx + rx, cy + ry)
    return boxes


def _crosses(a, b, box, inset=0.5) -> bool:
    """Whether the segment a→b enters the inside of the box (Liang–Barsky clipping)."""
    left, top, right, bottom = box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for p, q in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _on_edge_of(point, box) -> bool:
    x, y = point
    left, top, right, bottom = box
    inside = left - 0.01 <= x <= right + 0.01 and top - 0.01 <= y <= bottom + 0.01
    return inside and min(abs(x - left), abs(x - right), abs(y - top), abs(y - bottom)) < 0.01


@st.composite
def _graphs(draw):
    """Up to 16 nodes of every kind; edges mostly forward, some back (a column-level graph's
    loops), so that generations are skipped, wrapped and looped."""
    kinds = [
        "dataset:s3://lake:t{}",
        f"run:{uuid.UUID(int=0)}".replace("0000", "{:04d}", 1),
        "model:m{}:1",
        "job:airflow:j{}",
    ]
    count = draw(st.integers(2, 16))
    names = [draw(st.sampled_from(kinds)).format(index) for index in range(count)]
    pairs = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))
    edges = draw(st.lists(pairs, max_size=30))
    loops = draw(st.booleans())
    rows = [(names[a], names[b], "input") for a, b in edges if a != b and (a < b or loops)]
    return graph.digraph(rows, nodes=names)


def _overlap(first, second) -> float:
    """How long two segments run on one line together (0 when they do not)."""
    (ax, ay), (bx, by) = first
    (cx, cy), (dx, dy) = second
    ux, uy = bx - ax, by - ay
    length = (ux * ux + uy * uy) ** 0.5
    if length == 0:
        return 0.0
    for px, py in ((cx, cy), (dx, dy)):  # both ends of the second on the first's line
        if abs(ux * (py - ay) - uy * (px - ax)) / length > 0.01:
            return 0.0
    along = sorted(((px - ax) * ux + (py - ay) * uy) / length for px, py in ((cx, cy), (dx, dy)))
    return max(0.0, min(length, along[1]) - max(0.0, along[0]))


@settings(max_examples=300, deadline=None)
@given(
    _graphs(),
    st.one_of(st.none(), st.integers(250, 1100)),
    st.integers(3, 20),
)
def test_no_edge_runs_under_a_box_and_each_meets_its_own_two(lineage, max_width, max_nodes):
    """Every edge is drawn as a line that enters no node's box, starts on its source's box and
    ends on its target's, inside the drawing, in either layout, with generations skipped,
    wrapped or looped and nodes elided; no two edges run along one line while at most three
    need lanes; and a drawing given a width keeps to it."""
    root = ET.fromstring(drawing.draw(lineage, max_width=max_width, max_nodes=max_nodes))
    width, height = float(root.get("width")), float(root.get("height"))
    boxes = _boxes(root)
    assert len(boxes) == min(max_nodes, lineage.number_of_nodes())
    lines = root.findall(f"{SVG}polyline")
    drawn = [(a, b) for a, b in lineage.edges if a in boxes and b in boxes]
    assert sorted((line.get("data-source"), line.get("data-target")) for line in lines) == sorted(
        drawn
    )
    routes = {}
    for line in lines:
        points = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        source, target = line.get("data-source"), line.get("data-target")
        routes[(source, target)] = points
        assert _on_edge_of(points[0], boxes[source]) and _on_edge_of(points[-1], boxes[target])
        assert all(0 <= x <= width and 0 <= y <= height for x, y in points), points
        for a, b in zip(points, points[1:], strict=False):
            crossed = [node for node, box in boxes.items() if _crosses(a, b, box)]
            assert not crossed, (source, target, a, b, crossed)
    if sum(len(points) > 2 for points in routes.values()) <= 3:
        segments = [
            (edge, segment)
            for edge, points in routes.items()
            for segment in zip(points, points[1:], strict=False)
        ]
        for index, (edge, segment) in enumerate(segments):
            for other, other_segment in segments[index + 1 :]:
                if other != edge:
                    assert _overlap(segment, other_segment) < 1, (edge, other, segment)
    if max_width is not None:  # one node a row and its lanes, at the narrowest
        narrowest = 2 * drawing.MARGIN + drawing.NODE_W + drawing.MAX_LANES * drawing.LANE
        assert width <= max(max_width, narrowest + drawing.MARGIN / 2)


@settings(max_examples=100, deadline=None)
@given(_graphs(), st.one_of(st.none(), st.integers(250, 1100)))
def test_each_edge_ends_in_an_arrowhead_pointing_along_its_last_stretch(lineage, max_width):
    """Arrowheads are triangles of their own, not SVG markers, which the PDF renderer turns a
    quarter turn off horizontal and vertical lines: each edge's tip sits on the route's end,
    and its base lies behind the tip along the route's last stretch."""
    root = ET.fromstring(drawing.draw(lineage, max_width=max_width))
    assert root.find(f".//{SVG}marker") is None and "marker-end" not in ET.tostring(root).decode()
    heads = {
        (head.get("data-source"), head.get("data-target")): head
        for head in root.findall(f"{SVG}polygon[@class='arrowhead']")
    }
    lines = root.findall(f"{SVG}polyline")
    assert len(heads) == len(lines) == lineage.number_of_edges()
    for line in lines:
        route = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        head = heads[(line.get("data-source"), line.get("data-target"))]
        tip, *base = [tuple(map(float, p.split(","))) for p in head.get("points").split()]
        (x0, y0), (x1, y1) = route[-2], route[-1]
        assert tip == pytest.approx((x1, y1), abs=0.01)
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        middle = ((base[0][0] + base[1][0]) / 2, (base[0][1] + base[1][1]) / 2)
        # the base's middle is the arrow's length straight back along the last stretch
        assert middle == pytest.approx(
            (x1 - ux * drawing.ARROW_LENGTH, y1 - uy * drawing.ARROW_LENGTH), abs=0.02
        )
        across = (base[0][0] - base[1][0], base[0][1] - base[1][1])
        assert abs(across[0] * ux + across[1] * uy) < 0.02  # the base is square to it


def test_long_edges_of_a_downward_drawing_each_have_a_lane_while_the_width_has_room():
    """Ten edges skipping rows in a six-generation chain at print width: ten lanes (the width
    holds them), none shared; at a width with room for the eight lanes alone, they share."""
    chain = [f"dataset:s3://lake:t{index}" for index in range(6)]
    skipping = [(a, b) for i, a in enumerate(chain) for b in chain[i + 2 :]]
    lineage = graph.digraph(
        [(a, b, "input") for a, b in zip(chain, chain[1:], strict=False)]
        + [(a, b, "input") for a, b in skipping]
    )

    def lanes(max_width: int) -> tuple[list[float], float]:
        root = ET.fromstring(drawing.draw(lineage, max_width=max_width))
        routes = [
            [tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for line in root.findall(f"{SVG}polyline")
        ]
        return [points[2][0] for points in routes if len(points) > 2], float(root.get("width"))

    wide, width = lanes(drawing.PRINT_WIDTH)
    assert len(wide) == len(skipping) == 10 == len(set(wide)) and width <= drawing.PRINT_WIDTH
    narrow, _ = lanes(2 * drawing.MARGIN + drawing.NODE_W + drawing.MAX_LANES * drawing.LANE)
    assert len(narrow) == 10 and len(set(narrow)) == drawing.MAX_LANES


# Names as producers send them: Spark jobs and Delta/BigQuery/S3/GCS datasets, Airflow tasks,
# dbt models, Kafka topics, with the node kinds that show them.
REAL_NAMES = [
    "dataset:bigquery:acme-analytics-prod.customer_features.transactions_enriched_daily_v3",
    "dataset:gs://acme-data-lake-production-europe-west1:warehouse/customer_transactions/"
    "partitioned_by_date/year=2026/month=11",
    "dataset:s3://ml-features-2026:churn/features_v2/part-00000-3f1e.snappy.parquet",
    "dataset:postgres://warehouse.internal.acme.com:5432:analytics.monthly_revenue_by_region",
    "dataset:kafka://broker-0.kafka.svc.cluster.local:9092:payments.transactions.v1.avro",
    "job:spark-cluster-prod-europe-west1:databricks_shell.execute_insert_into_hadoop_fs_"
    "relation_command.warehouse_customer_transactions_enriched_daily",
    "job:airflow-prod:dag_customer_360_daily_build.task_group_features.compute_rfm_scores",
    "job:dbt://analytics:model.jaffle_shop.customer_lifetime_value_2026",
    "model:credit-default-probability-retail-2026:12",
]


def _advance(font_file: str, px: int):
    from fontTools.ttLib import TTFont

    font = TTFont(font_file)
    cmap, widths, units = font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm
    return lambda text: sum(widths[cmap[ord(c)]][0] for c in text) * px / units


def test_labels_of_real_names_fit_inside_their_boxes_in_the_drawings_font():
    """Measured with DejaVu Sans, the font the drawing names (and the model card embeds):
    a shortened name, bold, and its detail line stay inside the 200-px box."""
    import subprocess

    files = {
        weight: subprocess.run(
            ["fc-match", "-f", "%{file}", f"DejaVu Sans:{weight}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for weight in ("bold", "regular")
    }
    assert all("DejaVuSans" in f for f in files.values()), files  # the font is installed
    name_width = _advance(files["bold"], drawing.NAME_PX)
    detail_width = _advance(files["regular"], drawing.DETAIL_PX)
    svg = drawing.draw(graph.digraph([(node, "model:x:1", "input") for node in REAL_NAMES]))
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        texts = group.findall(f"{SVG}text")
        if not texts:
            continue
        assert name_width(texts[0].text) <= drawing.NODE_W - 8, texts[0].text
        if len(texts) > 1:
            assert detail_width(texts[1].text) <= drawing.NODE_W - 8, texts[1].text
