"""Single-process monitoring ingest figures on PostgreSQL: ms per batch, CPU per batch (this
process, and the PostgreSQL backend serving it) and SQL statements per batch for the batches of
bench/monitoring.py section (a), posted in-process through the DRF test client (token
authentication, the full middleware stack, no HTTP server, no Celery).

    .venv/bin/python bench/monitoring_inprocess.py [--batches 300] [--size 100] [--profile f]

It creates (and drops first) the database of bench/monitoring.py (BENCH_DATABASE_URL, default
`modelgov_bench_monitoring` on 127.0.0.1:5432 as user postgres). Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._procstat import cpu_seconds  # noqa: E402
from bench.monitoring import MODEL, batch, recreate_database, setup  # noqa: E402

# No broker: tasks run in-process (none is queued by the timed batches, which breach nothing).
os.environ["CELERY_BROKER_URL"] = ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--profile", help="write a cProfile of the timed batches to this file")
    parser.add_argument("--queries", action="store_true", help="print the SQL of one batch")
    args = parser.parse_args()
    if args.batches < 24:
        parser.error("--batches must be at least 24: 20 warm up, 3 are counted, the rest timed")
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from core import context

    call_command("migrate", verbosity=0)
    with context.bound(channel="cli"):
        token, _ = setup()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/models/{MODEL}/versions/1/monitoring"
    bodies = [batch(i, args.size) for i in range(args.batches)]

    def post(body: str) -> None:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 201, response.content[:300]

    for body in bodies[:20]:  # warm-up: connection, caches, the token's last use
        post(body)
    # The fewest of three: the audit sealer runs now and then inside a request, and its
    # statements are not the batch's.
    captures = []
    for body in bodies[20:23]:
        with CaptureQueriesContext(connection) as captured:
            post(body)
        captures.append(captured)
    captured = min(captures, key=lambda c: len(c.captured_queries))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    statements = len(captured.captured_queries)
    if args.queries:
        for query in captured.captured_queries:
            print(f"  {query['time']}s  {query['sql'][:300]}")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on the database
    started, cpu_started = time.perf_counter(), time.process_time()
    backend_started = cpu_seconds([backend])
    with profiler or contextlib.nullcontext():
        for body in bodies:
            post(body)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    backend_cpu = cpu_seconds([backend]) - backend_started
    if profiler is not None:
        profiler.dump_stats(args.profile)
    print(
        f"in-process ingest, {len(bodies)} batches of {args.size} points: "
        f"{elapsed / len(bodies) * 1000:.2f} ms/batch, {len(bodies) * args.size / elapsed:,.0f} "
        f"points/s; CPU per batch: this process {cpu / len(bodies) * 1000:.2f} ms, its "
        f"PostgreSQL backend {backend_cpu / len(bodies) * 1000:.2f} ms; {statements} SQL "
        "statements per batch"
    )


if __name__ == "__main__":
    main()
