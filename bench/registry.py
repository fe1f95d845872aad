"""Registry figures: version registrations per second and list latency through the API; then
the native API and the MLflow door side by side, over HTTP against gunicorn; and, in-process,
SQL statements and milliseconds per request of the same operations.

Run against a throwaway database, never a real one:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/modelgov_bench \\
        .venv/bin/python bench/registry.py [--sections service,doors,inprocess] [--help]
(without DATABASE_URL it uses a temporary SQLite file). Prints figures; asserts nothing.

The doors section registers --models models (default 10,000; filler rows are inserted in
bulk, not through the services, each with one of 50 tags and a `team` label), starts gunicorn
(--workers processes of --threads threads, default 2 × 4) on 127.0.0.1:--port (default 8141)
and has --clients threads (default 8) make --requests requests (default 400) per operation
and door: create a version, get a version, search models by name, search models by tag, and
(native only) register a version, request staging and approve it (three requests, counted as
one flow). Rounds alternate native / MLflow so drift hits both.

The inprocess section makes the same requests through the DRF test client (token
authentication, the full middleware stack, no server) and prints, per operation, the SQL
statements per request and the milliseconds per request; --profile DIR writes a cProfile of
each operation there.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
TAGS = 50
UNIT = "bench-unit"


def service_section() -> None:
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


# --- the operations, shared by the HTTP and the in-process sections -----------------------------

PREFIX = "bench-m-"


def _fill_models(user, count: int) -> None:
    """Filler models in bulk (audit events are not the point here), each with one of TAGS
    tags (`tag07`) and the same as a `team` label."""
    existing = RegisteredModel.objects.filter(name__startswith=PREFIX).count()
    RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(
                name=f"{PREFIX}{index:06d}",
                owner=user,
                tags=[f"tag{index % TAGS:02d}"],
                tags_index=f",tag{index % TAGS:02d},",
                labels={"team": f"tag{index % TAGS:02d}"},
            )
            for index in range(existing, count)
        ],
        batch_size=2000,
    )


class Setup:
    """The users, tokens and target models every section uses."""

    def __init__(self, args: argparse.Namespace):
        from approvals.services import business_unit_appointment_grant

        User = get_user_model()
        self.user, _ = User.objects.get_or_create(username="bench-doors")
        self.user.groups.add(Group.objects.get(name="data-scientist"))
        self.validator, _ = User.objects.get_or_create(username="bench-validator")
        self.validator.groups.add(Group.objects.get(name="model-validator"))
        _fill_models(self.user, args.models)
        suffix = f"{int(time.time())}-{os.getpid()}"
        with context.bound(channel="cli"):
            from approvals.models import BusinessUnitAppointment

            if not BusinessUnitAppointment.objects.filter(
                business_unit=UNIT, user=self.validator, revoked_at__isnull=True
            ).exists():
                business_unit_appointment_grant(
                    actor=None, business_unit=UNIT, grantee=self.validator
                )
            self.targets = [
                services.registered_model_create(
                    actor=self.user, name=f"bench-doors-{suffix}-{i}", business_unit=UNIT
                )
                for i in range(args.clients)
            ]
            for model in self.targets:
                services.model_version_create(actor=self.user, model=model, artifact_uri="s3://b/1")
            _, self.token = services.api_token_issue(actor=None, user=self.user, name="bench")
            _, self.validator_token = services.api_token_issue(
                actor=None, user=self.validator, name="bench"
            )
        self.models = [m.name for m in self.targets]
        self.count = RegisteredModel.objects.count()
        self.model_total = args.models


# A call: (method, path, payload). A flow: a callable(owner_session, validator_session, base).
def operations(setup: Setup, n: int) -> dict[str, dict[str, list]]:
    models = setup.models
    api = "/api/v1"
    door = "/api/2.0/mlflow"
    needles = [f"{PREFIX}{(i * 7919) % setup.model_total:06d}" for i in range(n)]
    tags = [f"tag{(i * 13) % TAGS:02d}" for i in range(n)]
    return {
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
        f"search by name ({setup.count} models)": {
            "native": [("GET", f"{api}/models/", {"name": needle}) for needle in needles],
            "mlflow": [
                ("GET", f"{door}/registered-models/search", {"filter": f"name LIKE '%{needle}%'"})
                for needle in needles
            ],
        },
        f"search by tag ({setup.count} models)": {
            "native": [("GET", f"{api}/models/", {"tag": tag}) for tag in tags],
            "mlflow": [
                ("GET", f"{door}/registered-models/search", {"filter": f"tags.team = '{tag}'"})
                for tag in tags
            ],
        },
        "register + request + approve to staging": {
            "native": [_flow(models[i % len(models)], i) for i in range(n)],
        },
    }


def _flow(model: str, i: int) -> Callable:
    """Register a version with metrics, request staging, approve it (as the validator)."""

    def run(owner, validator, base: str) -> None:
        api = f"{base}/api/v1"
        created = _check(
            owner.post(
                f"{api}/models/{model}/versions/",
                json={"artifact_uri": f"s3://flow/{i}", "metrics": {"auc": 0.9}},
            )
        )
        filed = _check(
            owner.post(
                f"{api}/models/{model}/versions/{created['version']}/promotions",
                json={"to_stage": "staging", "justification": "Bench."},
            )
        )
        approved = _check(
            validator.post(f"{api}/promotions/{filed['id']}/approve", json={"comment": "Checked."})
        )
        if approved["status"] != "approved":
            raise SystemExit(f"flow: {approved}")

    return run


def _check(response, what: str = "") -> dict:
    if response.status_code not in (200, 201):
        raise SystemExit(f"{what}: {response.status_code} {response.content[:300]!r}")
    return response.json()


# --- native API vs the MLflow door, over HTTP ------------------------------------------------

ROUNDS = 2


def _serve(args: argparse.Namespace) -> subprocess.Popen:
    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DB_CONN_MAX_AGE": "60"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{args.port}/api/v1/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def _run(calls: list, setup: Setup, base: str, clients: int) -> tuple[float, list[float]]:
    """Make the calls from `clients` threads; (requests per second, latencies in ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(calls)
    failures: list[BaseException] = []

    def session(token: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        return s

    def client() -> None:
        owner, validator = session(setup.token), session(setup.validator_token)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    call = queue.pop()
                start = time.perf_counter()
                if callable(call):
                    call(owner, validator, base)
                else:
                    method, url, payload = call
                    if method == "GET":
                        response = owner.get(base + url, params=payload, timeout=30)
                    else:
                        response = owner.post(base + url, json=payload, timeout=30)
                    _check(response, f"{method} {url}")
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
        except BaseException as exc:  # noqa: BLE001 - reported after the threads end
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a client failed: {failures[0]}")
    return len(calls) / (time.perf_counter() - start), sorted(latencies)


def doors(args: argparse.Namespace, setup: Setup) -> None:
    n = args.requests
    base = f"http://127.0.0.1:{args.port}"
    server = _serve(args)
    try:
        print(
            f"\ndoors over HTTP: gunicorn {args.workers} workers × {args.threads} threads, "
            f"{args.clients} clients, {n} requests per operation, door and round "
            f"({ROUNDS} rounds, alternating)"
        )
        for name, calls in operations(setup, n).items():
            if args.ops and not any(o in name for o in args.ops):
                continue
            figures: dict[str, list] = {which: [] for which in calls}
            for _ in range(ROUNDS):
                for which in calls:
                    figures[which].append(_run(calls[which], setup, base, args.clients))
            rates = {w: statistics.mean(r for r, _ in figures[w]) for w in figures}
            for which in calls:
                lat = sorted(x for _, run in figures[which] for x in run)
                print(
                    f"  {name:<40} {which:<6} {rates[which]:7.0f} req/s  "
                    f"p50 {statistics.median(lat):6.1f} ms  p95 {lat[int(len(lat) * 0.95)]:6.1f} ms"
                )
            if "mlflow" in rates:
                extra = 100 * (rates["native"] / rates["mlflow"] - 1)
                print(f"  {'':<40} MLflow door costs {extra:+.1f} %")
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the same operations in-process -------------------------------------------------------------


class _TestSession:
    """The slice of requests.Session the flows use, over the DRF test client."""

    def __init__(self, token: str):
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(self, url: str, json=None):
        return self.client.post(url, json, format="json")

    def get(self, url: str, params=None):
        return self.client.get(url, params or {})


def inprocess(args: argparse.Namespace, setup: Setup) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    n = args.inprocess_requests
    owner, validator = _TestSession(setup.token), _TestSession(setup.validator_token)
    print(f"\nin-process (test client, {connection.vendor}), {n} requests per operation and door")
    for name, calls in operations(setup, n).items():
        if args.ops and not any(o in name for o in args.ops):
            continue
        for which, items in calls.items():
            for call in items[:3]:  # warm up
                _inprocess_call(call, owner, validator)
            profile = cProfile.Profile() if args.profile else None
            statements = 0
            start = time.perf_counter()
            for call in items[3:]:
                with CaptureQueriesContext(connection) as captured:
                    if profile:
                        profile.enable()
                    _inprocess_call(call, owner, validator)
                    if profile:
                        profile.disable()
                statements += len(captured)
            elapsed = time.perf_counter() - start
            done = len(items) - 3
            print(
                f"  {name:<40} {which:<6} {statements / done:5.1f} statements  "
                f"{1000 * elapsed / done:6.1f} ms per request"
            )
            if profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                slug = "".join(c if c.isalnum() else "-" for c in name.split(" (")[0])
                profile.dump_stats(Path(args.profile) / f"{slug}-{which}.prof")


def _inprocess_call(call, owner: _TestSession, validator: _TestSession) -> None:
    if callable(call):
        call(owner, validator, "")
        return
    method, url, payload = call
    if method == "GET":
        response = owner.get(url, payload)
    else:
        response = owner.post(url, payload)
    if response.status_code not in (200, 201):
        raise SystemExit(f"{method} {url}: {response.status_code} {response.content[:300]!r}")


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections",
        default="service,doors",
        help="comma-separated: service, doors, inprocess (default: service,doors)",
    )
    parser.add_argument("--models", type=int, default=int(env("BENCH_MODELS", 10_000)))
    parser.add_argument("--clients", type=int, default=int(env("BENCH_CLIENTS", 8)))
    parser.add_argument(
        "--requests",
        type=int,
        default=int(env("BENCH_REQUESTS", 400)),
        help="per operation, door and round over HTTP (flows: three requests each)",
    )
    parser.add_argument("--port", type=int, default=int(env("BENCH_PORT", 8141)))
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", 4)))
    parser.add_argument(
        "--ops", nargs="*", help="only the operations whose name contains one of these words"
    )
    parser.add_argument("--inprocess-requests", type=int, default=103)
    parser.add_argument("--profile", help="inprocess: write a cProfile per operation here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sections = set(args.sections.split(","))
    call_command("migrate", verbosity=0)
    if "service" in sections:
        service_section()
    if sections & {"doors", "inprocess"}:
        setup = Setup(args)
        if "inprocess" in sections:
            inprocess(args, setup)
        if "doors" in sections:
            doors(args, setup)


if __name__ == "__main__":
    main()
