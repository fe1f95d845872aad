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


def _one_of(column: str, values: Sequence) -> tuple[str, list]:
    """SQL and parameters for `column` being one of `values`: on PostgreSQL one array
    parameter however many values there are (a mapping batch asks about thousands of nodes),
    elsewhere an IN list."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({_placeholders(values)})", list(values)


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
    start, params = _one_of("source", origins)
    sql = f"""
        WITH RECURSIVE reach(origin, node) AS (
            SELECT source, target FROM {EDGE_TABLE}
            WHERE {start} AND relation IN ({rel})
            UNION
            SELECT r.origin, e.target FROM {_edges_from("reach r", "node", "source", rel)}
        )
        SELECT origin, node FROM reach
    """
    out: dict[str, set[str]] = {origin: set() for origin in origins}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *relations, *relations])
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


def _job_datasets(job_ids: dict[int, str]) -> dict[str, set[tuple[str, str]]]:
    """For each job (pk → job node id): every (relation, node) it reads or writes over all
    its runs — dataset nodes unversioned, model version nodes as they are."""
    from lineage import nodes
    from registry.models import Run

    runs = {
        nodes.run_id(run_id): job_ids[job]
        for run_id, job in Run.objects.filter(job__in=list(job_ids)).values_list("run_id", "job_id")
    }
    out: dict[str, set[tuple[str, str]]] = {job: set() for job in job_ids.values()}
    run_nodes = list(runs)
    for start in range(0, len(run_nodes), 1000):
        chunk = run_nodes[start : start + 1000]
        for source_base, target in Edge.objects.filter(
            target__in=chunk, relation=Relation.INPUT
        ).values_list("source_base", "target"):
            out[runs[target]].add((Relation.INPUT, source_base))
        for source, target_base in Edge.objects.filter(
            source__in=chunk, relation=Relation.OUTPUT
        ).values_list("source", "target_base"):
            out[runs[source]].add((Relation.OUTPUT, target_base))
    return out


def _jobs_touching(datasets: set[str]) -> dict[int, str]:
    """The jobs (pk → job node id) whose runs read or wrote any of these datasets."""
    from lineage import nodes
    from registry.models import Run

    if not datasets:
        return {}
    run_nodes = set(
        Edge.objects.filter(source_base__in=datasets, relation=Relation.INPUT).values_list(
            "target", flat=True
        )
    ) | set(
        Edge.objects.filter(target_base__in=datasets, relation=Relation.OUTPUT).values_list(
            "source", flat=True
        )
    )
    run_ids = [node.split(":", 1)[1] for node in run_nodes if node.startswith("run:")]
    return {
        job: nodes.job_id(namespace, name)
        for job, namespace, name in Run.objects.filter(run_id__in=run_ids).values_list(
            "job_id", "job__namespace", "job__name"
        )
    }


def marquez_lineage(ref, *, depth: int, user, max_nodes: int) -> dict[str, dict[str, set]]:
    """Marquez's `GET /lineage`: the jobs within `depth` job hops of the node (two jobs are
    one hop apart when they share an input or output dataset, in either direction), each with
    all its inputs and outputs. Returns node id → {"in": origins, "out": destinations}, model
    versions the user may not see left out. Raises LookupError for an unknown node."""
    from lineage import nodes
    from registry.models import Job, Run

    start_jobs: dict[int, str] = {}
    graph: dict[str, dict[str, set]] = {}
    if ref.kind == "dataset":
        resolve_start(ref)  # LookupError when unknown
        base = nodes.dataset_id(ref.namespace, ref.name)
        graph[base] = {"in": set(), "out": set()}
        start_jobs = _jobs_touching({base})
    elif ref.kind == "job":
        job = Job.objects.filter(namespace=ref.namespace, name=ref.name).values_list("pk").first()
        if job is None:
            raise LookupError(ref.id)
        start_jobs = {job[0]: ref.id}
    elif ref.kind in ("run", "model"):
        resolve_start(ref)
        if ref.kind == "run":
            run_ids = [ref.name]
        else:
            graph[ref.id] = {"in": set(), "out": set()}
            run_ids = [
                node.split(":", 1)[1]
                for node in Edge.objects.filter(
                    target=ref.id, relation=Relation.OUTPUT
                ).values_list("source", flat=True)
            ]
        start_jobs = {
            job: nodes.job_id(namespace, name)
            for job, namespace, name in Run.objects.filter(run_id__in=run_ids).values_list(
                "job_id", "job__namespace", "job__name"
            )
        }
    else:
        raise ValueError(ref.kind)
    seen: dict[int, str] = {}
    frontier = dict(start_jobs)
    for hop in range(depth + 1):
        if not frontier:
            break
        seen.update(frontier)
        touched = _job_datasets(frontier)
        datasets = set()
        for job_node, links in touched.items():
            graph.setdefault(job_node, {"in": set(), "out": set()})
            for relation, node in links:
                graph.setdefault(node, {"in": set(), "out": set()})
                if relation == Relation.INPUT:
                    graph[node]["out"].add(job_node)
                    graph[job_node]["in"].add(node)
                else:
                    graph[job_node]["out"].add(node)
                    graph[node]["in"].add(job_node)
                if node.startswith("dataset:"):
                    datasets.add(node)
        if len(graph) > max_nodes:
            raise TooLarge(f"the graph holds more than {max_nodes} nodes")
        if hop == depth:
            break
        frontier = {pk: job for pk, job in _jobs_touching(datasets).items() if pk not in seen}
    hidden = _hidden_model_nodes([n for n in graph if n.startswith("model:")], user)
    for node in hidden:
        graph.pop(node, None)
    for links in graph.values():
        links["in"] -= hidden
        links["out"] -= hidden
    return graph


def _hidden_model_nodes(model_nodes: list[str], user) -> set[str]:
    from registry.selectors import models_visible_to

    if not model_nodes:
        return set()
    names = {node.split(":", 2)[1] for node in model_nodes}
    visible = set(models_visible_to(user).filter(name__in=names).values_list("name", flat=True))
    return {node for node in model_nodes if node.split(":", 2)[1] not in visible}


def versions_at(reads: Sequence[tuple[str, object, str]]) -> dict[tuple, str]:
    """For each (dataset base, time, reading run node): the node of the latest version of the
    dataset written at or before that time by another run (ties: the greatest node id) —
    one statement per READS_PER_STATEMENT reads, each an index scan of the dataset's output
    edges. Reads with no such version are left out."""
    if not reads:
        return {}
    reads = list(dict.fromkeys(reads))
    out: dict[tuple, str] = {}
    for start in range(0, len(reads), READS_PER_STATEMENT):
        out.update(_versions_at(reads[start : start + READS_PER_STATEMENT]))
    return out


# Four values per read on SQLite: a statement stays under the 32,766 values it takes, however
# many stored reads a late write re-resolves (on PostgreSQL they are four arrays).
READS_PER_STATEMENT = 8_000


def _versions_at(reads: list[tuple[str, object, str]]) -> dict[tuple, str]:
    relation = f"'{Relation.OUTPUT}'"  # a constant of the statement, as the planner sees it
    if connection.vendor == "postgresql":
        # one array per column: four parameters however many reads
        wanted = "SELECT * FROM unnest(%s::int[], %s::text[], %s::timestamptz[], %s::text[])"
        bases, times, readers = (list(column) for column in zip(*reads, strict=True))
        params: list = [list(range(len(reads))), bases, times, readers]
    else:
        ops = connection.ops
        wanted = "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(reads))
        params = []
        for index, (base, at, reader) in enumerate(reads):
            params += [index, base, ops.adapt_datetimefield_value(at), reader]
    sql = f"""
        WITH wanted(i, base, at, reader) AS ({wanted})
        SELECT w.i, (
            SELECT e.target FROM {EDGE_TABLE} e
            WHERE e.relation = {relation} AND e.target_base = w.base AND e.at <= w.at
              AND e.source <> w.reader
            ORDER BY e.at DESC, e.target DESC LIMIT 1
        ) FROM wanted w
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return {reads[index]: node for index, node in found if node is not None}


# --- reads of the API's views ----------------------------------------------------------------


def model_visible(user, name: str) -> bool:
    """Whether the user may see the registered model `name` (else it reads as unknown)."""
    from registry.selectors import models_visible_to

    return models_visible_to(user).filter(name=name).exists()


def subgraph(ref, *, user, directions: Sequence[str], depth: int, max_nodes: int):
    """The graph within `depth` hops of `ref` in the given directions ("up", "down"), edges to
    model versions the user may not see left out, or None when the node is unknown (or a model
    version the user may not see). Raises TooLarge past `max_nodes`."""
    from lineage import graph

    try:
        start, by_base, relations = resolve_start(ref)
    except LookupError:
        return None
    if ref.kind == "model" and not model_visible(user, ref.name):
        return None
    rows: set = set()
    for direction in directions:
        rows |= set(
            walk(
                start,
                direction=direction,
                depth=depth,
                relations=relations,
                max_nodes=max_nodes,
                by_base=by_base,
            )
        )
    rows = hide_invisible_models(sorted(rows), user)
    return graph.digraph(rows, nodes=[] if by_base else start)


def dataset_named_with_hash(ref):
    """`dataset:ns:db.dbo.#stage` reads as the version `stage` of `db.dbo.`; when no such
    dataset is catalogued but `db.dbo.#stage` is, the id names that dataset (a name holding
    `#`, as SQL Server's temporary tables do). Any other ref is returned as it is."""
    from lineage import nodes
    from registry.models import Dataset

    if ref.kind != "dataset" or ref.version is None:
        return ref
    datasets = Dataset.objects.filter(namespace=ref.namespace)
    whole = f"{ref.name}#{ref.version}"
    if datasets.filter(name=ref.name).exists() or not datasets.filter(name=whole).exists():
        return ref
    return nodes.NodeRef(kind="dataset", namespace=ref.namespace, name=whole)


def datasets_by_node(node_ids: Iterable[str]) -> dict[str, object]:
    """The catalogued datasets among unversioned dataset node ids (node id → Dataset, its
    features prefetched); unknown ones left out."""
    from lineage import nodes
    from registry.models import Dataset

    wanted = {}
    for node_id in node_ids:
        ref = nodes.parse(node_id, versioned=False)
        wanted[(ref.namespace, ref.name)] = node_id
    if not wanted:
        return {}
    found = {}
    for dataset in Dataset.objects.filter(name__in={name for _, name in wanted}).prefetch_related(
        "features"
    ):
        node_id = wanted.get((dataset.namespace, dataset.name))
        if node_id is not None:
            found[node_id] = dataset
    return found


def impacted_versions(user, model_nodes: Iterable[str]) -> list[tuple[str, int, str, str]]:
    """(model, version, stage, risk tier) of the model-version nodes the user may see: plain
    rows, not model instances (a widely used dataset feeds thousands of versions)."""
    from lineage import nodes
    from registry.models import ModelVersion
    from registry.selectors import models_visible_to

    wanted: dict[str, set[int]] = {}
    for node in model_nodes:
        parsed = nodes.parse(node)
        wanted.setdefault(parsed.name, set()).add(int(parsed.version))
    versions = ModelVersion.objects.filter(
        model__in=models_visible_to(user).filter(name__in=list(wanted))
    ).values_list("model__name", "version", "stage", "model__risk_tier")
    return [row for row in versions if row[1] in wanted.get(row[0], ())]


def events_page(
    user,
    *,
    before=None,
    after=None,
    state: str | None = None,
    mine: bool = False,
    ascending: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[tuple]]:
    """(total, page of (id, payload, state, reason)) of the raw events the user may read, by
    event time (newest first unless `ascending`)."""
    qs = events_visible_to(user)
    if before is not None:
        qs = qs.filter(event_time__lt=before)
    if after is not None:
        qs = qs.filter(event_time__gt=after)
    if state:
        qs = qs.filter(state=state)
    if mine:
        qs = qs.filter(submitted_by=user)
    order = ["event_time", "id"] if ascending else ["-event_time", "-id"]
    total = qs.count()
    page = list(
        qs.order_by(*order).values_list("pk", "payload", "state", "reason")[offset : offset + limit]
    )
    return total, page
