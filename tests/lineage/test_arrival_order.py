"""The graph built from a set of events is the same whatever order they arrive in (and
however the mapper's batches split them): inputs resolve by event time, not arrival."""

import uuid

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from core.canonical import canonical_json
from lineage import nodes, services
from lineage.models import Edge, LineageEvent
from registry.models import DatasetVersion, Run
from tests.lineage.conftest import dataset, run_event, schema_facet

pytestmark = pytest.mark.django_db

NS = "s3://bakery"
ORDER = uuid.UUID("7c3a0d5e-1f2b-4c3d-8e9f-0a1b2c3d4e5f")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(ORDER, name)


def _event(run, job, time, inputs=(), outputs=(), event_type="COMPLETE", parent=None):
    facets = {}
    if parent is not None:
        facets["parent"] = {
            "_producer": "p",
            "_schemaURL": "s",
            "run": {"runId": str(_id(parent[0]))},
            "job": {"namespace": "airflow", "name": parent[1]},
        }
    return run_event(
        event_type,
        run_id=_id(run),
        job=job,
        time=time,
        inputs=[_dataset(name) for name in inputs],
        outputs=[_dataset(name) for name in outputs],
        run_facets=facets,
    )


def _dataset(name):
    """A dataset by name, or by (name, version): with the `version` facet (a dataset already
    built is taken as it is)."""
    if isinstance(name, dict):
        return name
    if isinstance(name, tuple):
        name, version = name
        return dataset(NS, name, version={"datasetVersion": version})
    return dataset(NS, name)


def _with_schema(name, version, *columns):
    """A dataset by name and version, with a schema of these (name, type) columns, if any."""
    facets = {"version": {"datasetVersion": version}}
    if columns:
        facets["schema"] = schema_facet(*({"name": c, "type": t} for c, t in columns))
    return dataset(NS, name, **facets)


def bakery():
    """Two harvests of apples (September and October), the filling made in between, the pie
    baked from it: the filling must read September's apples whatever arrives first."""
    return [
        _event("harvest-sep", "harvest", "2026-09-01T06:00:00Z", outputs=["apples"]),
        _event("harvest-oct", "harvest", "2026-10-15T06:00:00Z", outputs=["apples"]),
        _event(
            "filling-0902",
            "prepare_apple_filling",
            "2026-09-02T08:00:00Z",
            inputs=["apples", "sugar", "cinnamon"],
            outputs=["filling"],
        ),
        _event(
            "filling-1016",
            "prepare_apple_filling",
            "2026-10-16T08:00:00Z",
            inputs=["apples", "sugar", "cinnamon"],
            outputs=["filling"],
        ),
        _event("bake-0903", "bake_pie", "2026-09-03T09:00:00Z", inputs=["filling", "crust"]),
        _event("bake-1017", "bake_pie", "2026-10-17T09:00:00Z", inputs=["filling", "crust"]),
    ]


def chain():
    """Three jobs in a chain, each run several times, with START and COMPLETE events."""
    events = []
    for day in range(1, 4):
        for step, (job, source, target) in enumerate(
            [
                ("extract", "raw", "staged"),
                ("transform", "staged", "clean"),
                ("load", "clean", "mart"),
            ]
        ):
            run = f"{job}-{day}"
            hour = 6 + step * 2
            for event_type, minute in (("START", "00"), ("COMPLETE", "30")):
                events.append(
                    _event(
                        run,
                        job,
                        f"2026-11-0{day}T{hour:02d}:{minute}:00Z",
                        inputs=[source],
                        outputs=[target],
                        event_type=event_type,
                    )
                )
    return events


def read_modify_write():
    """Runs that read and write the same table: each reads the previous run's version."""
    return [
        _event(f"append-{n}", "append", f"2026-11-01T{8 + n:02d}:00:00Z", ["ledger"], ["ledger"])
        for n in range(4)
    ] + [_event("report", "report", "2026-11-01T10:30:00Z", inputs=["ledger"])]


def parent_runs():
    """A DAG run and its task runs (START and COMPLETE), tasks naming the DAG run as parent."""
    events = [
        _event("dag", "daily", "2026-11-01T05:00:00Z", event_type="START"),
        _event("dag", "daily", "2026-11-01T07:00:00Z", event_type="COMPLETE"),
    ]
    for index, (task, source, target) in enumerate(
        [("ingest", "feed", "landing"), ("score", "landing", "scores")]
    ):
        for event_type, minute in (("START", 0), ("COMPLETE", 20)):
            events.append(
                _event(
                    f"task-{task}",
                    f"daily.{task}",
                    f"2026-11-01T0{5 + index}:{minute + 10:02d}:00Z",
                    inputs=[source],
                    outputs=[target],
                    event_type=event_type,
                    parent=("dag", "daily"),
                )
            )
    return events


def spark_application():
    """A Spark application whose SQL jobs name it, in their parent facet, by its raw
    `spark.app.name`, while its own events carry the name `spark.openlineage.appName` gives
    it (AWS Glue does this too)."""
    events = [
        _event("app", "glue_job", "2026-11-01T10:00:00Z", event_type="START"),
        _event("app", "glue_job", "2026-11-01T10:10:00Z", event_type="COMPLETE"),
    ]
    for event_type, minute in (("START", 1), ("COMPLETE", 5)):
        events.append(
            _event(
                "insert",
                "glue_job.execute_insert",
                f"2026-11-01T10:{minute:02d}:00Z",
                inputs=["orders"],
                outputs=["orders_daily"],
                event_type=event_type,
                parent=("app", "raw_app_name"),
            )
        )
    return events


def spark_unknown_job():
    """openlineage-spark 1.34 names some applications' START `unknown` (OpenLineage issue
    3846); the application's later events and its SQL job's parent facet name it."""
    return [
        _event("spark-app", "unknown", "2026-11-01T08:00:00Z", event_type="START"),
        _event("spark-app", "nightly_app", "2026-11-01T08:30:00Z", event_type="COMPLETE"),
        _event(
            "spark-sql",
            "nightly_app.insert_into",
            "2026-11-01T08:10:00Z",
            inputs=["events"],
            outputs=["events_daily"],
            parent=("spark-app", "nightly_app"),
        ),
    ]


def spark_delta():
    """Spark on Delta Lake: START names the versions read and the output without its version,
    COMPLETE names the version written; runs appending to the table, a report reading it
    unversioned, and one reading a version before its writer's events arrive."""
    events = []
    for n in (1, 2, 3):
        inputs = [("orders", str(n - 1))] if n > 1 else []
        for event_type, minute in (("START", 0), ("COMPLETE", 5)):
            events.append(
                _event(
                    f"append-{n}",
                    "append_orders",
                    f"2026-11-01T{9 + n:02d}:{minute:02d}:00Z",
                    inputs=inputs,
                    outputs=["orders" if event_type == "START" else ("orders", str(n))],
                    event_type=event_type,
                )
            )
    events.append(_event("report", "report", "2026-11-01T11:30:00Z", inputs=["orders"]))
    events.append(_event("audit", "audit", "2026-11-01T13:00:00Z", inputs=[("orders", "3")]))
    return events


def iceberg_noop_merge():
    """Spark on Iceberg, a MERGE that matched no rows: START reads snapshot 5 and names the
    output without a version; COMPLETE names 5 both as read and as written. A reader later."""
    return [
        _event("load", "load", "2026-11-01T09:00:00Z", outputs=[("orders", "5")]),
        _event("noop", "merge", "2026-11-01T10:00:00Z", [("orders", "5")], ["orders"], "START"),
        _event("noop", "merge", "2026-11-01T10:05:00Z", [("orders", "5")], [("orders", "5")]),
        _event("report", "report", "2026-11-01T11:00:00Z", inputs=["orders"]),
    ]


def iceberg_noop_merge_read_on_start():
    """The same MERGE, its COMPLETE naming snapshot 5 as written but not as read: only the
    START says the run read 5."""
    return [
        _event("load", "load", "2026-11-01T09:00:00Z", outputs=[("orders", "5")]),
        _event("noop", "merge", "2026-11-01T10:00:00Z", [("orders", "5")], ["orders"], "START"),
        _event("noop", "merge", "2026-11-01T10:05:00Z", outputs=[("orders", "5")]),
        _event("report", "report", "2026-11-01T11:00:00Z", inputs=["orders"]),
    ]


def iceberg_noop_merge_only_writer():
    """The MERGE's COMPLETE names 5 as written, a RUNNING event names it as read, and no other
    run wrote 5: a later reader reads `external`, whichever arrives first."""
    return [
        _event("noop", "merge", "2026-11-01T10:02:00Z", [("orders", "5")], event_type="RUNNING"),
        _event("noop", "merge", "2026-11-01T10:05:00Z", outputs=[("orders", "5")]),
        _event("report", "report", "2026-11-01T11:00:00Z", inputs=["orders"]),
    ]


def noop_merge_in_a_namespace_holding_colons():
    """The same, in a namespace whose ':' a node id does not tell from the name's."""
    team = "team:prod"

    def event(run, job, time, inputs=(), outputs=(), event_type="COMPLETE"):
        return run_event(
            event_type,
            run_id=_id(run),
            job=job,
            time=time,
            inputs=[dataset(team, n, version={"datasetVersion": v}) for n, v in inputs],
            outputs=[dataset(team, n, version={"datasetVersion": v}) for n, v in outputs],
        )

    return [
        event("load", "load", "2026-11-01T09:00:00Z", outputs=[("orders", "5")]),
        event("noop", "merge", "2026-11-01T10:02:00Z", [("orders", "5")], event_type="RUNNING"),
        event("noop", "merge", "2026-11-01T10:05:00Z", outputs=[("orders", "5")]),
    ]


def facets_equal_in_python_not_in_json():
    """Two events of one moment giving a facet as 1 and as 1.0: 1.0 (the greater in JSON)."""
    events = [_event("tie", "job", "2026-11-01T10:00:00Z", event_type="RUNNING") for _ in range(2)]
    for event, value in zip(events, (1, 1.0), strict=True):
        event["run"]["facets"] = {"engine": {"_producer": "p", "_schemaURL": "s", "v": value}}
    return events


def two_writers():
    """Runs naming one version as written (a re-run writing the same snapshot), two of them at
    the same moment: the earliest write produces it (at one moment, the least run id)."""
    return [
        _event("write-a", "load", "2026-11-01T08:00:00Z", outputs=[("table", "v1")]),
        _event("write-b", "load", "2026-11-01T08:00:00Z", outputs=[("table", "v1")]),
        _event("write-c", "reload", "2026-11-01T09:00:00Z", outputs=[("table", "v1")]),
        _event("reader", "report", "2026-11-01T10:00:00Z", inputs=["table"]),
    ]


def schemas():
    """Writers and readers of one version giving it different schemas (two producers writing
    a type in their own words), or only one of them a schema: the writer's schema, else a
    reader's, whatever arrives first and whichever events share a batch (a run's START naming
    its output without a schema, a reader's schema, then the COMPLETE giving the writer's)."""

    return [
        _event(
            "bill",
            "bill",
            "2026-11-01T07:00:00Z",
            outputs=[_with_schema("invoices", "v2")],
            event_type="START",
        ),
        _event(
            "check",
            "check",
            "2026-11-01T07:15:00Z",
            inputs=[_with_schema("invoices", "v2", ("no", "string"))],
        ),
        _event(
            "bill",
            "bill",
            "2026-11-01T07:30:00Z",
            outputs=[_with_schema("invoices", "v2", ("no", "int"), ("total", "double"))],
        ),
        _event(
            "export",
            "export",
            "2026-11-01T08:00:00Z",
            outputs=[
                _with_schema("orders", "v1", ("id", "BIGINT"), ("amount", "DECIMAL(10,2)")),
                _with_schema("customers", "v5"),
            ],
        ),
        _event(
            "score",
            "score",
            "2026-11-01T09:00:00Z",
            inputs=[
                _with_schema("orders", "v1", ("id", "long")),
                _with_schema("customers", "v5", ("id", "long"), ("name", "string")),
            ],
        ),
    ]


def rival_schemas():
    """Two writers and two readers disagreeing about one version's schema: a run's START and
    COMPLETE give its output different schemas, two readers give a version whose writer gave
    none theirs, and two more readers at one moment disagree. The earliest event's stands (at
    one moment, the lesser in canonical JSON), whatever arrives first."""

    return [
        _event(
            "load",
            "load",
            "2026-11-01T07:00:00Z",
            outputs=[_with_schema("sales", "s1", ("id", "int"))],
            event_type="START",
        ),
        _event(
            "load",
            "load",
            "2026-11-01T07:30:00Z",
            outputs=[_with_schema("sales", "s1", ("id", "bigint"), ("total", "double"))],
        ),
        _event("ingest", "ingest", "2026-11-01T08:00:00Z", outputs=[_with_schema("stock", "k1")]),
        _event(
            "audit",
            "audit",
            "2026-11-01T09:00:00Z",
            [_with_schema("stock", "k1", ("sku", "string"))],
        ),
        _event(
            "count", "count", "2026-11-01T08:30:00Z", [_with_schema("stock", "k1", ("qty", "int"))]
        ),
        _event(
            "north",
            "north",
            "2026-11-01T10:00:00Z",
            [_with_schema("prices", "p1", ("eur", "double"))],
        ),
        _event(
            "south",
            "south",
            "2026-11-01T10:00:00Z",
            [_with_schema("prices", "p1", ("usd", "double"))],
        ),
        # two Spark runs writing one Delta version, named on COMPLETE only: their stand-ins
        # (with each writer's schema) become one version, holding the earlier START's schema
        *(
            _event(run, run, time, outputs=[dataset(NS, "ledger", **facets)], event_type=kind)
            for run, time, kind, facets in (
                ("spark-a", "2026-11-01T11:00:00Z", "START", {"schema": _columns("x")}),
                ("spark-b", "2026-11-01T11:05:00Z", "START", {"schema": _columns("y")}),
                ("spark-a", "2026-11-01T11:10:00Z", "COMPLETE", {"version": _named("9")}),
                ("spark-b", "2026-11-01T11:15:00Z", "COMPLETE", {"version": _named("9")}),
            )
        ),
    ]


def _columns(*names):
    return schema_facet(*({"name": name, "type": "int"} for name in names))


def _named(version):
    return {"_producer": "p", "_schemaURL": "s", "datasetVersion": version}


def spark_write_named_late_with_schemas():
    """Spark names the Delta version on COMPLETE only; its START's output (a stand-in) carries
    the writer's schema, and a reader names the version first with a schema of its own: the
    version holds the writer's schema whatever arrives first."""
    written = schema_facet({"name": "id", "type": "bigint"}, {"name": "total", "type": "double"})
    start = _event("spark-w", "spark_job", "2026-11-01T08:00:00Z", event_type="START")
    start["outputs"] = [dataset(NS, "sales", schema=written)]
    complete = _event("spark-w", "spark_job", "2026-11-01T08:10:00Z")
    complete["outputs"] = [dataset(NS, "sales", version={"datasetVersion": "7"})]
    reader = _event("report", "report", "2026-11-01T09:00:00Z")
    reader["inputs"] = [_with_schema("sales", "7", ("id", "long"))]
    return [start, complete, reader]


def model_training():
    """A training run whose inputs arrive on START and whose model is registered on COMPLETE
    (a `modelgov_model` output), the features' producer arriving in any order around both:
    the model version is trained on every input, read at the run's time."""
    model = {
        "_producer": "p",
        "_schemaURL": "s",
        "name": "churn",
        "artifactUri": "s3://models/churn/1",
        "sha256": "ab" * 32,
    }
    complete = _event("train", "train_churn", "2026-11-01T12:00:00Z")
    complete["outputs"] = [dataset(NS, "churn_model", modelgov_model=model)]
    return [
        _event("features-1", "build_features", "2026-11-01T06:00:00Z", outputs=["features"]),
        _event(
            "train",
            "train_churn",
            "2026-11-01T10:00:00Z",
            inputs=["features", ("labels", "v3")],
            event_type="START",
        ),
        complete,
        _event("features-2", "build_features", "2026-11-01T14:00:00Z", outputs=["features"]),
    ]


def _checkpoints(event_type, time, completed, **more):
    """A Flink job's event with its `checkpoints` run facet (and any other run facets)."""
    event = _event("stream", "kafka_to_iceberg", time, ["clicks"], ["clicks_table"], event_type)
    event["run"]["facets"] = {
        "checkpoints": {"_producer": "p", "_schemaURL": "s", "completed": completed},
        **more,
    }
    return event


def streaming_checkpoints():
    """A streaming run reporting its checkpoints in every event: a RUNNING event later than
    the COMPLETE (lower rank, later time), two RUNNING events of one moment that disagree,
    and a facet only the START gives. Each facet holds the latest event's value."""
    engine = {"_producer": "p", "_schemaURL": "s", "name": "flink", "version": "1.19"}
    return [
        _checkpoints("START", "2026-11-01T10:00:00Z", 0, processing_engine=engine),
        _checkpoints("RUNNING", "2026-11-01T10:02:00Z", 1),
        _checkpoints("COMPLETE", "2026-11-01T10:05:00Z", 3),
        _checkpoints("RUNNING", "2026-11-01T10:07:00Z", 4),
        _checkpoints("RUNNING", "2026-11-01T10:07:00Z", 5),
        # a value that comes back (1 again, after 3), and one written as 1.0: equal in Python,
        # not in JSON
        _checkpoints("RUNNING", "2026-11-01T10:03:00Z", 1, processing_engine=engine),
        _checkpoints("RUNNING", "2026-11-01T10:04:00Z", 2, processing_engine={**engine, "v": 1}),
        _checkpoints("RUNNING", "2026-11-01T10:06:00Z", 1, processing_engine={**engine, "v": 1.0}),
        # an owner that changes and changes back: the latest event's, though an earlier one
        # gave the same value
        _checkpoints("RUNNING", "2026-11-01T10:01:00Z", 1, owner={"name": "a"}),
        _checkpoints("RUNNING", "2026-11-01T10:04:30Z", 2, owner={"name": "b"}),
        _checkpoints("RUNNING", "2026-11-01T10:06:30Z", 3, owner={"name": "a"}),
    ]


EVENT_SETS = {
    "bakery": bakery(),
    "chain": chain(),
    "read_modify_write": read_modify_write(),
    "parent_runs": parent_runs(),
    "spark_application": spark_application(),
    "spark_delta": spark_delta(),
    "spark_unknown_job": spark_unknown_job(),
    "streaming_checkpoints": streaming_checkpoints(),
    "iceberg_noop_merge": iceberg_noop_merge(),
    "iceberg_noop_merge_read_on_start": iceberg_noop_merge_read_on_start(),
    "iceberg_noop_merge_only_writer": iceberg_noop_merge_only_writer(),
    "noop_merge_in_a_namespace_holding_colons": noop_merge_in_a_namespace_holding_colons(),
    "facets_equal_in_python_not_in_json": facets_equal_in_python_not_in_json(),
    "model_training": model_training(),
    "two_writers": two_writers(),
    "schemas": schemas(),
    "rival_schemas": rival_schemas(),
    "spark_write_named_late_with_schemas": spark_write_named_late_with_schemas(),
}


def _graph():
    """Everything arrival order could change: edges (with their times), the versions they
    link, and each run's state, times, parent and facets."""
    edges = sorted(Edge.objects.values_list("source", "target", "relation", "at"))
    linked = {node for s, t, _, _ in edges for node in (s, t) if node.startswith("dataset:")}
    versions = sorted(
        # with whose schema it is and when it was given: what decides a later contest
        (namespace, name, version, str(run) if run else None, canonical_json(schema), *given)
        for namespace, name, version, run, schema, *given in DatasetVersion.objects.values_list(
            "dataset__namespace",
            "dataset__name",
            "version",
            "produced_by__run_id",
            "schema",
            "schema_by_reader",
            "schema_at",
        )
        if nodes.dataset_id(namespace, name, version) in linked
    )
    runs = sorted(
        # facets as canonical JSON: 1 and 1.0 differ, the order of keys does not
        (
            str(r),
            state,
            started,
            ended,
            str(parent) if parent else None,
            job,
            canonical_json(facets),
            when,
        )
        for r, state, started, ended, parent, job, facets, when in Run.objects.values_list(
            "run_id",
            "state",
            "started_at",
            "ended_at",
            "parent__run_id",
            "job__name",
            "facets",
            "facet_times",
        )
    )
    return edges, versions, runs


def _ingest(pipeline, events, chunks):
    """Post the events in this order, mapping after every `chunks` accepted events."""
    with transaction.atomic():
        for start in range(0, len(events), chunks):
            services.lineage_events_accept(actor=pipeline, payloads=events[start : start + chunks])
            services.lineage_events_map_all()
        graph = _graph()
        transaction.set_rollback(True)
    return graph


def _map_each(pipeline, events):
    """Accept and map the events one by one, in this order, each its own batch (kept)."""
    for event in events:
        services.lineage_events_accept(actor=pipeline, payloads=[event])
        services.lineage_events_map_all()


@pytest.fixture
def expected(pipeline, settings):
    """The graph of an event set sent in event-time order, one by one: how a single,
    well-behaved producer would send them (built once per test)."""
    settings.LINEAGE_MAP_INLINE = False
    built = {}

    def graph(name):
        if name not in built:
            events = sorted(EVENT_SETS[name], key=lambda e: e["eventTime"])
            built[name] = _ingest(pipeline, events, 1)
        return built[name]

    return graph


def test_the_filling_reads_the_apples_harvested_before_it_whatever_arrives_first(
    pipeline, settings
):
    settings.LINEAGE_MAP_INLINE = False
    events = bakery()
    # October's harvest and the September filling arrive before September's harvest
    reordered = [events[1], events[2], events[0], *events[3:]]
    edges = _ingest(pipeline, reordered, 1)[0]
    reads = {(s, t) for s, t, r, _ in edges if r == "input" and "apples" in s}
    assert (f"dataset:{NS}:apples#run:{_id('harvest-sep')}", f"run:{_id('filling-0902')}") in reads
    assert (f"dataset:{NS}:apples#run:{_id('harvest-oct')}", f"run:{_id('filling-1016')}") in reads
    assert not any(s.endswith("#external") for s, _ in reads)


@pytest.mark.parametrize("order", ["in time order", "complete first", "reader first"])
def test_a_spark_write_is_one_version_named_by_its_complete_event(pipeline, settings, order):
    """START names the output without its version (`run:<runId>` stands in), COMPLETE with
    it: one version, `1`, written by the run at START's time, whatever arrives first; a read
    resolved to the stand-in moves with it."""
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    start, complete = spark_delta()[:2]  # append-1
    report = _event("report", "report", "2026-11-01T10:03:00Z", inputs=["orders"])
    audit = _event("audit", "audit", "2026-11-01T13:00:00Z", inputs=[("orders", "1")])
    arrival = {
        "in time order": [start, report, complete, audit],
        "complete first": [complete, audit, report, start],
        "reader first": [audit, start, report, complete],
    }[order]
    _map_each(pipeline, arrival)  # each event its own batch

    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    writer = f"run:{_id('append-1')}"
    # (a read resolved before any write arrived leaves `external` recorded, unlinked)
    assert list(
        DatasetVersion.objects.filter(dataset__name="orders")
        .exclude(version="external")
        .values_list("version", "produced_by__run_id")
    ) == [("1", _id("append-1"))]
    edges = set(Edge.objects.values_list("source", "target", "relation", "at"))
    version = f"dataset:{NS}:orders#1"
    assert (writer, version, "output") in {(s, t, r) for s, t, r, _ in edges}
    assert [at.isoformat() for s, t, r, at in edges if s == writer] == ["2026-11-01T10:00:00+00:00"]
    readers = {t for s, t, r, _ in edges if s == version and r == "input"}
    assert readers == {f"run:{_id('report')}", f"run:{_id('audit')}"}
    assert not any("#run:" in node for s, t, _, _ in edges for node in (s, t))
    if order != "complete first":  # the stand-in was recorded, then named
        action = (
            "registry.dataset_version.merged"
            if order == "reader first"
            else ("registry.dataset_version.updated")
        )
        named = AuditEvent.objects.get(action=action)
        assert named.changes["version"] == [f"run:{_id('append-1')}", "1"]


def test_an_output_naming_the_version_its_run_read_is_a_read_not_a_write(pipeline, settings):
    """An Iceberg MERGE that matched no rows: the COMPLETE names the table's snapshot 5 as
    read and as written. The run read 5 and wrote nothing: mapped, with no edge back to 5."""
    settings.LINEAGE_MAP_INLINE = False
    earlier = _event("w", "load", "2026-11-01T09:00:00Z", outputs=[("orders", "5")])
    noop = _event("noop", "merge", "2026-11-01T10:05:00Z", [("orders", "5")], [("orders", "5")])
    _map_each(pipeline, [earlier, noop])
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    five = f"dataset:{NS}:orders#5"
    assert set(Edge.objects.filter(source=f"run:{_id('noop')}").values_list("target")) == set()
    assert Edge.objects.filter(source=five, target=f"run:{_id('noop')}", relation="input").exists()
    version = DatasetVersion.objects.get(dataset__name="orders", version="5")
    assert version.produced_by.run_id == _id("w")


def test_a_complete_naming_as_its_write_a_version_its_start_read_is_mapped_as_a_read(
    pipeline, settings
):
    """START reads orders@5 and writes orders (unversioned: the stand-in `run:<runId>`);
    COMPLETE then names 5 as the version written, without the read. No rename to 5 (that
    would close orders@5 → run → orders@5): the stand-in stays, the COMPLETE is mapped."""
    import networkx as nx

    settings.LINEAGE_MAP_INLINE = False
    start = _event("noop", "merge", "2026-11-01T10:00:00Z", [("orders", "5")], ["orders"], "START")
    complete = _event("noop", "merge", "2026-11-01T10:05:00Z", outputs=[("orders", "5")])
    _map_each(pipeline, [start, complete])
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    versioned = nx.DiGraph(
        list(Edge.objects.exclude(relation="column").values_list("source", "target"))
    )
    assert nx.is_directed_acyclic_graph(versioned)
    assert DatasetVersion.objects.filter(version=f"run:{_id('noop')}").exists()
    assert not DatasetVersion.objects.get(dataset__name="orders", version="5").produced_by


def test_a_write_undone_when_a_later_mapped_event_shows_its_run_reads_the_version(
    pipeline, settings
):
    """The COMPLETE (naming 5 as its write, not as read) is mapped before the START that read
    5: its write stands until then, and is undone when the START arrives — the edge removed
    (audited), the version's producer the run that did write it."""
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    load = _event("load", "load", "2026-11-01T09:00:00Z", outputs=[("orders", "5")])
    start = _event("noop", "merge", "2026-11-01T10:00:00Z", [("orders", "5")], ["orders"], "START")
    complete = _event("noop", "merge", "2026-11-01T10:05:00Z", outputs=[("orders", "5")])
    _map_each(pipeline, [complete, load])
    five = f"dataset:{NS}:orders#5"
    noop = f"run:{_id('noop')}"
    assert Edge.objects.filter(source=noop, target=five, relation="output").exists()
    _map_each(pipeline, [start])
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    assert not Edge.objects.filter(source=noop, target=five).exists()
    assert Edge.objects.filter(source=five, target=noop, relation="input").exists()
    assert DatasetVersion.objects.get(version="5").produced_by.run_id == _id("load")
    removed = AuditEvent.objects.get(action="lineage.edge.removed")
    assert removed.changes["source"] == noop and removed.changes["target"] == five


def test_a_model_is_trained_on_its_runs_inputs_that_arrive_after_it(pipeline, settings):
    """COMPLETE registers the model with no input named; START, mapped later, names them:
    the model version is then trained on them, audited as a link of that version; the
    features' producer, later still, moves the trained-on edge with the run's read."""
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    build, start, complete, _ = model_training()
    _map_each(pipeline, [complete])
    model = "model:churn:1"
    assert not Edge.objects.filter(target=model, relation="trained_on").exists()
    _map_each(pipeline, [start])
    features = f"dataset:{NS}:features#external"
    labels = f"dataset:{NS}:labels#v3"
    assert set(
        Edge.objects.filter(target=model, relation="trained_on").values_list("source", flat=True)
    ) == {features, labels}
    linked = AuditEvent.objects.filter(action="lineage.model_version.linked").last()
    assert linked.object_repr.startswith("churn") and linked.changes["edges"][1] == [
        [source, "trained_on", model] for source in sorted([features, labels])
    ]
    _map_each(pipeline, [build])
    written = f"dataset:{NS}:features#run:{_id('features-1')}"
    assert set(
        Edge.objects.filter(target=model, relation="trained_on").values_list("source", flat=True)
    ) == {written, labels}
    # in the model version's own history, not only the run's input edge's
    relinked = AuditEvent.objects.get(action="lineage.model_version.relinked")
    assert (relinked.object_type, relinked.object_id) == (
        "registry.modelversion",
        str(linked.object_id),
    )
    assert relinked.changes == {"trained_on": [features, written]}


def test_a_late_input_links_the_renamed_model_not_the_new_holder_of_its_name(pipeline, settings):
    """A rename renames the model's nodes: after it, and another model taking the old name,
    the run's late input links the renamed model's version, not the other model's."""
    from registry.models import RegisteredModel
    from registry.services import registered_model_rename

    settings.LINEAGE_MAP_INLINE = False
    _, start, complete, _ = model_training()
    _map_each(pipeline, [complete])
    registered_model_rename(
        actor=pipeline, model=RegisteredModel.objects.get(name="churn"), new_name="churn-old"
    )
    other = _event("other", "train_other", "2026-11-01T11:00:00Z")
    other["outputs"] = [
        dataset(
            NS, "other_model", modelgov_model={**complete["outputs"][0]["facets"]["modelgov_model"]}
        )
    ]
    _map_each(pipeline, [other])  # a new model named churn: its version 1 is model:churn:1
    _map_each(pipeline, [start])
    trained = set(Edge.objects.filter(relation="trained_on").values_list("source", "target"))
    inputs = set(
        Edge.objects.filter(
            target=nodes.run_id(start["run"]["runId"]), relation="input"
        ).values_list("source", flat=True)
    )
    assert len(inputs) == len(start["inputs"])
    assert trained == {(node, "model:churn-old:1") for node in inputs}


@pytest.fixture
def second_pipeline(db):
    from tests.conftest import _user

    return _user("pipeline-two", "pipeline")


def _training_data():
    return set(Edge.objects.filter(relation="trained_on").values_list("source", "target"))


def test_late_inputs_from_the_pipeline_running_the_training_are_linked(
    pipeline, second_pipeline, settings
):
    """A scientist's version names the run (registered through MLflow, say); the pipeline
    account running it, which may not change the model, sends the run's inputs afterwards:
    they are the version's training data."""
    settings.LINEAGE_MAP_INLINE = False
    _, start, complete, _ = model_training()
    _map_each(pipeline, [complete])
    _map_each(second_pipeline, [start])
    assert LineageEvent.objects.get(submitted_by=second_pipeline).state == "mapped"
    assert len(_training_data()) == len(start["inputs"])


def test_a_version_two_runs_write_is_produced_by_the_earliest_write(pipeline, settings):
    """The later writer arrives first and is recorded as the producer; the earlier one, mapped
    next, takes its place, audited."""
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    first, _, later, _ = two_writers()
    _map_each(pipeline, [later])
    version = DatasetVersion.objects.get(dataset__name="table", version="v1")
    assert version.produced_by.run_id == _id("write-c")
    _map_each(pipeline, [first])
    version.refresh_from_db()
    assert version.produced_by.run_id == _id("write-a")
    updated = AuditEvent.objects.filter(action="registry.dataset_version.updated").last()
    assert updated.changes == {"produced_by": [str(_id("write-c")), str(_id("write-a"))]}
    _map_each(pipeline, [later])  # the same event again: nothing changes
    version.refresh_from_db()
    assert version.produced_by.run_id == _id("write-a")


def test_a_writers_schema_replaces_the_one_a_reader_gave_first(pipeline, settings):
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    *_, export, score = schemas()
    _map_each(pipeline, [score])
    orders = DatasetVersion.objects.get(dataset__name="orders", version="v1")
    assert (orders.produced_by, orders.schema) == (
        None,
        [{"name": "id", "type": "long", "description": ""}],
    )
    _map_each(pipeline, [export])
    orders.refresh_from_db()
    written = [
        {"name": "id", "type": "BIGINT", "description": ""},
        {"name": "amount", "type": "DECIMAL(10,2)", "description": ""},
    ]
    assert (orders.produced_by.run_id, orders.schema) == (_id("export"), written)
    updates = {
        event.object_repr: event.changes
        for event in AuditEvent.objects.filter(action="registry.dataset_version.updated")
    }
    assert updates[str(orders)] == {
        "produced_by": [None, str(_id("export"))],
        "schema": [[{"name": "id", "type": "long", "description": ""}], written],
    }
    # the writer gave no schema for the customers: the reader's stays
    customers = DatasetVersion.objects.get(dataset__name="customers", version="v5")
    assert customers.produced_by.run_id == _id("export")
    assert [f["name"] for f in customers.schema] == ["id", "name"]
    assert "schema" not in updates[str(customers)]


def _registered_version(pipeline, **given):
    """Version v1 of `orders` (catalogued by run x's event, which read it) registered through
    the registry, not through lineage; `produced_by=True` names run x its producer."""
    from registry.models import Dataset
    from registry.services import dataset_version_create

    _map_each(pipeline, [_event("x", "x", "2026-11-01T07:00:00Z", inputs=["orders"])])
    if given.get("produced_by"):
        given["produced_by"] = Run.objects.get(run_id=_id("x"))
    return dataset_version_create(
        actor=pipeline,
        dataset=Dataset.objects.get(namespace=NS, name="orders"),
        version="v1",
        **given,
    )


def test_a_producer_given_through_the_registry_is_kept_when_lineage_names_a_writer(
    pipeline, settings
):
    settings.LINEAGE_MAP_INLINE = False
    version = _registered_version(pipeline, produced_by=True)
    _map_each(pipeline, [_event("y", "y", "2026-11-01T09:00:00Z", outputs=[("orders", "v1")])])
    version.refresh_from_db()
    assert version.produced_by.run_id == _id("x")


def test_a_schema_given_through_the_registry_is_kept_when_lineage_names_a_writer(
    pipeline, settings
):
    settings.LINEAGE_MAP_INLINE = False
    curated = [{"name": "curated", "type": "string", "description": "by hand"}]
    version = _registered_version(pipeline, schema=curated)
    writer = _event("y", "y", "2026-11-01T09:00:00Z")
    writer["outputs"] = [_with_schema("orders", "v1", ("from_pipeline", "string"))]
    _map_each(pipeline, [writer])
    version.refresh_from_db()
    assert (version.schema, version.produced_by.run_id) == (curated, _id("y"))


def test_a_writers_schema_given_on_complete_beats_a_readers_in_the_same_batch(pipeline, settings):
    settings.LINEAGE_MAP_INLINE = False
    start, check, complete, *_ = schemas()
    services.lineage_events_accept(actor=pipeline, payloads=[start, check, complete])
    services.lineage_events_map_all()
    version = DatasetVersion.objects.get(dataset__name="invoices", version="v2")
    assert [(f["name"], f["type"]) for f in version.schema] == [("no", "int"), ("total", "double")]
    assert not version.schema_by_reader


def test_a_second_readers_schema_does_not_replace_the_first_beside_a_writer_giving_none(
    pipeline, settings
):
    """The writer (no schema) and a second reader share a batch: the schema the first reader
    gave stays, as it does when the three are mapped one by one."""
    settings.LINEAGE_MAP_INLINE = False

    def reader(run, time, column):
        event = _event(run, run, time)
        event["inputs"] = [_with_schema("orders", "v1", (column, "string"))]
        return event

    writer = _event("w", "w", "2026-11-01T08:00:00Z", outputs=[("orders", "v1")])
    _map_each(pipeline, [reader("r1", "2026-11-01T09:00:00Z", "r1")])
    services.lineage_events_accept(
        actor=pipeline, payloads=[writer, reader("r2", "2026-11-01T10:00:00Z", "r2")]
    )
    services.lineage_events_map_all()
    version = DatasetVersion.objects.get(dataset__name="orders", version="v1")
    assert [f["name"] for f in version.schema] == ["r1"]
    assert version.produced_by.run_id == _id("w")


@pytest.mark.parametrize("order", ["time", "reversed"])
def test_of_two_writers_or_readers_giving_a_version_different_schemas_the_earliest_stands(
    pipeline, settings, order
):
    """One by one, in event-time order or the reverse: the same schemas, and each change
    of one audited with what it was."""
    settings.LINEAGE_MAP_INLINE = False
    events = sorted(rival_schemas(), key=lambda e: e["eventTime"])
    _map_each(pipeline, events if order == "time" else events[::-1])

    def columns(name):
        version = DatasetVersion.objects.get(dataset__name=name)
        return [(f["name"], f["type"]) for f in version.schema], version.schema_by_reader

    assert columns("sales") == ([("id", "int")], False)  # the START's, not the COMPLETE's
    assert columns("stock") == ([("qty", "int")], True)  # the reader at 08:30, not 09:00
    assert columns("prices") == ([("eur", "double")], True)  # one moment: the lesser JSON
    assert columns("ledger") == ([("x", "int")], False)  # spark-a's START, the earlier
    updated = AuditEvent.objects.filter(action="registry.dataset_version.updated")
    # in time order, only the reader's schema filling the version its writer gave none;
    # reversed, also each earlier schema replacing a later one (sales, stock, prices), and
    # Spark's two STARTs filling then replacing the version their COMPLETEs named first
    changed = sum("schema" in event.changes for event in updated)
    assert changed == (1 if order == "time" else 5)


def test_a_schema_given_again_by_an_earlier_event_keeps_it_against_a_later_rival(
    pipeline, settings, client, superuser
):
    """A reader at 11:00 gives A; one at 09:00 gives A too (only the time moves); one at 10:00
    gives B: A stands, as it does when the three arrive in time order."""
    settings.LINEAGE_MAP_INLINE = False

    def reader(run, time, column):
        event = _event(run, run, time)
        event["inputs"] = [_with_schema("orders", "v9", (column, "string"))]
        return event

    _map_each(
        pipeline,
        [
            reader("r11", "2026-11-01T11:00:00Z", "a"),
            reader("r09", "2026-11-01T09:00:00Z", "a"),
            reader("r10", "2026-11-01T10:00:00Z", "b"),
        ],
    )
    version = DatasetVersion.objects.get(dataset__name="orders", version="v9")
    assert [f["name"] for f in version.schema] == ["a"]
    assert version.schema_at.isoformat() == "2026-11-01T09:00:00+00:00"
    client.force_login(superuser)  # and the admin says whose word it is
    page = client.get(f"/admin/registry/datasetversion/{version.pk}/change/").content.decode()
    assert "a reader&#x27;s lineage event of 2026-11-01 09:00:00 UTC" in page


def test_a_run_named_as_a_parent_under_another_job_name_takes_the_job_of_its_own_events(
    pipeline, settings
):
    """The child's parent facet makes the application's run a placeholder under the raw name;
    the application's own events then make it a run of the job they name (audited), instead
    of being rejected as naming another job."""
    from audit.models import AuditEvent

    settings.LINEAGE_MAP_INLINE = False
    events = spark_application()
    _map_each(pipeline, [*events[2:], *events[:2]])  # the SQL job's events first
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    app = Run.objects.get(run_id=_id("app"))
    assert (app.job.name, app.state) == ("glue_job", "COMPLETE")
    assert Run.objects.get(run_id=_id("insert")).parent == app
    audited = AuditEvent.objects.filter(action="lineage.events.mapped").order_by("id")
    changes = [a.changes.get("runs_updated", {}).get(str(app.run_id)) for a in audited]
    assert {"job": ["airflow:raw_app_name", "airflow:glue_job"]}.items() <= next(
        c for c in changes if c and "job" in c
    ).items()


@pytest.mark.parametrize("start_first", [True, False])
def test_a_spark_run_started_under_the_name_unknown_is_a_run_of_the_job_it_completes_under(
    pipeline, settings, start_first
):
    settings.LINEAGE_MAP_INLINE = False
    start, complete, _ = spark_unknown_job()
    _map_each(pipeline, [start, complete] if start_first else [complete, start])
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    run = Run.objects.get(run_id=_id("spark-app"))
    assert (run.job.name, run.state) == ("nightly_app", "COMPLETE")
    assert run.started_at.isoformat() == "2026-11-01T08:00:00+00:00"


def test_a_run_whose_own_events_named_another_job_still_refuses_the_event(pipeline, settings):
    settings.LINEAGE_MAP_INLINE = False
    first = _event("shared-id", "etl", "2026-11-01T10:00:00Z", event_type="START")
    second = _event("shared-id", "other_etl", "2026-11-01T10:05:00Z")
    _map_each(pipeline, [first, second])
    states = dict(LineageEvent.objects.values_list("job_name", "state"))
    assert states == {"etl": "mapped", "other_etl": "rejected"}
    assert "belongs to another job" in LineageEvent.objects.get(job_name="other_etl").reason
    assert Run.objects.get(run_id=_id("shared-id")).job.name == "etl"


@pytest.mark.parametrize("order", ["in time order", "reversed", "latest first", "one batch"])
def test_each_run_facet_holds_the_latest_events_value_whatever_arrives_first(
    pipeline, settings, order
):
    settings.LINEAGE_MAP_INLINE = False
    events = sorted(streaming_checkpoints(), key=lambda e: e["eventTime"])
    if order == "one batch":
        services.lineage_events_accept(actor=pipeline, payloads=events)
        services.lineage_events_map_all()
    else:
        arrival = {
            "in time order": events,
            "reversed": events[::-1],
            # the latest values first, then the earlier ones that gave the same values
            "latest first": sorted(events, key=lambda e: e["eventTime"] < "2026-11-01T10:05"),
        }[order]
        _map_each(pipeline, arrival)
    run = Run.objects.get(run_id=_id("stream"))
    assert (run.state, run.facets["checkpoints"]["completed"]) == ("COMPLETE", 5)
    assert run.facets["owner"] == {"name": "a"}
    assert repr(run.facets["processing_engine"]["v"]) == "1.0"  # as the 10:06 event wrote it
    assert run.facet_times == {
        "checkpoints": "2026-11-01T10:07:00+00:00",
        "processing_engine": "2026-11-01T10:06:00+00:00",
        "owner": "2026-11-01T10:06:30+00:00",
    }


@pytest.mark.parametrize("name", sorted(EVENT_SETS))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_arrival_order_gives_the_same_graph(pipeline, expected, name, data):
    """Each event set on its own (so that every one is drawn), in random orders and batches."""
    events = data.draw(st.permutations(EVENT_SETS[name]), label="arrival order")
    chunks = data.draw(st.integers(min_value=1, max_value=len(events)), label="batch size")
    assert _ingest(pipeline, events, chunks) == expected(name)


def _held_while(first_events, second_events, monkeypatch):
    """Map `first_events` ((poster, event) pairs) and hold that mapper's transaction open once
    it has mapped its first group of events; map `second_events` meanwhile in another; let the
    first go on once the second has finished or waits for a lock. Returns what each mapper
    claimed, or the error it failed with. (Mapping is not scheduled on commit: the caller
    patches `schedule_mapping`.)"""
    import threading
    import time

    from django.db import connection

    original = services._map_batch
    mapped, release = threading.Event(), threading.Event()

    def hold(actor, items, ledger=None):
        out = original(actor, items, ledger)
        mapped.set()
        assert release.wait(timeout=60)
        return out

    results = {}

    def mapper(name):
        try:
            results[name] = services.lineage_events_map().claimed
        except Exception as exc:  # e.g. a deadlock PostgreSQL broke
            results[name] = exc
        finally:
            connection.close()

    def accept(events):
        for poster, event in events:
            services.lineage_events_accept(actor=poster, payloads=[event])

    accept(first_events)
    monkeypatch.setattr(services, "_map_batch", hold)
    first = threading.Thread(target=mapper, args=("first",))
    first.start()
    try:
        assert mapped.wait(timeout=60)
        monkeypatch.setattr(services, "_map_batch", original)
        accept(second_events)
        second = threading.Thread(target=mapper, args=("second",))
        second.start()
        deadline = time.monotonic() + 60
        while second.is_alive() and time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.02)
    finally:
        release.set()
        first.join(timeout=60)
    second.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writer_first", [True, False], ids=["write-then-read", "read-then-write"])
def test_concurrent_mappers_resolve_a_read_as_if_they_had_mapped_in_turn(
    pipeline, settings, monkeypatch, writer_first
):
    """Two mappers side by side, one mapping the harvest that writes the apples, the other
    the filling that reads them later on: however their transactions overlap, the filling
    reads the harvest's apples (each mapper alone would miss the other's uncommitted rows)."""
    settings.LINEAGE_MAP_INLINE = False
    monkeypatch.setattr(services, "schedule_mapping", lambda: None)
    harvest, _, filling, *_ = bakery()
    # the datasets are catalogued already (creating one would make the other mapper wait)
    stocktake = _event(
        "stocktake", "stocktake", "2026-08-01T06:00:00Z", inputs=["apples", "sugar", "cinnamon"]
    )
    services.lineage_events_accept(actor=pipeline, payloads=[stocktake])
    assert services.lineage_events_map().mapped == 1
    first, second = ([harvest], [filling]) if writer_first else ([filling], [harvest])
    first, second = [(pipeline, e) for e in first], [(pipeline, e) for e in second]
    assert _held_while(first, second, monkeypatch) == {"first": 1, "second": 1}
    reads = set(
        Edge.objects.filter(
            relation="input", source__contains=":apples#", target=f"run:{_id('filling-0902')}"
        ).values_list("source", "target")
    )
    assert reads == {
        (f"dataset:{NS}:apples#run:{_id('harvest-sep')}", f"run:{_id('filling-0902')}")
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_mappers_of_two_posters_each_do_not_wait_for_the_other(
    pipeline, owner, settings, monkeypatch
):
    """A batch is mapped poster by poster in one transaction. Mapper X takes the pipeline's
    event on `lake` and then the owner's on `shelf`; mapper Y, beside it, the owner's on
    `shelf` and then the pipeline's on `lake`. Locking each poster's datasets as it comes
    would have X hold `lake` waiting for `shelf` and Y hold `shelf` waiting for `lake` (a
    deadlock PostgreSQL breaks by failing one batch); the batch's datasets are locked at once
    instead, so Y waits for X and both map."""
    settings.LINEAGE_MAP_INLINE = False
    monkeypatch.setattr(services, "schedule_mapping", lambda: None)
    both = [_event("setup", "setup", "2026-08-01T06:00:00Z", inputs=["lake", "shelf"])]
    services.lineage_events_accept(actor=pipeline, payloads=both)
    assert services.lineage_events_map().mapped == 1

    def reads(run, dataset, hour):
        return _event(run, run, f"2026-09-01T{hour:02d}:00:00Z", inputs=[dataset])

    first = [(pipeline, reads("x1", "lake", 1)), (owner, reads("x2", "shelf", 2))]
    second = [(owner, reads("y1", "shelf", 3)), (pipeline, reads("y2", "lake", 4))]
    assert _held_while(first, second, monkeypatch) == {"first": 2, "second": 2}
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
