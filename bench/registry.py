"""Registry figures: version registrations per second and list latency through the API; then
the native API and the MLflow door side by side, over HTTP against gunicorn.

Run against a throwaway database, never a real one:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/modelgov_bench \\
        .venv/bin/python bench/registry.py
(without DATABASE_URL it uses a temporary SQLite file). Prints figures; asserts nothing.

The doors section registers BENCH_MODELS models (default 10,000; filler rows are inserted in
bulk, not through the services), starts gunicorn (BENCH_WORKERS processes, default 4) on
127.0.0.1:BENCH_PORT (default 8141) and has BENCH_CLIENTS threads (default 8) make
BENCH_REQUESTS requests (default 400) per operation and door: create a version, get a
version, search models by name. Rounds alternate native / MLflow so drift hits both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from core import context  # noqa: E402
from registry import services  # noqa: E402
from registry.models import RegisteredModel  # noqa: E402

VERSIONS = 500
MODELS = 200
LIST_CALLS = 100


def main() -> None:
    call_command("migrate", verbosity=0)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-scientist")
    user.groups.add(Group.objects.get(name="data-scientist"))
    with context.bound(channel="cli"):
        suffix = str(int(time.time()))
        model = services.registered_model_create(actor=user, name=f"bench-{suffix}")
        start = time.perf_counter()
        for _ in range(VERSIONS):
            services.model_version_create(
                actor=user, model=model, metrics={"auc": 0.9}, parameters={"depth": 6}
            )
        elapsed = time.perf_counter() - start
        for index in range(MODELS):
            services.registered_model_create(actor=user, name=f"bench-{suffix}-{index}")
    print(f"database: {django.db.connection.vendor}")
    print(f"version registrations (service, 1 writer): {VERSIONS / elapsed:.0f}/s")

    client = APIClient()
    client.force_authenticate(user)
    timings = []
    for _ in range(LIST_CALLS):
        start = time.perf_counter()
        response = client.get("/api/v1/models/?page_size=50")
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    timings.sort()
    print(
        f"GET /api/v1/models/ (50 per page, {RegisteredModel.objects.count()} models): "
        f"p50 {statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95)]:.1f} ms"
    )


# --- native API vs the MLflow door, over HTTP ----------------------------------------------

BENCH_MODELS = int(os.environ.get("BENCH_MODELS", 10_000))
BENCH_CLIENTS = int(os.environ.get("BENCH_CLIENTS", 8))
BENCH_REQUESTS = int(os.environ.get("BENCH_REQUESTS", 400))
BENCH_PORT = int(os.environ.get("BENCH_PORT", 8141))
BENCH_WORKERS = int(os.environ.get("BENCH_WORKERS", 4))
ROUNDS = 2


def _fill_models(user, prefix: str) -> None:
    """Filler models in bulk (audit events are not the point here)."""
    existing = RegisteredModel.objects.filter(name__startswith=prefix).count()
    RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(name=f"{prefix}{index:06d}", owner=user)
            for index in range(existing, BENCH_MODELS)
        ],
        batch_size=2000,
    )


def _serve() -> subprocess.Popen:
    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DB_CONN_MAX_AGE": "60"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{BENCH_PORT}",
            "--workers",
            str(BENCH_WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{BENCH_PORT}/api/v1/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def _run(calls: list, token: str) -> tuple[float, list[float]]:
    """Make the calls from BENCH_CLIENTS threads; (requests per second, latencies in ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(calls)

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while True:
            with lock:
                if not queue:
                    return
                method, url, payload = queue.pop()
            start = time.perf_counter()
            if method == "GET":
                response = session.get(url, params=payload, timeout=30)
            else:
                response = session.post(url, json=payload, timeout=30)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code not in (200, 201):
                raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:300]}")
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(BENCH_CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(calls) / (time.perf_counter() - start), sorted(latencies)


def doors() -> None:
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-doors")
    user.groups.add(Group.objects.get(name="data-scientist"))
    prefix = "bench-m-"
    _fill_models(user, prefix)
    suffix = str(int(time.time()))
    with context.bound(channel="cli"):
        targets = [
            services.registered_model_create(actor=user, name=f"bench-doors-{suffix}-{i}")
            for i in range(BENCH_CLIENTS)
        ]
        for model in targets:
            services.model_version_create(actor=user, model=model, artifact_uri="s3://b/1")
        _, token = services.api_token_issue(actor=None, user=user, name="bench")
    api = f"http://127.0.0.1:{BENCH_PORT}/api/v1"
    door = f"http://127.0.0.1:{BENCH_PORT}/api/2.0/mlflow"
    n = BENCH_REQUESTS
    models = [m.name for m in targets]
    needles = [f"{prefix}{(i * 7919) % BENCH_MODELS:06d}" for i in range(n)]
    operations = {
        "create version": {
            "native": [
                (
                    "POST",
                    f"{api}/models/{models[i % len(models)]}/versions/",
                    {"artifact_uri": f"s3://b/{i}"},
                )
                for i in range(n)
            ],
            "mlflow": [
                (
                    "POST",
                    f"{door}/model-versions/create",
                    {"name": models[i % len(models)], "source": f"s3://b/{i}"},
                )
                for i in range(n)
            ],
        },
        "get version": {
            "native": [
                ("GET", f"{api}/models/{models[i % len(models)]}/versions/1/", None)
                for i in range(n)
            ],
            "mlflow": [
                (
                    "GET",
                    f"{door}/model-versions/get",
                    {"name": models[i % len(models)], "version": "1"},
                )
                for i in range(n)
            ],
        },
        f"search by name ({RegisteredModel.objects.count()} models)": {
            "native": [("GET", f"{api}/models/", {"name": needle}) for needle in needles],
            "mlflow": [
                ("GET", f"{door}/registered-models/search", {"filter": f"name LIKE '%{needle}%'"})
                for needle in needles
            ],
        },
    }
    server = _serve()
    try:
        print(
            f"\ndoors over HTTP: gunicorn {BENCH_WORKERS} workers, {BENCH_CLIENTS} clients, "
            f"{n} requests per operation, door and round ({ROUNDS} rounds, alternating)"
        )
        for name, calls in operations.items():
            figures: dict[str, list] = {"native": [], "mlflow": []}
            for _ in range(ROUNDS):
                for which in ("native", "mlflow"):
                    figures[which].append(_run(calls[which], token))
            rates = {w: statistics.mean(r for r, _ in figures[w]) for w in figures}
            for which in ("native", "mlflow"):
                lat = sorted(x for _, run in figures[which] for x in run)
                print(
                    f"  {name:<32} {which:<6} {rates[which]:7.0f} req/s  "
                    f"p50 {statistics.median(lat):6.1f} ms  p95 {lat[int(len(lat) * 0.95)]:6.1f} ms"
                )
            extra = 100 * (rates["native"] / rates["mlflow"] - 1)
            print(f"  {'':<32} MLflow door costs {extra:+.1f} %")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
    doors()
