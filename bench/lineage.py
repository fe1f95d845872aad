"""Lineage figures on PostgreSQL:

(a) the accept path: single-event POSTs from 8 concurrent clients against gunicorn on
    127.0.0.1 — this tree, and (with --baseline DIR, a checkout of an earlier commit) that
    commit's code in the same run, each on its own database; with the CPU one event costs
    gunicorn's workers and their PostgreSQL backends, which other load on the machine
    disturbs less than the rate;
(b) the batch endpoint: 8 clients posting 100 events per request;
(c) the mapper: events mapped per second by one process, on the events (a) and (b) accepted;
(d) the lag from 201 to mapped at a sustained rate (default 300 events/s), with one Celery
    worker (`--pool solo`, one process) mapping after each commit, once a warm-up event of
    each job the stream names is mapped (its time is printed apart);
(e) upstream query latency of a model version at depth 10 in graphs of 10k, 100k and 1M
    edges; (f) impact query latency for a dataset feeding 1,000 model versions.

    .venv/bin/python bench/lineage.py [--events 2000] [--batches 200] [--rate 300]
        [--seconds 10] [--sizes 10000,100000,1000000] [--baseline /path/to/old/checkout]

It creates (and drops first) its own databases `modelgov_bench_lineage` (and
`modelgov_bench_lineage_base`) on 127.0.0.1:5432 as user postgres; set BENCH_DATABASE_URL to
use another. The broker is BENCH_BROKER_URL (default redis://127.0.0.1:6379/12; the bench
empties that Redis database). BENCH_WORKER_LOG (a file) and BENCH_WORKER_LOG_LEVEL keep the
lag run's worker log. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._procstat import cpu_seconds, schedstat, server_pids  # noqa: E402

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_lineage"
)
BASE_DB_URL = DB_URL + "_base"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LINEAGE_MAX_NODES": "100000",
    }
)
PORT = int(os.environ.get("BENCH_PORT", "8125"))


def recreate_database(url: str = DB_URL) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


BASELINE_SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from core import context
from registry import services
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("bench-pipeline")
user.groups.add(Group.objects.get(name="pipeline"))
with context.bound(channel="cli"):
    print(services.api_token_issue(actor=None, user=user, name="bench")[1])
"""


def baseline_token(directory: str) -> str:
    """Migrate the baseline's database with the baseline's code; a token for its pipeline."""
    recreate_database(BASE_DB_URL)
    env = {**os.environ, "DATABASE_URL": BASE_DB_URL, "PYTHONPATH": directory}
    out = subprocess.run(
        [sys.executable, "-c", BASELINE_SETUP],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def start_server(directory: Path | str, env: dict) -> subprocess.Popen:
    import requests

    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "config.wsgi:application",
            "--chdir",
            str(directory),
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "4",
            "--threads",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            requests.get(f"http://127.0.0.1:{PORT}/api/v1/health", timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    return server


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def schema(prefix: str) -> dict:
    return {
        "_producer": "bench",
        "_schemaURL": "bench",
        "fields": [
            {"name": f"{prefix}_col_{i}", "type": "DOUBLE", "description": f"column {i}"}
            for i in range(20)
        ],
    }


def realistic_event(run_id: str, event_type: str, lane: int, step: int) -> dict:
    """3 inputs and 2 outputs with 20-field schemas, as an Airflow task would send."""
    inputs = [
        {
            "namespace": "postgres://warehouse:5432",
            "name": f"raw.table_{(lane + k) % 50}",
            "facets": {"schema": schema("in")},
        }
        for k in range(3)
    ]
    outputs = [
        {
            "namespace": "s3://lake",
            "name": f"curated/lane_{lane}_{k}",
            "facets": {"schema": schema("out")},
        }
        for k in range(2)
    ]
    return {
        "eventType": event_type,
        "eventTime": f"2026-11-01T00:{step // 60 % 60:02d}:{step % 60:02d}.000000+00:00",
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "airflow", "name": f"dag.task_{lane}", "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
    }


def post_concurrently(
    token: str, per_client: int, batch: int, events_per_step=None
) -> tuple[int, float, list[float], list[str]]:
    """8 clients, each posting `per_client` requests (single events, or arrays of `batch`
    events to /batch) over one keep-alive connection each: (events sent, seconds, request
    latencies, errors). The bodies are built before the clock starts: what is timed is the
    server's work, not the client's JSON encoding."""
    import json

    import urllib3

    clients = 8
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)  # the clients and the clock
    sent = [0] * clients

    def bodies(index: int) -> list[tuple[str, str]]:
        out = []
        for step in range(per_client):
            run_id = str(uuid.uuid4())
            lane = index * 7 + step % 7
            if batch:
                events = [
                    realistic_event(run_id if k % 2 else str(uuid.uuid4()), "COMPLETE", lane, k)
                    for k in range(batch)
                ]
                out.append(("/api/v1/lineage/batch", json.dumps(events)))
            else:
                event_type = ("START", "COMPLETE")[step % 2]
                out.append(
                    (
                        "/api/v1/lineage",
                        json.dumps(realistic_event(run_id, event_type, lane, step)),
                    )
                )
        return out

    def client(index: int) -> None:
        # urllib3, which requests wraps, without requests' per-call session machinery: the
        # client's own CPU, on the server's machine, stays small next to the server's.
        pool = urllib3.HTTPConnectionPool("127.0.0.1", PORT, maxsize=1, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        requests_ = bodies(index)
        barrier.wait()
        for path, body in requests_:
            start = time.perf_counter()
            response = pool.request("POST", path, body=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            sent[index] += batch or 1
            expected = 200 if batch else 201
            if response.status != expected or (batch and response.json()["summary"]["failed"]):
                errors.append(f"{response.status} {response.data[:200].decode(errors='replace')}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()  # every client has its bodies
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(sent), time.perf_counter() - started, latencies, errors


def warm_up(token: str) -> None:
    """60 events from 8 concurrent connections, so that every server worker has served some
    (its imports done, its database connection open) before the clock starts."""
    import requests

    def send(lane: int) -> None:
        warm = requests.Session()
        warm.headers.update({"Authorization": f"Bearer {token}"})
        for step in range(lane, 64, 8):
            warm.post(
                f"http://127.0.0.1:{PORT}/api/v1/lineage",
                json=realistic_event(str(uuid.uuid4()), "COMPLETE", step, 0),
                timeout=30,
            )

    threads = [threading.Thread(target=send, args=(lane,)) for lane in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def bench_accept(label: str, directory, env: dict, token: str, events: int) -> float:
    """Events/s, and the CPU one event costs gunicorn's workers and their PostgreSQL backends
    (measured, unlike the rate, apart from what else the machine runs meanwhile)."""
    server = start_server(directory, env)
    try:
        warm_up(token)
        workers, backends = server_pids(server, env["DATABASE_URL"])
        before = {pid: cpu_seconds([pid]) for pid in workers + backends}
        sent, elapsed, latencies, errors = post_concurrently(token, events // 8, 0)
        # A worker thread that served no warm-up request connects during the run: its
        # backend counts from its start.
        backends = server_pids(server, env["DATABASE_URL"])[1]
        used = [
            sum(cpu_seconds([pid]) - before.get(pid, 0.0) for pid in pids)
            for pids in (workers, backends)
        ]
    finally:
        stop(server)
    rate = sent / elapsed
    print(
        f"(a) accept path, {label}: 8 clients → gunicorn (4 workers × 2 threads), {sent} "
        f"single-event POSTs (3 inputs, 2 outputs, 20-field schemas): {rate:.0f} events/s; "
        f"latency p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 "
        f"{percentile(latencies, 95) * 1000:.0f} ms, p99 "
        f"{percentile(latencies, 99) * 1000:.0f} ms; errors {len(errors)}"
    )
    print(
        f"    CPU per event: gunicorn workers {used[0] / sent * 1000:.2f} ms, PostgreSQL "
        f"backends {used[1] / sent * 1000:.2f} ms (the machine has {os.cpu_count()} CPUs)"
    )
    if errors:
        print("    first error:", errors[0])
    return rate


def bench_batch(token: str, requests_per_client: int) -> float:
    server = start_server(ROOT, dict(os.environ))
    try:
        sent, elapsed, latencies, errors = post_concurrently(token, requests_per_client, 100)
    finally:
        stop(server)
    rate = sent / elapsed
    print(
        f"(b) batch endpoint: 8 clients, {sent} events in arrays of 100: {rate:.0f} events/s; "
        f"request latency p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 "
        f"{percentile(latencies, 95) * 1000:.0f} ms; errors {len(errors)}"
    )
    if errors:
        print("    first error:", errors[0])
    return rate


def accept_untimed(token: str, events: int, batches: int) -> None:
    """The events (a) and (b) accept, posted the same way but not timed: what (c) maps when
    those parts are not taken."""
    server = start_server(ROOT, dict(os.environ))
    try:
        warm_up(token)
        post_concurrently(token, events // 8, 0)
        post_concurrently(token, max(1, batches // 8), 100)
    finally:
        stop(server)


def analyse() -> None:
    """Table statistics as autovacuum keeps them on a running server: the parts before load
    tens of thousands of rows, and a server whose autovacuum is off (or has not come round yet)
    would plan the next part's statements for empty tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def bench_mapper() -> None:
    from django.conf import settings

    from config.celery import tune_worker_gc
    from lineage.models import LineageEvent
    from lineage.services import lineage_events_map_all

    pending = LineageEvent.objects.filter(state="pending").count()
    tune_worker_gc()  # as a worker process does once started
    started, cpu = time.perf_counter(), time.process_time()
    result = lineage_events_map_all()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"(c) mapper, one process, batches of {settings.LINEAGE_MAP_BATCH}: {result.claimed} "
        f"pending events (of {pending}) mapped in {elapsed:.1f} s: "
        f"{result.claimed / elapsed:.0f} events/s, "
        f"{cpu * 1000 / max(1, result.claimed):.2f} ms of this process's CPU per event "
        f"({result.rejected} rejected)"
    )


def bench_lag(token: str, rate: int, seconds: int) -> None:
    """Sustained `rate` events/s (paced, 16 sending threads, urllib3) against gunicorn, one Celery
    worker mapping after each commit; the lag of each event from its 201 to mapped."""
    import json
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    import urllib3
    from django.db.models import F

    from lineage.models import LineageEvent

    flush_broker()
    env = dict(os.environ)
    server = start_server(ROOT, env)
    worker = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "config",
            "worker",
            "--pool",  # as the README advises for the lineage queue
            "solo",
            "--loglevel",
            os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_WORKER_LOG", os.devnull), "w"),  # noqa: SIM115
    )
    before = LineageEvent.objects.count()
    local = threading.local()
    errors: list[str] = []
    total = rate * seconds
    # built before the clock starts, and sent through urllib3 as in (a): the sending
    # threads' own CPU, on the server's machine, stays small next to what is measured
    bodies = [
        json.dumps(realistic_event(str(uuid.uuid4()), "COMPLETE", step % 56, step))
        for step in range(total)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(step: int) -> None:
        pool = getattr(local, "pool", None)
        if pool is None:
            pool = local.pool = urllib3.HTTPConnectionPool("127.0.0.1", PORT, maxsize=1, timeout=30)
        response = pool.request("POST", "/api/v1/lineage", body=bodies[step], headers=headers)
        if response.status != 201:
            errors.append(str(response.status))

    try:
        # The lag of a sustained stream: the worker is ready once it has mapped the warm-up's
        # events, one per job the stream names, so that the jobs, datasets and features exist
        # (their first sight, each feature audited, is a one-off: the bench prints what it
        # cost apart).
        warm = LineageEvent.objects.count()
        first_sight = time.perf_counter()
        warm_up(token)
        deadline = time.time() + 120
        while LineageEvent.objects.filter(state="pending").exists() and time.time() < deadline:
            time.sleep(0.05)
        first_sight = time.perf_counter() - first_sight
        before = LineageEvent.objects.count()
        print(
            f"    warm-up: {before - warm} events posted and mapped in "
            f"{first_sight * 1000:.0f} ms (the first sight of jobs and datasets, if the "
            "earlier parts did not create them)"
        )
        workers, backends = server_pids(server, env["DATABASE_URL"])
        mapper = [worker.pid]  # --pool solo: the worker's own process maps
        cpu_before = {pid: cpu_seconds([pid]) for pid in workers + backends + mapper}
        sched_before = {pid: schedstat(pid) for pid in mapper}
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            for step in range(total):
                delay = started + step / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, step)
        achieved = total / (time.perf_counter() - started)
        deadline = time.time() + 120
        while LineageEvent.objects.filter(state="pending").exists() and time.time() < deadline:
            time.sleep(0.5)
        # what each side spent while the events were sent and mapped (a process that
        # connected or forked meanwhile counts whole)
        later_workers, later_backends = server_pids(server, env["DATABASE_URL"])
        cpu = {
            name: sum(cpu_seconds([pid]) - cpu_before.get(pid, 0) for pid in pids)
            for name, pids in (
                ("gunicorn workers", later_workers),
                ("PostgreSQL backends", later_backends),
                ("the Celery worker", mapper),
            )
        }
        # the process that maps: time on a CPU, and runnable but waiting for one
        ran, waited = (
            sum(schedstat(pid)[index] - sched_before.get(pid, (0.0, 0.0))[index] for pid in mapper)
            for index in (0, 1)
        )
        wall = time.perf_counter() - started
        import redis

        left = redis.Redis.from_url(BROKER_URL).llen("lineage")
    finally:
        stop(worker)
        stop(server)
    lags = [
        lag.total_seconds()
        for lag in LineageEvent.objects.order_by("id")[before:]
        .annotate(lag=F("mapped_at") - F("received_at"))
        .values_list("lag", flat=True)
        if lag is not None
    ] or [timedelta(0).total_seconds()]
    print(
        f"(d) lag from 201 to mapped at {rate} events/s offered ({achieved:.0f}/s sent, "
        f"{seconds} s, one Celery worker): p50 {percentile(lags, 50) * 1000:.0f} ms, p99 "
        f"{percentile(lags, 99) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms "
        f"({len(lags)} events mapped; errors {len(errors)})"
    )
    lag_breakdown(before, len(lags), cpu, left)
    print(
        f"    the mapping process, over the {wall:.1f} s of sending and mapping: "
        f"{ran:.1f} s on a CPU, {waited:.1f} s runnable but waiting for one, the rest "
        "idle or waiting on PostgreSQL and the broker"
    )
    flush_broker()


def lag_breakdown(before: int, mapped: int, cpu: dict[str, float], left: int) -> None:
    """Where (d)'s lag goes. Events mapped together share their `mapped_at`: one batch, whose
    claim came after the last of them was received. An event's lag is its wait for that
    claim (at least until the batch's last event arrived: the worker was mapping the batch
    before) plus the batch's own run (at most its `mapped_at` less that last arrival)."""
    from django.db.models import F, Max, Window

    from lineage.models import LineageEvent

    rows = list(
        LineageEvent.objects.order_by("id")[before:]
        .annotate(last=Window(Max("received_at"), partition_by=[F("mapped_at")]))
        .values_list("mapped_at", "received_at", "last")
    )
    rows = [row for row in rows if row[0] is not None]
    if not rows:
        return
    sizes: dict = {}
    for mapped_at, *_ in rows:
        sizes[mapped_at] = sizes.get(mapped_at, 0) + 1
    waits = [(last - received).total_seconds() for _, received, last in rows]
    runs = [(mapped_at - last).total_seconds() for mapped_at, _, last in rows]
    counts = sorted(sizes.values())
    print(
        f"    batches the worker mapped: {len(counts)}, events per batch p50 "
        f"{percentile(counts, 50):.0f}, max {counts[-1]}; mean lag "
        f"{statistics.mean(waits) * 1000 + statistics.mean(runs) * 1000:.0f} ms = "
        f"{statistics.mean(waits) * 1000:.0f} ms until its batch's last event arrived + "
        f"{statistics.mean(runs) * 1000:.0f} ms from then to mapped (the batch's run, at most)"
    )
    print(
        "    CPU per event meanwhile: "
        + ", ".join(f"{name} {used / mapped * 1000:.2f} ms" for name, used in cpu.items())
        + f"; mapping tasks still queued once all were mapped: {left}"
    )


def load_edges(total: int, models: list[str]) -> None:
    """A layered pipeline graph: `lanes` side by side, 20 layers deep; each run reads 3 dataset
    versions of the layer before (its lane and the two next to it) and writes one."""
    from django.db import connection

    layers = 20
    lanes = max(3, total // (4 * layers))
    rows = io.StringIO()

    def line(source: str, target: str, relation: str) -> None:
        model = next((n.split(":")[1] for n in (source, target) if n.startswith("model:")), "")
        rows.write(
            f"{source}\t{target}\t{relation}\t{source.split('#')[0]}\t"
            f"{target.split('#')[0]}\t{model}\t2026-11-01 00:00:00+00\n"
        )

    for layer in range(1, layers + 1):
        for lane in range(lanes):
            run = f"run:00000000-0000-4000-8000-{layer:04d}{lane:08d}"
            for offset in (-1, 0, 1):
                source_lane = (lane + offset) % lanes
                line(f"dataset:s3://lake:l{layer - 1}/d{source_lane}#v1", run, "input")
            line(run, f"dataset:s3://lake:l{layer}/d{lane}#v1", "output")
    for index, model in enumerate(models):
        lane = (index * 7919) % lanes
        run = f"run:00000000-0000-4000-9000-{index:012d}"
        line(f"dataset:s3://lake:l{layers}/d{lane}#v1", run, "input")
        line(run, model, "output")
        line(f"dataset:s3://lake:l{layers}/d{lane}#v1", model, "trained_on")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE lineage_edge")
        with cursor.cursor.copy(
            "COPY lineage_edge (source, target, relation, source_base, "
            "target_base, model_name, created_at) FROM STDIN"
        ) as copy:
            copy.write(rows.getvalue())
        cursor.execute("ANALYZE lineage_edge")
        cursor.execute("SELECT COUNT(*) FROM lineage_edge")
        return cursor.fetchone()[0]


def bench_upstream(sizes: list[int], client, models: list[str]) -> None:
    for size in sizes:
        started = time.perf_counter()
        count = load_edges(size, models)
        load = time.perf_counter() - started
        timings, node_counts = [], []
        for index in range(200):
            model = models[index % len(models)]
            start = time.perf_counter()
            response = client.get("/api/v1/lineage/upstream", {"nodeId": model, "depth": 10})
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.content[:300]
            node_counts.append(len(response.json()["nodes"]))
        print(
            f"(e) upstream of a model version, depth 10, {count:,} edges (loaded in "
            f"{load:.0f} s): p50 {statistics.median(timings):.1f} ms, p95 "
            f"{percentile(timings, 95):.1f} ms ({statistics.median(node_counts):.0f} nodes "
            "returned; in-process API call, JSON included)"
        )


def bench_impact(client, actor) -> None:
    from django.db import connection

    from lineage.models import Edge
    from registry import ingest, services
    from registry.models import RegisteredModel

    source = "dataset:s3://lake:shared/customers#v1"
    Edge.objects.filter(source_base="dataset:s3://lake:shared/customers").delete()
    rows = []
    ingest.datasets_sync(actor=actor, schemas=[(("s3://lake", "shared/customers"), [])])
    for index in range(1000):
        model_name = f"impact-{index // 10}"
        model = RegisteredModel.objects.filter(
            name=model_name
        ).first() or services.registered_model_create(actor=actor, name=model_name)
        version = services.model_version_create(actor=actor, model=model)
        run = f"run:00000000-0000-4000-a000-{index:012d}"
        node = f"model:{model_name}:{version.version}"
        rows += [
            Edge(
                source=source,
                target=run,
                relation="input",
                source_base=source.split("#")[0],
                target_base=run,
            ),
            Edge(
                source=run,
                target=node,
                relation="output",
                source_base=run,
                target_base=node,
                model_name=model_name,
            ),
            Edge(
                source=source,
                target=node,
                relation="trained_on",
                source_base=source.split("#")[0],
                target_base=node,
                model_name=model_name,
            ),
        ]
    Edge.objects.bulk_create(rows, ignore_conflicts=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE lineage_edge")
    timings = []
    for _ in range(50):
        start = time.perf_counter()
        response = client.get(
            "/api/v1/lineage/impact", {"nodeId": "dataset:s3://lake:shared/customers"}
        )
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    print(
        f"(f) impact of a dataset feeding {len(response.json()['models'])} model versions: "
        f"p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=200, help="batch requests, 100 events each")
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--baseline", help="a checkout of the commit to compare with")
    parser.add_argument(
        "--parts",
        default="accept,batch,mapper,lag,queries",
        help="which figures to take (comma-separated)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    recreate_database()
    flush_broker()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from core import context
    from registry import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-pipeline")
    user.groups.add(Group.objects.get(name="pipeline"))
    with context.bound(channel="cli"):
        _, token = services.api_token_issue(actor=None, user=user, name="bench")
        if "accept" in parts:
            if args.baseline:
                base_env = {
                    **os.environ,
                    "DATABASE_URL": BASE_DB_URL,
                    "PYTHONPATH": args.baseline,
                }
                base_env.pop("CELERY_BROKER_URL")  # as that commit ran: mapping in the request
                base = bench_accept(
                    "baseline " + Path(args.baseline).name,
                    args.baseline,
                    base_env,
                    baseline_token(args.baseline),
                    args.events,
                )
            rate = bench_accept("this tree", ROOT, dict(os.environ), token, args.events)
            if args.baseline:
                print(f"    accept path: {rate / base:.1f}× the baseline's single-event rate")
        if "batch" in parts:
            batch = bench_batch(token, max(1, args.batches // 8))
            if args.baseline and "accept" in parts:
                print(f"    batch endpoint: {batch / base:.1f}× the baseline's single-event rate")
        if "mapper" in parts and not parts & {"accept", "batch"}:
            accept_untimed(token, args.events, args.batches)
        flush_broker()  # the tasks enqueued while no worker ran: the mapper below maps all
        if "mapper" in parts:
            analyse()
            bench_mapper()
        if "lag" in parts:
            analyse()
            bench_lag(token, args.rate, args.seconds)
        if "queries" in parts:
            client = APIClient()
            client.force_authenticate(user)
            models = []
            for index in range(20):
                model = services.registered_model_create(actor=user, name=f"bench-model-{index}")
                version = services.model_version_create(actor=user, model=model)
                models.append(f"model:{model.name}:{version.version}")
            random.seed(7)
            bench_upstream([int(s) for s in args.sizes.split(",")], client, models)
            bench_impact(client, user)


if __name__ == "__main__":
    main()
