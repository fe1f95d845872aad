"""Reads of the lineage graph: traversals run in the database as recursive CTEs (PostgreSQL
and SQLite alike), so a query touches only the subgraph it returns."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from django.db import connection

from lineage.models import VERSION_RELATIONS, Edge, Relation

EDGE_TABLE = Edge._meta.db_table


class TooLarge(Exception):
    """The subgraph is larger than the node cap."""


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _edges_from(frontier: str, column: str, near: str, rel: str) -> str:
    """FROM clause of a recursive step: the edges whose `near` end is `frontier`.`column`, as
    alias e. On PostgreSQL a LATERAL subquery (OFFSET 0 keeps the planner from flattening it
    into a join), so that each frontier node is one index lookup: the planner cannot estimate
    a recursive work table and, on a large graph, would otherwise hash the whole edge table at
    every step."""
    if connection.vendor == "postgresql":
        return (
            f"{frontier} CROSS JOIN LATERAL (SELECT * FROM {EDGE_TABLE} "
            f"WHERE {EDGE_TABLE}.{near} = {frontier.split()[-1]}.{column} "
            f"AND {EDGE_TABLE}.relation IN ({rel}) OFFSET 0) e"
        )
    alias = frontier.split()[-1]
    return (
        f"{EDGE_TABLE} e JOIN {frontier} ON e.{near} = {alias}.{column} AND e.relation IN ({rel})"
    )


def walk(
    start: Sequence[str],
    *,
    direction: str,
    depth: int,
    relations: Iterable[str] = VERSION_RELATIONS,
    max_nodes: int | None = None,
    by_base: bool = False,
) -> list[tuple[str, str, str]]:
    """Edges within `depth` hops of the start nodes, downstream ("down") or upstream ("up").

    With `by_base`, start nodes are unversioned ids matching every version (`dataset:ns:n`).
    Raises TooLarge when the result would hold more than `max_nodes` nodes.
    """
    if not start:
        return []
    relations = [str(r) for r in relations]
    near, far = ("source", "target") if direction == "down" else ("target", "source")
    start_column = f"{near}_base" if by_base else near
    rel = _placeholders(relations)
    limit = (max_nodes or 10**9) * 4 + 1
    sql = f"""
        WITH RECURSIVE walk(source, target, relation, depth) AS (
            SELECT source, target, relation, 1 FROM {EDGE_TABLE}
            WHERE {start_column} IN ({_placeholders(start)}) AND relation IN ({rel})
            UNION
            SELECT e.source, e.target, e.relation, w.depth + 1
            FROM {_edges_from("walk w", far, near, rel)}
            WHERE w.depth < %s
        )
        SELECT DISTINCT source, target, relation FROM walk LIMIT %s
    """
    params = [*start, *relations, *relations, depth, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if max_nodes is not None:
        nodes = {n for row in rows for n in row[:2]}
        if len(rows) >= limit or len(nodes) > max_nodes:
            raise TooLarge(f"the subgraph holds more than {max_nodes} nodes")
    return rows


def reachable(
    start: Sequence[str], *, direction: str = "down", relations: Iterable[str] = VERSION_RELATIONS
) -> set[str]:
    """Every node reachable from the start nodes, however far (set semantics: terminates)."""
    if not start:
        return set()
    relations = [str(r) for r in relations]
    near, far = ("source", "target") if direction == "down" else ("target", "source")
    rel = _placeholders(relations)
    sql = f"""
        WITH RECURSIVE reach(node) AS (
            SELECT {far} FROM {EDGE_TABLE}
            WHERE {near} IN ({_placeholders(start)}) AND relation IN ({rel})
            UNION
            SELECT e.{far} FROM {_edges_from("reach r", "node", near, rel)}
        )
        SELECT node FROM reach
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*start, *relations, *relations])
        return {row[0] for row in cursor.fetchall()}


def reaches(
    origins: Sequence[str], *, relations: Iterable[str] = VERSION_RELATIONS
) -> dict[str, set[str]]:
    """For each origin, every node downstream of it — one query for all origins."""
    if not origins:
        return {}
    relations = [str(r) for r in relations]
    rel = _placeholders(relations)
    sql = f"""
        WITH RECURSIVE reach(origin, node) AS (
            SELECT source, target FROM {EDGE_TABLE}
            WHERE source IN ({_placeholders(origins)}) AND relation IN ({rel})
            UNION
            SELECT r.origin, e.target FROM {_edges_from("reach r", "node", "source", rel)}
        )
        SELECT origin, node FROM reach
    """
    out: dict[str, set[str]] = {origin: set() for origin in origins}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*origins, *relations, *relations])
        for origin, node in cursor.fetchall():
            out[origin].add(node)
    return out


def downstream_models(start: Sequence[str], *, by_base: bool) -> set[str]:
    """Model-version node ids downstream of the start nodes (any distance)."""
    if by_base:
        start = list(
            Edge.objects.filter(source_base__in=start).values_list("source", flat=True).distinct()
        ) or list(start)
    return {n for n in reachable(start, direction="down") if n.startswith("model:")}


def node_exists(node: str, *, by_base: bool = False) -> bool:
    if by_base:
        return (
            Edge.objects.filter(source_base=node).exists()
            or Edge.objects.filter(target_base=node).exists()
        )
    return Edge.objects.filter(source=node).exists() or Edge.objects.filter(target=node).exists()


def column_relations() -> list[str]:
    return [Relation.COLUMN]


def resolve_start(ref) -> tuple[list[str], bool, list[str]]:
    """Start nodes for a query on `ref` (a nodes.NodeRef): (ids, by_base, relations).

    Raises LookupError when the node is not known at all.
    """
    from lineage import nodes
    from registry.models import Dataset, Feature, Job, ModelVersion, Run

    versioned = [str(r) for r in VERSION_RELATIONS]
    if ref.kind == "dataset":
        if not Dataset.objects.filter(namespace=ref.namespace, name=ref.name).exists():
            raise LookupError(ref.id)
        if ref.version is not None:
            return [ref.id], False, versioned
        return [nodes.dataset_id(ref.namespace, ref.name)], True, versioned
    if ref.kind == "job":
        runs = Run.objects.filter(job__namespace=ref.namespace, job__name=ref.name)
        if not Job.objects.filter(namespace=ref.namespace, name=ref.name).exists():
            raise LookupError(ref.id)
        return [nodes.run_id(r) for r in runs.values_list("run_id", flat=True)], False, versioned
    if ref.kind == "run":
        if not Run.objects.filter(run_id=ref.name).exists():
            raise LookupError(ref.id)
        return [ref.id], False, versioned
    if ref.kind == "model":
        if not ModelVersion.objects.filter(model__name=ref.name, version=ref.version).exists():
            raise LookupError(ref.id)
        return [ref.id], False, versioned
    if not (
        Feature.objects.filter(
            dataset__namespace=ref.namespace, dataset__name=ref.name, name=ref.field
        ).exists()
        or node_exists(ref.id)
    ):
        raise LookupError(ref.id)
    return [ref.id], False, column_relations()


def hide_invisible_models(rows, user) -> list[tuple[str, str, str]]:
    """Drop edges that touch model versions the user may not see (they get 404 elsewhere)."""
    from registry.selectors import models_visible_to

    model_names = {n.split(":", 2)[1] for row in rows for n in row[:2] if n.startswith("model:")}
    if not model_names:
        return list(rows)
    visible = set(
        models_visible_to(user).filter(name__in=model_names).values_list("name", flat=True)
    )
    hidden = model_names - visible
    return [
        row
        for row in rows
        if not any(n.startswith("model:") and n.split(":", 2)[1] in hidden for n in row[:2])
    ]


DRAWING_DEPTH = 6


def lineage_svg(
    start: list[str],
    focus: str,
    *,
    by_base: bool = False,
    depth: int = DRAWING_DEPTH,
    max_drawn: int = 120,
    for_print: bool = False,
    full_size: bool = False,
    viewer=None,
) -> str:
    """An SVG drawing of what is upstream and downstream of the start nodes: scaled to its
    container on a page, fixed at the card's text width `for_print`, or at its natural size
    (never turned) `full_size`; given a viewer, without the model versions it may not see."""
    from django.conf import settings

    from lineage import drawing, graph

    try:
        rows = set(
            walk(
                start,
                direction="up",
                depth=depth,
                by_base=by_base,
                max_nodes=settings.LINEAGE_MAX_NODES,
            )
        )
        rows |= set(
            walk(
                start,
                direction="down",
                depth=depth,
                by_base=by_base,
                max_nodes=settings.LINEAGE_MAX_NODES,
            )
        )
    except TooLarge:
        return "The lineage around this node is too large to draw here; use the API."
    if viewer is not None:
        rows = hide_invisible_models(rows, viewer)
    sub = graph.digraph(sorted(rows), nodes=[] if by_base else start)
    return drawing.draw(
        sub,
        focus=focus,
        max_nodes=max_drawn,
        run_jobs=run_jobs(sub.nodes),
        max_width=None
        if full_size
        else (drawing.PRINT_WIDTH if for_print else drawing.SCREEN_WIDTH),
        fixed=for_print or full_size,
    )


def run_jobs(node_ids) -> dict[str, tuple[str, str]]:
    """The (namespace, name) of the job of each run among the node ids, by run uuid: runs are
    labelled by what they ran."""
    from registry.models import Run

    uuids = []
    for node in node_ids:
        if node.startswith("run:"):
            try:
                uuids.append(uuid.UUID(node[4:]))
            except ValueError:
                continue
    if not uuids:
        return {}
    rows = Run.objects.filter(run_id__in=uuids).values_list("run_id", "job__namespace", "job__name")
    return {str(run_uuid): (namespace, name) for run_uuid, namespace, name in rows}


def events_visible_to(user):
    """Raw events the user may read: those naming no model, or only models the user may see
    (an event's payload holds its models' names, artifacts and metrics), and the user's own."""
    from django.db.models import Exists, OuterRef, Q

    from lineage.models import LineageEvent, ModelMention
    from registry.selectors import models_visible_to

    events = LineageEvent.objects.all()
    if user.is_superuser or user.has_perm("registry.view_registeredmodel"):
        return events
    hidden = ModelMention.objects.filter(event=OuterRef("pk")).exclude(
        model_name__in=models_visible_to(user).values("name")
    )
    return events.filter(Q(submitted_by=user) | ~Exists(hidden))


def edges_visible_to(user):
    """Edges the user may read: those touching no model version, or one the user may see."""
    from django.db.models import Q

    from registry.selectors import models_visible_to

    edges = Edge.objects.all()
    if user.is_superuser or user.has_perm("registry.view_registeredmodel"):
        return edges
    return edges.filter(Q(model_name="") | Q(model_name__in=models_visible_to(user).values("name")))
