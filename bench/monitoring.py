"""Monitoring figures on PostgreSQL: (a) ingest throughput — 8 concurrent clients posting
batches of 100 points through HTTP to gunicorn on 127.0.0.1; (b) the time from a breaching
point being posted to its alert and the re-validation request being recorded, with a Celery
worker running against Redis.

    .venv/bin/python bench/monitoring.py [--batches 2400] [--breaches 40]

It creates (and drops first) its own database `modelgov_bench_monitoring` on 127.0.0.1:5432
as user postgres; set BENCH_DATABASE_URL to use another, BENCH_BROKER_URL for the Redis
broker (default redis://127.0.0.1:6379/0, flushed first) and BENCH_PORT for gunicorn's port.
Prints figures, asserts nothing. With (a) it prints the CPU time per batch spent by gunicorn's
workers, by the PostgreSQL backends serving them and by this client (Linux /proc): on a
machine shared with other work, throughput varies with the load while CPU per batch says what
one batch costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._procstat import cpu_seconds, server_pids  # noqa: E402

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_monitoring"
)
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
PORT = int(os.environ.get("BENCH_PORT", "8766"))
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": BROKER,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
)
MODEL = "bench-monitored"


def recreate_database() -> None:
    import psycopg
    import redis

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(BROKER).flushdb()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def setup() -> tuple[str, object]:
    """A medium-risk model whose version 1 is in production (through the real approvals),
    threshold rules, and a pipeline account with change rights on the model and a token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from approvals import services as approvals
    from approvals.models import PromotionPolicy
    from oversight import services as oversight
    from registry import services
    from registry.services import model_permission_grant

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", password="x")
    owner = User.objects.create_user("bench-owner")
    owner.groups.add(Group.objects.get(name="data-scientist"))
    pipeline = User.objects.create_user("bench-pipeline")
    pipeline.groups.add(Group.objects.get(name="pipeline"))
    validator = User.objects.create_user("bench-validator")
    validator.groups.add(Group.objects.get(name="model-validator"))
    risk = User.objects.create_user("bench-risk")
    risk.groups.add(Group.objects.get(name="risk-officer"))
    # Rendering a model card per promotion is not what is measured here.
    for policy in PromotionPolicy.objects.filter(to_stage="production"):
        gates = [g for g in policy.approval_gates if g != "model_card_current"]
        approvals.policy_update(actor=admin, policy=policy, data={"approval_gates": gates})
    model = services.registered_model_create(actor=owner, name=MODEL, risk_tier="medium")
    model_permission_grant(
        actor=owner, model=model, grantee=pipeline, permission="change_registeredmodel"
    )
    for approver in (validator, risk):
        approvals.decide_permission_grant(actor=admin, model=model, grantee=approver)
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job, state="COMPLETE")
    version = services.model_version_create(
        actor=pipeline,
        model=model,
        artifact_uri="s3://bench/model.pkl",
        metrics={"auc": 0.84},
        training_run=run,
        intended_use="Bench.",
        limitations="Bench.",
        training_data_summary="Bench.",
        evaluation_summary="Bench.",
    )
    for stage, deciders in (("staging", [validator]), ("production", [validator, risk])):
        request = approvals.promotion_request_file(
            actor=owner, version=version, to_stage=stage, justification="Bench."
        )
        for decider in deciders:
            approvals.promotion_decide(
                actor=decider, request=request, outcome="approve", comment="Bench."
            )
    oversight.threshold_rule_create(
        actor=risk, model=model, metric="auc", comparator="lt", threshold=0.7, revalidate=True
    )
    oversight.threshold_rule_create(
        actor=risk, risk_tier="medium", metric="psi", comparator="gt", threshold=0.25
    )
    _, token = services.api_token_issue(actor=None, user=pipeline, name="bench")
    version.refresh_from_db()
    assert version.stage == "production", version.stage
    return token, version


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def batch(index: int, size: int, value: float | None = None) -> str:
    t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=index)
    points = []
    for k in range(size):
        metric = ("auc", "psi", "latency_ms", "psi")[k % 4]
        points.append(
            {
                "metric": metric,
                "value": value if value is not None else (0.82 if metric == "auc" else 0.05),
                "window_start": t0.isoformat(),
                "window_end": (t0 + timedelta(hours=1)).isoformat(),
                "segment": f"feature_{k % 25}" if metric == "psi" else "",
            }
        )
    return json.dumps({"points": points})


def bench_ingest(token: str, batches: int, size: int, server: subprocess.Popen) -> None:
    import urllib3

    clients, per_client = 8, batches // 8
    bodies = [batch(i, size) for i in range(per_client)]
    latencies: list[float] = []
    errors: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    cpu: dict[str, float] = {}
    pids: dict[str, list[int]] = {}

    def snapshot() -> None:  # once, when every client is warm and about to start
        pids["gunicorn"], pids["postgres"] = server_pids(server, DB_URL)
        cpu.update({name: cpu_seconds(of) for name, of in pids.items()})
        cpu["client"] = time.process_time()

    barrier = threading.Barrier(clients, action=snapshot)
    path = f"/api/v1/models/{MODEL}/versions/1/monitoring"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        # urllib3, which requests wraps, without requests' per-call session machinery: the
        # client's own CPU, on the server's machine, stays small next to the server's.
        pool = urllib3.HTTPConnectionPool("127.0.0.1", PORT, maxsize=1, timeout=30)
        pool.request("POST", path, body=bodies[0], headers=headers)  # connection, warm-up
        barrier.wait()
        starts.append(time.perf_counter())
        for body in bodies:
            started = time.perf_counter()
            response = pool.request("POST", path, body=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status != 201:
                errors.append(f"{response.status} {response.data[:200].decode(errors='replace')}")
        ends.append(time.perf_counter())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(ends) - min(starts)
    used = {name: cpu_seconds(of) - cpu[name] for name, of in pids.items()}
    used["client"] = time.process_time() - cpu["client"]
    points = len(latencies) * size
    print(
        f"(a) ingest, 8 clients → gunicorn (4 workers × 2 threads), {len(latencies)} batches "
        f"of {size} points: {points / elapsed:,.0f} points/s ({len(latencies) / elapsed:.0f} "
        f"batches/s); batch latency p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 "
        f"{percentile(latencies, 95) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f}"
        f" ms; errors {len(errors)}"
    )
    done = max(1, len(latencies))
    per_batch = {name: f"{seconds / done * 1000:.1f} ms" for name, seconds in used.items()}
    print(
        f"    CPU per batch: gunicorn workers {per_batch['gunicorn']}, PostgreSQL backends "
        f"{per_batch['postgres']}, this client {per_batch['client']} "
        f"(the machine has {os.cpu_count()} CPUs)"
    )
    if errors:
        print("    first error:", errors[0])


def bench_breach(token: str, version, rounds: int) -> None:
    """Each round: post one batch holding a breaching AUC, then poll until the alert with its
    re-validation request is committed; the round ends by resolving the alert and having
    the system withdraw its request, so the next breach opens a new alert."""
    import requests
    from django.db import close_old_connections

    from approvals import services as approvals
    from oversight import services as oversight
    from oversight.models import MonitoringAlert

    system = approvals.system_account()
    resolver = type(system).objects.get(username="bench-risk")
    url = f"http://127.0.0.1:{PORT}/api/v1/models/{MODEL}/versions/1/monitoring"
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    timings, missing = [], 0
    for index in range(rounds):
        close_old_connections()
        body = batch(10_000 + index, 100, value=None)
        body = body.replace('"value": 0.82', '"value": 0.61', 1)  # one breaching point
        started = time.perf_counter()
        response = session.post(url, data=body, timeout=30)
        assert response.status_code == 201 and response.json()["breaching"] == 1, response.text
        alert = None
        while time.perf_counter() - started < 30:
            alert = (
                MonitoringAlert.objects.filter(status="open", revalidation_request__isnull=False)
                .select_related("revalidation_request")
                .first()
            )
            if alert is not None:
                break
            time.sleep(0.005)
        if alert is None:
            missing += 1
            continue
        timings.append(time.perf_counter() - started)
        oversight.monitoring_alert_resolve(actor=resolver, alert=alert, comment="Bench round.")
        approvals.promotion_request_cancel(
            actor=system, request=alert.revalidation_request, reason="Bench round."
        )
    print(
        f"(b) breach → alert and re-validation request recorded (HTTP post, commit, Redis, "
        f"worker), {len(timings)} rounds: p50 {percentile(timings, 50) * 1000:.0f} ms, p99 "
        f"{percentile(timings, 99) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms; "
        f"not recorded within 30 s: {missing}"
    )
    version.refresh_from_db()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2400)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--breaches", type=int, default=40)
    args = parser.parse_args()
    recreate_database()
    import django

    django.setup()
    import requests
    from django.core.management import call_command

    from core import context

    call_command("migrate", verbosity=0)
    with context.bound(channel="cli"):
        token, version = setup()
    server = start(
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
        ]
    )
    worker = start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
    )
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{PORT}/api/v1/health", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        bench_ingest(token, args.batches, args.size, server)
        with context.bound(channel="cli"):
            bench_breach(token, version, args.breaches)
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
