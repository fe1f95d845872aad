"""Audit-log figures on PostgreSQL, in one run: writes/s of one small service operation with
and without auditing (1 and 8 writer processes), plain single-row INSERT commits/s, sealer
throughput, sealing lag p50/p99 under the 8-writer load, and verification speed over
1,000,000 events.

    .venv/bin/python bench/audit.py [--seconds 8] [--events 1000000]

Uses its own database `modelgov_bench_audit` on 127.0.0.1:5432 (dropped and created).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_audit"
)
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def recreate_database() -> None:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def writer(audited: bool, seconds: float, name: str, ready, out) -> None:
    """One writer process: the same small write (a Job row) in its own transaction, with or
    without its audit event, for `seconds` after every writer is ready."""
    import django

    django.setup()
    from django.db import connection, transaction

    from audit.services import audit_record
    from core import context
    from registry.models import Job

    connection.ensure_connection()
    ready.wait()
    done = 0
    deadline = time.monotonic() + seconds
    with context.bound(channel="task"):
        while time.monotonic() < deadline:
            done += 1
            with transaction.atomic():
                job = Job.objects.create(namespace=name, name=f"job-{done}")
                if audited:
                    audit_record(
                        actor=None,
                        action="registry.job.created",
                        target=job,
                        changes={"name": [None, job.name]},
                    )
    out.put(done)


def run_writers(count: int, audited: bool, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    run = uuid.uuid4().hex[:8]
    ready = ctx.Barrier(count + 1)  # released together once every process is set up
    procs = [
        ctx.Process(
            target=writer, args=(audited, seconds, f"w{count}-{audited}-{i}-{run}", ready, out)
        )
        for i in range(count)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def plain_insert_rate(seconds: float) -> float:
    import psycopg

    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_plain (id bigserial primary key, v text)")
        deadline, n = time.time() + seconds, 0
        while time.time() < deadline:
            conn.execute("INSERT INTO bench_plain (v) VALUES ('x')")
            n += 1
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from audit import selectors
    from audit.models import AuditSeal
    from audit.services import audit_seal

    call_command("migrate", verbosity=0)
    print(
        f"plain single-row INSERT commits/s (1 connection): {plain_insert_rate(args.seconds):.0f}"
    )
    for count in (1, 8):
        plain = run_writers(count, False, args.seconds)
        before = AuditSeal.objects.count()
        audited = run_writers(count, True, args.seconds)
        audit_seal()
        print(
            f"{count} writer process(es): {plain:.0f} writes/s without auditing, "
            f"{audited:.0f} with auditing ({audited / plain:.0%})"
        )
        if count == 8:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT EXTRACT(EPOCH FROM s.sealed_at - e.occurred_at) FROM "
                    "audit_auditseal s JOIN audit_auditevent e ON e.id = s.event_id "
                    "WHERE s.seq > %s",
                    [before],
                )
                lags = [row[0] for row in cursor.fetchall()]
            print(
                f"sealing lag under the 8-writer load ({len(lags)} events, sealed after "
                f"each commit): p50 {statistics.median(lags) * 1000:.0f} ms, "
                f"p99 {percentile(lags, 99) * 1000:.0f} ms"
            )

    # A million events, inserted unsealed in bulk, then sealed and verified.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (occurred_at, actor_username, actor_kind, channel, "
            "action, object_type, object_id, object_repr, changes, context, txid) "
            "SELECT now(), 'bench', 'system', 'task', 'registry.job.created', 'registry.job', "
            "g::text, 'job ' || g, jsonb_build_object('name', jsonb_build_array(null, "
            "'job-' || g)), '{}'::jsonb, pg_current_xact_id()::text::bigint "
            "FROM generate_series(1, %s) g",
            [args.events],
        )
    start = time.perf_counter()
    sealed = audit_seal(batch=20_000).sealed
    elapsed = time.perf_counter() - start
    print(f"sealer: {sealed:,} events in {elapsed:.1f} s = {sealed / elapsed:,.0f} events/s")
    start = time.perf_counter()
    result = selectors.verify_chain()
    elapsed = time.perf_counter() - start
    print(
        f"verification: {result.checked:,} events in {elapsed:.1f} s = "
        f"{result.checked / elapsed:,.0f} events/s (ok={result.ok})"
    )


if __name__ == "__main__":
    main()
