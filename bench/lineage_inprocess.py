"""Single-process lineage ingestion figures on PostgreSQL: events/s and SQL queries per event for
the realistic events of bench/lineage.py section (a), posted in-process through the DRF test
client (token authentication, the full middleware stack, no HTTP server).

    .venv/bin/python bench/lineage_inprocess.py [--events 400] [--profile out.prof]
    .venv/bin/python bench/lineage_inprocess.py --mapper [--events 2000] [--batches 0]
        [--refused 0] [--profile out.prof]

With --mapper, the events are only accepted (stored pending) and then mapped by one
lineage_events_map_all call, which is what is timed (and profiled): events mapped per second,
this process's CPU per event, and the statements per batch of LINEAGE_MAP_BATCH. --batches N
adds the mix bench/lineage.py (c) maps: N arrays of 100 events in which half the events share
one run id (so a run's events span several mapper batches and its row is updated each time).
--refused N has the graph refuse N of the events, spread evenly over them, as it refuses an
event that would close a cycle (once the batch's work is done): the mapper finds them among
the others; the attempts it made are printed.

It creates (and drops first) its own database `modelgov_bench_lineage_inprocess` on
127.0.0.1:5432 as user postgres; set BENCH_DATABASE_URL to use another. Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_lineage_inprocess"
)
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
)

from bench._procstat import cpu_seconds  # noqa: E402
from bench.lineage import realistic_event, recreate_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--profile", help="write a cProfile of the timed events to this file")
    parser.add_argument("--queries", action="store_true", help="print the SQL of one event pair")
    parser.add_argument(
        "--timings", action="store_true", help="print the time spent per kind of statement"
    )
    parser.add_argument("--mapper", action="store_true", help="time the mapper, not the posts")
    parser.add_argument(
        "--batches", type=int, default=0, help="with --mapper: also N arrays of 100 events"
    )
    parser.add_argument(
        "--refused", type=int, default=0, help="with --mapper: N events the graph refuses"
    )
    args = parser.parse_args()
    if args.mapper:
        os.environ["LINEAGE_MAP_INLINE"] = "false"
    recreate_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from core import context
    from registry import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-pipeline")
    user.groups.add(Group.objects.get(name="pipeline"))
    with context.bound(channel="cli"):
        _, token = services.api_token_issue(actor=None, user=user, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(event: dict) -> None:
        body = json.dumps(event)
        response = client.post("/api/v1/lineage", body, content_type="application/json")
        assert response.status_code == 201, response.content[:300]

    # Warm-up, as bench/lineage.py: datasets and features exist from the first events on.
    for lane in range(60):
        post(realistic_event(str(uuid.uuid4()), "COMPLETE", lane, 0))

    events = []
    for step in range(args.events // 2):
        run_id = str(uuid.uuid4())
        for event_type in ("START", "COMPLETE"):
            events.append(realistic_event(run_id, event_type, step % 56, step))
    for index in range(args.batches if args.mapper else 0):
        shared = str(uuid.uuid4())
        events += [
            realistic_event(shared if k % 2 else str(uuid.uuid4()), "COMPLETE", index % 56, k)
            for k in range(100)
        ]

    if args.mapper:
        from lineage import services as lineage

        lineage_schedule = lineage.schedule_mapping
        lineage.schedule_mapping = lambda: None  # no broker here: nothing to enqueue
        lineage.lineage_events_map_all()  # the warm-up's events
        for start in range(0, len(events), 100):
            response = client.post(
                "/api/v1/lineage/batch", events[start : start + 100], format="json"
            )
            assert response.status_code == 200, response.content[:300]
        lineage.schedule_mapping = lineage_schedule
        bench_mapper(args, len(events), connection)
        return

    with CaptureQueriesContext(connection) as captured:
        post(events[0])
        first = len(captured.captured_queries)
        post(events[1])
    second = len(captured.captured_queries) - first
    if args.queries:
        for query in captured.captured_queries:
            print(query["sql"][:300])

    clock = StatementClock(connection, width=70, timed=args.timings)
    backend_cpu = clock.backend_cpu

    wrapper = connection.execute_wrapper(clock) if args.timings else contextlib.nullcontext()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU only: waits on the database excluded
        profiler.enable()
    started, cpu, db_cpu = time.perf_counter(), time.process_time(), backend_cpu()
    with wrapper:
        for event in events[2:]:
            post(event)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    db_cpu = backend_cpu() - db_cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        f"in-process, 1 client, {len(events) - 2} realistic events (3 inputs, 2 outputs, "
        f"20-field schemas): {(len(events) - 2) / elapsed:.1f} events/s, "
        f"{cpu * 1000 / (len(events) - 2):.1f} ms of this process's CPU and "
        f"{db_cpu * 1000 / (len(events) - 2):.1f} ms of its PostgreSQL backend's per event; "
        f"queries: START {first}, COMPLETE {second}"
    )
    clock.report(len(events) - 2, "event")


class StatementClock:
    """An execute wrapper counting the statements it sees and, when `timed`, summing per kind
    of statement (its first `width` characters) the wall time and the CPU of this connection's
    PostgreSQL backend (/proc, same machine: accounted in clock ticks, so a fair share only
    summed over hundreds of statements)."""

    def __init__(self, connection, *, width: int, timed: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]
        self.width, self.timed, self.statements = width, timed, 0
        self.wall: dict[str, list[float]] = {}
        self.db: dict[str, float] = {}

    def backend_cpu(self) -> float:
        return cpu_seconds([self.backend])

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        if not self.timed:
            return execute(sql, params, many, context)
        start, db_start = time.perf_counter(), self.backend_cpu()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split())[: self.width]
            self.wall.setdefault(key, []).append(time.perf_counter() - start)
            self.db[key] = self.db.get(key, 0.0) + self.backend_cpu() - db_start

    def report(self, per: int, unit: str) -> None:
        """Each kind of statement, costliest first: ms and PostgreSQL CPU per `unit`, and how
        many times it ran per `unit` (`per` of them)."""
        for key, spent in sorted(self.wall.items(), key=lambda item: -sum(item[1])):
            print(
                f"  {sum(spent) * 1000 / per:7.2f} ms/{unit} (PostgreSQL CPU "
                f"{self.db[key] * 1000 / per:5.2f}) {len(spent) / per:5.2f}×  {key}"
            )


def bench_mapper(args, count: int, connection) -> None:
    from django.conf import settings

    from config.celery import tune_worker_gc
    from lineage.services import lineage_events_map_all

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU only
        profiler.enable()
    clock = StatementClock(connection, width=90, timed=args.timings)
    attempts = refuse(args.refused, count) if args.refused else None
    tune_worker_gc()  # as a worker process does once started (config/celery.py)
    started, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(clock):
        result = lineage_events_map_all()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    batches = -(-count // settings.LINEAGE_MAP_BATCH)
    print(
        f"mapper in-process, one call, batches of {settings.LINEAGE_MAP_BATCH}: "
        f"{result.claimed} of {count} realistic events mapped ({result.rejected} rejected) in "
        f"{elapsed:.2f} s: {result.claimed / elapsed:.0f} events/s, "
        f"{cpu * 1000 / max(1, result.claimed):.2f} ms of this process's CPU per event; "
        f"{clock.statements / batches:.0f} statements per batch"
    )
    if attempts is not None:
        print(f"    {args.refused} refused: {len(attempts)} attempts to map parts of batches")
    clock.report(batches, "batch")


def refuse(refused: int, count: int) -> list[int]:
    """Have the graph refuse `refused` pending events, spread evenly, as it refuses one that
    would close a cycle (after the work of the part holding it); returns the sizes of the
    parts the mapper tries, as it tries them."""
    from lineage import services
    from lineage.models import LineageEvent

    pending = list(
        LineageEvent.objects.filter(state="pending")
        .order_by("event_time", "id")
        .values_list("pk", flat=True)
    )
    chosen = set(pending[:: max(1, count // refused)][:refused])
    attempts: list[int] = []
    map_batch = services._map_batch

    def refusing(actor, items, ledger):
        attempts.append(len(items))
        out = map_batch(actor, items, ledger)
        if any(event.pk in chosen for event, _ in items):
            raise services.CycleRefused(["dataset:bench:x#1", "run:bench", "dataset:bench:x#1"])
        return out

    services._map_batch = refusing
    return attempts


if __name__ == "__main__":
    main()
