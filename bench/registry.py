"""Registry figures: version registrations per second and list latency through the API.

Run against a throwaway database, never a real one:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/modelgov_bench \\
        .venv/bin/python bench/registry.py
(without DATABASE_URL it uses a temporary SQLite file). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


if __name__ == "__main__":
    main()
