"""Accept, then map: raw events are stored pending and mapped after commit, in batches, by a
mapper that loses nothing and maps nothing twice."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from audit.models import AuditEvent
from lineage import services
from lineage.models import Edge, LineageEvent
from registry.models import Run
from tests.lineage.conftest import dataset, run_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deferred(settings):
    """A deployment with workers: accepting does not map."""
    settings.LINEAGE_MAP_INLINE = False
    return settings


@pytest.mark.django_db
def test_an_accepted_event_is_pending_until_mapped(post, deferred):
    run_id = uuid.uuid4()
    assert post(run_event(run_id=run_id, outputs=[("s3://x", "out")])).status_code == 201
    event = LineageEvent.objects.get()
    assert event.state == "pending" and not Run.objects.exists()
    result = services.lineage_events_map()
    assert (result.mapped, result.rejected) == (1, 0)
    event.refresh_from_db()
    assert event.state == "mapped" and event.mapped_at is not None
    assert Run.objects.filter(run_id=run_id).exists()
    assert Edge.objects.filter(source=f"run:{run_id}").exists()


@pytest.mark.django_db
def test_the_embedded_default_maps_inline_so_the_graph_shows_at_once(post, settings):
    assert settings.LINEAGE_MAP_INLINE  # no broker configured in the test settings
    post(run_event(outputs=[("s3://x", "out")]))
    assert LineageEvent.objects.get().state == "mapped"


@pytest.mark.django_db
def test_with_workers_the_mapping_task_is_enqueued_when_the_post_commits(
    post, deferred, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post(run_event()).status_code == 201
    assert callbacks  # the task was sent on commit (run eagerly here: no broker in tests)
    assert LineageEvent.objects.get().state == "mapped"


def _trigger(monkeypatch, settings, moments):
    """The tasks _enqueue_mapping sends for commits at `moments`: (sent at, countdown)."""
    from lineage import tasks

    sent = []
    clock = iter(moments)
    now = [0.0]

    def monotonic():
        now[0] = next(clock)
        return now[0]

    monkeypatch.setattr(
        tasks.map_lineage_events,
        "apply_async",
        lambda kwargs, countdown=0: sent.append((now[0], countdown)),
    )
    monkeypatch.setattr(services._Trigger, "due_at", float("-inf"))
    monkeypatch.setattr(services.time, "monotonic", monotonic)
    settings.LINEAGE_MAP_TRIGGER_INTERVAL = 0.1
    for _ in moments:
        services._enqueue_mapping()
    return sent


def test_commits_in_quick_succession_share_their_mapping_tasks(monkeypatch, settings):
    sent = _trigger(monkeypatch, settings, [100.0, 100.02, 100.05, 100.08, 100.5])
    # the first commit's task now; one task due at 100.1 for the next three; then a new one
    assert [countdown for _, countdown in sent] == [0, pytest.approx(0.08), 0]


def test_a_steady_stream_of_commits_sends_one_task_per_interval(monkeypatch, settings):
    moments = [100 + i / 100 for i in range(100)]  # a commit every 10 ms for a second
    sent = _trigger(monkeypatch, settings, moments)
    assert len(sent) == 11  # the first commit's task now, then one due every 0.1 s
    due = sorted(at + countdown for at, countdown in sent)
    for moment in moments:  # each commit is mapped by a task due within the interval
        assert any(moment <= when <= moment + 0.1 + 1e-9 for when in due)


def test_beat_sweeps_pending_events_with_the_mapping_task(settings):
    from config.celery import app
    from lineage import tasks  # noqa: F401 - registers the task

    entry = settings.CELERY_BEAT_SCHEDULE["lineage-map"]
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the mapper's own transaction, not the test's
def test_a_mapping_batch_plans_each_statement_for_its_values(post, deferred, monkeypatch):
    """Its statements pass lists of any length: a plan kept for a prepared statement is not
    used (core.db.plan_each_statement)."""
    seen = []
    map_batch = services._map_batch

    def observed(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            seen.append(cursor.fetchone()[0])
        return map_batch(*args, **kwargs)

    monkeypatch.setattr(services, "_map_batch", observed)
    event = run_event(inputs=[("s3://a", "in")], outputs=[("s3://a", "out")])
    assert post(event).status_code == 201
    services.lineage_events_map()  # maps it unless the commit's task already has
    assert LineageEvent.objects.get().state == "mapped"
    assert seen == ["force_custom_plan"]


@pytest.mark.django_db
def test_the_mapper_claims_the_oldest_event_time_first(post, deferred):
    for day in ("03", "01", "02"):
        post(run_event(job=f"day{day}", time=f"2026-11-{day}T10:00:00Z"))
    services.lineage_events_map(limit=1)
    assert list(LineageEvent.objects.filter(state="mapped").values_list("job_name", flat=True)) == [
        "day01"
    ]


@pytest.mark.django_db
def test_the_claim_orders_and_limits_event_ids_only_and_reads_payloads_of_those(post, deferred):
    """The statement part that sorts pending events and keeps the oldest `limit` selects
    their ids alone: PostgreSQL may sort every pending event to find them, and should not
    carry each one's payload while it does."""
    from django.test.utils import CaptureQueriesContext

    for day in ("03", "01", "02"):
        post(run_event(job=f"day{day}", time=f"2026-11-{day}T10:00:00Z"))
    with CaptureQueriesContext(connection) as queries:
        services.lineage_events_map(limit=2)
    claims = [
        q["sql"] for q in queries if "LIMIT" in q["sql"] and "lineage_lineageevent" in q["sql"]
    ]
    assert len(claims) == 1, claims
    limited = claims[0][: claims[0].index("LIMIT")]
    limited = limited[limited.rindex("SELECT") :]  # the innermost select, the one limited
    assert "payload" not in limited and "payload" in claims[0]
    assert list(
        LineageEvent.objects.filter(state="mapped")
        .order_by("event_time")
        .values_list("job_name", flat=True)
    ) == ["day01", "day02"]


@pytest.mark.django_db
def test_a_run_folded_by_a_later_batch_is_written_and_only_it(post, deferred):
    """A run stored by an earlier batch takes what a later batch's event says about it (state,
    times, facets, parent) in place: its identity, job and creation time stay, and the other
    runs of the batch are left as they were."""
    parent_id, run_id, other_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post(run_event("START", run_id=run_id, time="2026-11-01T10:00:00Z"))
    post(run_event("START", run_id=other_id, job="other", time="2026-11-01T10:00:00Z"))
    post(run_event("START", run_id=parent_id, job="parent", time="2026-11-01T09:00:00Z"))
    services.lineage_events_map()
    before = Run.objects.get(run_id=run_id)
    other = Run.objects.get(run_id=other_id)
    parent = {"run": {"runId": str(parent_id)}, "job": {"namespace": "airflow", "name": "parent"}}
    post(
        run_event(
            "COMPLETE",
            run_id=run_id,
            time="2026-11-01T11:00:00Z",
            run_facets={"parent": parent, "custom": {"_producer": "p", "_schemaURL": "s"}},
        )
    )
    assert services.lineage_events_map().mapped == 1
    after = Run.objects.get(run_id=run_id)
    assert (after.pk, after.job_id, after.created_at) == (
        before.pk,
        before.job_id,
        before.created_at,
    )
    assert (after.state, after.started_at.hour, after.ended_at.hour) == ("COMPLETE", 10, 11)
    assert after.state_time.hour == 11 and "custom" in after.facets
    assert after.parent.run_id == parent_id
    unchanged = Run.objects.get(run_id=other_id)
    assert (unchanged.state, unchanged.ended_at, unchanged.facets) == (
        other.state,
        other.ended_at,
        other.facets,
    )


@pytest.mark.django_db
def test_a_rejected_event_keeps_its_reason_and_the_rest_of_the_batch_maps(post, deferred):
    v = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"}}
    post(run_event(inputs=[dataset("s3://a", "x", **v)], outputs=[dataset("s3://a", "y", **v)]))
    post(
        run_event(
            inputs=[dataset("s3://a", "y", **v)],
            outputs=[dataset("s3://a", "x", **v)],
            time="2026-11-01T11:00:00Z",
        )
    )
    post(run_event(job="fine", time="2026-11-01T12:00:00Z"))
    result = services.lineage_events_map()
    assert (result.mapped, result.rejected) == (2, 1)
    rejected = LineageEvent.objects.get(state="rejected")
    assert "cycle" in rejected.reason
    assert AuditEvent.objects.filter(
        action="lineage.event.rejected", object_id=str(rejected.pk)
    ).exists()


@pytest.mark.django_db
def test_the_events_list_shows_state_and_reason_and_filters_my_rejected_events(
    api, pipeline, pipeline_client, owner
):
    v = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"}}
    pipeline_client.post(
        "/api/v1/lineage",
        run_event(inputs=[dataset("s3://a", "x", **v)], outputs=[dataset("s3://a", "y", **v)]),
        format="json",
    )
    cycle = run_event(inputs=[dataset("s3://a", "y", **v)], outputs=[dataset("s3://a", "x", **v)])
    pipeline_client.post("/api/v1/lineage", cycle, format="json")
    # someone else's rejected event
    api(owner).post(
        "/api/v1/lineage",
        run_event(
            job="other",
            inputs=[dataset("s3://a", "y", **v)],
            outputs=[dataset("s3://a", "x", **v)],
        ),
        format="json",
    )
    body = api(pipeline).get("/api/v1/events/lineage?sortDirection=asc").json()
    assert [m["state"] for m in body["mapping"]] == ["mapped", "rejected", "rejected"]
    assert "cycle" in body["mapping"][1]["reason"]
    mine = api(pipeline).get("/api/v1/events/lineage?state=rejected&mine=true").json()
    assert mine["totalCount"] == 1
    assert mine["events"][0]["run"]["runId"] == cycle["run"]["runId"]
    assert api(pipeline).get("/api/v1/events/lineage?state=lost").status_code == 400


def _post_pending(pipeline, count, monkeypatch):
    """Accepted events left pending: no worker picks them up meanwhile."""
    monkeypatch.setattr(services, "schedule_mapping", lambda: None)
    accepted = services.lineage_events_accept(
        actor=pipeline,
        payloads=[
            run_event(
                run_id=uuid.uuid4(),
                job=f"job{i}",
                time=f"2026-11-01T10:{i:02d}:00Z",
                inputs=[("s3://lake", "in")],
                outputs=[("s3://lake", f"out{i}")],
            )
            for i in range(count)
        ],
    )
    assert len(accepted.stored) == count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_mapper_killed_mid_batch_loses_nothing_and_maps_nothing_twice(
    pipeline, tmp_path, monkeypatch
):
    _post_pending(pipeline, 5, monkeypatch)
    db = connection.settings_dict
    env = {
        **os.environ,
        "SECRET_KEY": "mapper-test",
        "LOG_LEVEL": "WARNING",
        "LINEAGE_MAP_INLINE": "0",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    ready = tmp_path / "ready"
    mapper = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/lineage/killable_mapper.py"), str(ready)], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert mapper.poll() is None, "the mapper exited before stalling"
            assert time.monotonic() < deadline, "the mapper never mapped its first event"
            time.sleep(0.05)
        # mid-batch: the batch is claimed (locked) and written, not committed
        assert set(LineageEvent.objects.values_list("state", flat=True)) == {"pending"}
        os.kill(mapper.pid, signal.SIGKILL)
    finally:
        mapper.kill()
        mapper.wait(timeout=30)
    # The server rolls the dead mapper's transaction back; the next mapper gets every event.
    deadline = time.monotonic() + 30
    while True:
        result = services.lineage_events_map_all()
        if result.claimed or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the killed backend may still hold its row locks for a moment
    assert result.claimed == 5
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    (mapped,) = AuditEvent.objects.filter(action="lineage.events.mapped")
    assert sorted(mapped.changes["events"]) == sorted(
        LineageEvent.objects.values_list("pk", flat=True)
    )
    assert len(mapped.changes["runs_created"]) == 5
    assert Run.objects.count() == 5
    assert Edge.objects.count() == len(set(Edge.objects.values_list("source", "target")))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_mappers_take_disjoint_batches(pipeline, monkeypatch):
    _post_pending(pipeline, 6, monkeypatch)
    original = services._map_batch
    inside, release = threading.Event(), threading.Event()

    def slow(actor, items, ledger=None):
        inside.set()
        release.wait(timeout=30)
        return original(actor, items, ledger)

    results = {}

    def first():
        try:
            results["first"] = services.lineage_events_map(limit=3)
        finally:
            connection.close()

    monkeypatch.setattr(services, "_map_batch", slow)
    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(timeout=30)
    monkeypatch.setattr(services, "_map_batch", original)
    # the first mapper holds its batch: the second skips it instead of waiting
    results["second"] = services.lineage_events_map()
    release.set()
    thread.join(timeout=60)
    assert results["first"].claimed == 3 and results["second"].claimed == 3
    audited = AuditEvent.objects.filter(action="lineage.events.mapped")
    assert len(audited) == 2  # one per batch
    assert sorted(pk for a in audited for pk in a.changes["events"]) == sorted(
        LineageEvent.objects.values_list("pk", flat=True)
    )


def _chain_batch(pipeline, count, monkeypatch):
    """`count` runs, each with START and COMPLETE, each reading the previous run's output
    and a shared table with a 20-field schema: what a busy pipeline sends."""
    from tests.lineage.conftest import schema_facet

    facet = schema_facet(*({"name": f"c{i}", "type": "DOUBLE"} for i in range(20)))
    tag = uuid.uuid4().hex[:6]
    events = []
    for i in range(count):
        run_id = uuid.uuid4()
        for event_type, minute in (("START", 0), ("COMPLETE", 30)):
            events.append(
                run_event(
                    event_type,
                    run_id=run_id,
                    job=f"step{i}",
                    time=f"2026-11-01T{i // 2:02d}:{minute + i % 2 * 10:02d}:00Z",
                    inputs=[
                        dataset("s3://lake", "shared", schema=facet),
                        ("s3://lake", f"{tag}-{i - 1}"),
                    ],
                    outputs=[dataset("s3://lake", f"{tag}-{i}", schema=facet)],
                )
            )
    monkeypatch.setattr(services, "schedule_mapping", lambda: None)
    services.lineage_events_accept(actor=pipeline, payloads=events)
    return len(events)


@pytest.mark.django_db
def test_mapping_a_batch_takes_the_same_number_of_statements_whatever_its_size(
    pipeline, monkeypatch
):
    from django.test.utils import CaptureQueriesContext

    def statements(count):
        claimed = _chain_batch(pipeline, count, monkeypatch)
        with CaptureQueriesContext(connection) as queries:
            assert services.lineage_events_map().claimed == claimed
        return len(queries)

    statements(2)  # the shared table and its features exist from here on
    small, large = statements(3), statements(30)
    # ten times the events (60, creating 30 jobs, runs, datasets and versions): the same
    # statements — the runs and versions are audited in the batch's one event — but for a
    # second audit insert (500 rows each) for the catalogue entities, audited one event each
    # (30 jobs, 30 datasets, 600 features)
    assert small <= large <= small + 1, (small, large)
    assert small < 40, small


@pytest.mark.django_db
def test_runs_that_trained_models_take_the_same_statements_whatever_their_number(
    pipeline, monkeypatch, deferred
):
    """Training runs registered their models; a batch of their later events naming inputs
    (one new, linked to each model; one already linked) links them set-based."""
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(services, "schedule_mapping", lambda: None)
    model = {"_producer": "p", "_schemaURL": "s", "artifactUri": "s3://m/1", "sha256": "ab" * 32}

    def statements(count):
        tag = uuid.uuid4().hex[:6]
        runs = [uuid.uuid4() for _ in range(count)]
        services.lineage_events_accept(
            actor=pipeline,
            payloads=[
                run_event(
                    run_id=run,
                    job=f"{tag}{i}",
                    inputs=[("s3://f", "shared")],
                    outputs=[
                        dataset(
                            "s3://m", f"{tag}{i}", modelgov_model={**model, "name": f"m{tag}{i}"}
                        )
                    ],
                )
                for i, run in enumerate(runs)
            ],
        )
        services.lineage_events_map_all()
        services.lineage_events_accept(
            actor=pipeline,
            payloads=[
                run_event(
                    "RUNNING",
                    run_id=run,
                    job=f"{tag}{i}",
                    time="2026-11-01T10:01:00Z",
                    inputs=[("s3://f", "shared"), ("s3://f", "labels")],
                )
                for i, run in enumerate(runs)
            ],
        )
        with CaptureQueriesContext(connection) as queries:
            assert services.lineage_events_map().mapped == count
        linked = Edge.objects.filter(
            relation="trained_on",
            source="dataset:s3://f:labels#external",
            target__startswith=f"model:m{tag}",
        ).values_list("target", flat=True)
        assert sorted(linked) == sorted(f"model:m{tag}{i}:1" for i in range(count))
        return len(queries)

    statements(2)  # the shared datasets exist from here on
    small, large = statements(3), statements(30)
    assert small <= large <= small + 1, (small, large)


@pytest.mark.django_db
def test_mapping_everything_stops_at_the_first_short_batch(pipeline, monkeypatch, settings):
    """A batch that claims fewer than it may took every event pending when it claimed: no
    further (empty) claim follows; full batches are followed by another."""
    settings.LINEAGE_MAP_BATCH = 4
    claims = []
    claim = services.lineage_events_map

    def counted(**kwargs):
        result = claim(**kwargs)
        claims.append(result.claimed)
        return result

    monkeypatch.setattr(services, "lineage_events_map", counted)
    _chain_batch(pipeline, 1, monkeypatch)  # 2 events: one short batch
    assert services.lineage_events_map_all().claimed == 2
    assert claims == [2]
    claims.clear()
    _chain_batch(pipeline, 4, monkeypatch)  # 8 events: two full batches, then an empty claim
    assert services.lineage_events_map_all().claimed == 8
    assert claims == [4, 4, 0]
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}


@pytest.mark.django_db
def test_a_batch_of_wide_events_maps_in_slices_within_the_databases_value_limits(
    pipeline_client, deferred, monkeypatch
):
    """170 events reading 100 datasets each: 17,000 unversioned reads, whose resolution alone
    would carry 68,000 values in one statement (PostgreSQL takes at most 65,535, SQLite
    32,766). The batch maps in slices, in its one transaction, and every read is an edge."""
    events = [
        run_event(
            job=f"wide-{index % 5}",
            inputs=[("s3://wide", f"table_{(index + k) % 150}") for k in range(100)],
            outputs=[("s3://wide", f"out_{index}")],
            time=f"2026-11-01T10:{index // 60:02d}:{index % 60:02d}.000000Z",
        )
        for index in range(170)
    ]
    for start in range(0, len(events), 100):
        response = pipeline_client.post(
            "/api/v1/lineage/batch", events[start : start + 100], format="json"
        )
        assert response.status_code == 200, response.content[:300]
    slices = []
    map_slice = services._map_isolating_refusals
    monkeypatch.setattr(
        services,
        "_map_isolating_refusals",
        lambda actor, items, ledger: slices.append(len(items)) or map_slice(actor, items, ledger),
    )
    result = services.lineage_events_map(limit=500)
    assert (result.mapped, result.rejected) == (170, 0)
    assert slices == [49, 49, 49, 23]  # 101 inputs and outputs each, at most 5,000 a slice
    assert Edge.objects.filter(relation="input").count() == 170 * 100
    assert Edge.objects.filter(relation="output").count() == 170
    # one audit event for the poster's batch, however many slices it took
    assert AuditEvent.objects.filter(action="lineage.events.mapped").count() == 1


@pytest.fixture
def last_drain(monkeypatch):
    from lineage import tasks

    monkeypatch.setattr(tasks._LastDrain, "began", float("-inf"))
    return tasks._LastDrain


@pytest.mark.django_db
def test_a_task_sent_before_a_complete_drain_began_ends_without_a_query(
    post, deferred, last_drain, django_assert_num_queries
):
    """Its events were committed before it was sent, so that drain's first claim saw them."""
    from lineage import tasks

    post(run_event(outputs=[("s3://x", "out")]))
    first = time.time()
    assert tasks.map_lineage_events.apply(kwargs={"sent_at": first}).get() == 1
    assert last_drain.began >= first
    with django_assert_num_queries(0):
        stale = first - tasks.CLOCK_MARGIN - 1
        assert tasks.map_lineage_events.apply(kwargs={"sent_at": stale}).get() == 0
    # sent after the drain began (or within the clock margin of it): it claims
    post(run_event(outputs=[("s3://x", "out")]))
    assert tasks.map_lineage_events.apply(kwargs={"sent_at": time.time()}).get() == 1
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}


@pytest.mark.django_db
def test_the_beat_sweep_always_claims(post, deferred, last_drain):
    from lineage import tasks

    last_drain.began = time.time() + 3600
    post(run_event(outputs=[("s3://x", "out")]))
    assert tasks.map_lineage_events.apply().get() == 1  # no sent_at: the beat's task


@pytest.mark.django_db
def test_a_drain_cut_short_is_not_taken_for_one_that_got_to_the_end(
    pipeline, monkeypatch, settings, last_drain
):
    from lineage import tasks

    settings.LINEAGE_MAP_BATCH = 4
    _chain_batch(pipeline, 4, monkeypatch)  # 8 events: two full batches
    result = services.lineage_events_map_all(max_batches=1)
    assert (result.claimed, result.drained) == (4, False)
    monkeypatch.setattr(tasks, "lineage_events_map_all", lambda: result)
    tasks.map_lineage_events.apply(kwargs={"sent_at": time.time()})
    assert last_drain.began == float("-inf")  # a later task still claims


def test_a_task_due_later_stands_for_the_commits_until_it_is_due(monkeypatch, settings):
    """Its `sent_at` is when it is due: a commit that relies on it is never older than that,
    so a worker skips it only for a drain that began after every such commit."""
    from types import SimpleNamespace

    from lineage import tasks

    sent = []
    monkeypatch.setattr(
        tasks.map_lineage_events,
        "apply_async",
        lambda kwargs, countdown=0: sent.append((kwargs["sent_at"], countdown)),
    )
    now = [0.0]
    monkeypatch.setattr(
        services, "time", SimpleNamespace(monotonic=lambda: now[0], time=lambda: now[0])
    )
    monkeypatch.setattr(services._Trigger, "due_at", float("-inf"))
    settings.LINEAGE_MAP_TRIGGER_INTERVAL = 0.1
    commits = [100.0, 100.02, 100.05, 100.09]
    for moment in commits:
        now[0] = moment
        services._enqueue_mapping()
    assert sent == [(100.0, 0), (pytest.approx(100.1), pytest.approx(0.08))]
    for moment in commits:  # each commit has a task sent at or after it
        assert any(sent_at >= moment - 1e-9 for sent_at, _ in sent)


@pytest.mark.django_db
def test_an_event_stored_before_a_node_id_check_is_rejected_not_failing_the_batch(
    post, deferred, pipeline
):
    """An event accepted by an earlier release whose names make a node id longer than the
    graph stores (it failed every batch holding it on PostgreSQL) is rejected with the reason;
    the events after it map."""

    # ids of 3,045 bytes: more than an index entry holds (ideographs in no repeating order,
    # which PostgreSQL's compression of index entries does not shrink)
    def ideographs(count, seed):
        return "".join(chr(0x4E00 + (seed + i * 7919) % 20000) for i in range(count))

    namespace, name, field = ideographs(255, 1), ideographs(500, 2), ideographs(255, 3)
    lineage = {"fields": {field: {"inputFields": [
        {"namespace": namespace, "name": name, "field": field}
    ]}}}  # fmt: skip
    wide = run_event(
        outputs=[dataset(namespace, name, columnLineage=lineage)], time="2026-11-01T09:00:00Z"
    )
    LineageEvent.objects.create(
        event_hash="0" * 64,
        kind="RunEvent",
        event_type="COMPLETE",
        event_time="2026-11-01T09:00:00Z",
        job_namespace="airflow",
        job_name="train",
        payload=wide,
        submitted_by=pipeline,
    )
    assert post(run_event(job="fine", outputs=[("s3://lake", "ok")])).status_code == 201
    result = services.lineage_events_map()
    assert (result.mapped, result.rejected) == (1, 1)
    rejected = LineageEvent.objects.get(state="rejected")
    assert rejected.event_hash == "0" * 64
    assert "outputs.0.name" in rejected.reason and "1200 bytes" in rejected.reason
    assert Edge.objects.filter(target__startswith="dataset:s3://lake:ok#").exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_event_the_database_cannot_store_is_rejected_and_the_batch_maps(
    post, deferred, monkeypatch
):
    """Whatever the contract lets through that the database then refuses as data (here a node
    id longer than the edge's column, with the contract's check lifted) is the same on every
    retry: that event is rejected with the database's reason, the others map."""
    from lineage import openlineage

    monkeypatch.setattr(openlineage, "MAX_NODE_ID_CHARS", 10**9)
    source = {"namespace": "s3://" + "n" * 600, "name": "t" * 500, "field": "f" * 50}
    lineage = {"fields": {"a": {"inputFields": [source]}}}
    too_long = run_event(outputs=[dataset("s3://lake", "out", columnLineage=lineage)])
    assert post(too_long).status_code == 201
    assert post(run_event(job="fine", time="2026-11-01T12:00:00Z")).status_code == 201
    result = services.lineage_events_map()
    assert (result.mapped, result.rejected) == (1, 1)
    rejected = LineageEvent.objects.get(state="rejected")
    assert rejected.payload == too_long
    assert "cannot store" in rejected.reason and "too long" in rejected.reason
    assert AuditEvent.objects.filter(
        action="lineage.event.rejected", object_id=str(rejected.pk)
    ).exists()
    assert LineageEvent.objects.get(state="mapped").job_name == "fine"


@pytest.mark.django_db
def test_a_database_error_that_may_pass_on_a_retry_fails_the_batch(post, deferred, monkeypatch):
    """A deadlock or a lost connection is not the event's fault: the batch fails, and stays
    pending for the next mapper."""
    from django.db import OperationalError
    from psycopg import errors

    def deadlock(*args, **kwargs):
        raise OperationalError("deadlock detected") from errors.DeadlockDetected()

    monkeypatch.setattr(services, "_map_batch", deadlock)
    assert post(run_event()).status_code == 201
    with pytest.raises(OperationalError):
        services.lineage_events_map()
    assert LineageEvent.objects.get().state == "pending"
