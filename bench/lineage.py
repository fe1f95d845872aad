"""Lineage figures on PostgreSQL: (a) ingestion throughput from 8 concurrent clients against
gunicorn on 127.0.0.1, (b) upstream query latency of a model version at depth 10 in graphs of
10k, 100k and 1M edges, (c) impact query latency for a dataset feeding 1,000 model versions.

    .venv/bin/python bench/lineage.py [--events 2000] [--sizes 10000,100000,1000000]

It creates (and drops first) its own database `modelgov_bench_lineage` on 127.0.0.1:5432 as
user postgres; set BENCH_DATABASE_URL to use another. Prints figures, asserts nothing.
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
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_lineage"
)
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LINEAGE_MAX_NODES": "100000",
    }
)
PORT = 8765


def recreate_database() -> None:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


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


def bench_ingestion(total_events: int, token: str) -> None:
    import requests

    env = dict(os.environ)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "4",
            "--threads",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{PORT}/api/v1/health", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        clients, per_client = 8, total_events // 8
        latencies: list[float] = []
        errors: list[str] = []
        barrier = threading.Barrier(clients)

        def client(index: int) -> None:
            session = requests.Session()
            session.headers.update(
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            )
            import json

            barrier.wait()
            for step in range(per_client // 2):
                run_id = str(uuid.uuid4())
                for event_type in ("START", "COMPLETE"):
                    body = json.dumps(
                        realistic_event(run_id, event_type, index * 7 + step % 7, step)
                    )
                    start = time.perf_counter()
                    response = session.post(
                        f"http://127.0.0.1:{PORT}/api/v1/lineage", data=body, timeout=30
                    )
                    latencies.append(time.perf_counter() - start)
                    if response.status_code != 201:
                        errors.append(f"{response.status_code} {response.text[:200]}")

        # Warm-up: datasets and features exist from the first events on.
        warm = requests.Session()
        warm.headers.update({"Authorization": f"Bearer {token}"})
        for lane in range(60):
            warm.post(
                f"http://127.0.0.1:{PORT}/api/v1/lineage",
                json=realistic_event(str(uuid.uuid4()), "COMPLETE", lane, 0),
                timeout=30,
            )
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        print(
            f"(a) ingestion, 8 clients → gunicorn (4 workers × 2 threads), "
            f"{len(latencies)} realistic events (3 inputs, 2 outputs, 20-field schemas): "
            f"{len(latencies) / elapsed:.0f} events/s; latency p50 "
            f"{percentile(latencies, 50) * 1000:.0f} ms, p95 "
            f"{percentile(latencies, 95) * 1000:.0f} ms, p99 "
            f"{percentile(latencies, 99) * 1000:.0f} ms; errors {len(errors)}"
        )
        if errors:
            print("    first error:", errors[0])
    finally:
        server.terminate()
        server.wait(timeout=30)


def load_edges(total: int, models: list[str]) -> None:
    """A layered pipeline graph: `lanes` side by side, 20 layers deep; each run reads 3 dataset
    versions of the layer before (its lane and the two next to it) and writes one."""
    from django.db import connection

    layers = 20
    lanes = max(3, total // (4 * layers))
    rows = io.StringIO()

    def line(source: str, target: str, relation: str) -> None:
        rows.write(
            f"{source}\t{target}\t{relation}\t{source.split('#')[0]}\t"
            f"{target.split('#')[0]}\t2026-11-01 00:00:00+00\n"
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
            "target_base, created_at) FROM STDIN"
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
            f"(b) upstream of a model version, depth 10, {count:,} edges (loaded in "
            f"{load:.0f} s): p50 {statistics.median(timings):.1f} ms, p95 "
            f"{percentile(timings, 95):.1f} ms ({statistics.median(node_counts):.0f} nodes "
            "returned; in-process API call, JSON included)"
        )


def bench_impact(client, actor) -> None:
    from django.db import connection

    from lineage.models import Edge
    from registry import services
    from registry.models import RegisteredModel

    source = "dataset:s3://lake:shared/customers#v1"
    Edge.objects.filter(source_base="dataset:s3://lake:shared/customers").delete()
    rows = []
    services.dataset_ensure(actor=actor, namespace="s3://lake", name="shared/customers")
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
            Edge(source=run, target=node, relation="output", source_base=run, target_base=node),
            Edge(
                source=source,
                target=node,
                relation="trained_on",
                source_base=source.split("#")[0],
                target_base=node,
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
        f"(c) impact of a dataset feeding {len(response.json()['models'])} model versions: "
        f"p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    recreate_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from core import context
    from registry import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-pipeline", is_superuser=True)
    user.groups.add(Group.objects.get(name="pipeline"))
    with context.bound(channel="cli"):
        _, token = services.api_token_issue(actor=None, user=user, name="bench")
        bench_ingestion(args.events, token)
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
