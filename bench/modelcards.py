"""Model-card figures on PostgreSQL: render time p50/p95 of a typical card (20 metrics, 10
training datasets, ~30 lineage nodes, 50 audit events on the version) in-process, and cards
per minute with 2 Celery workers against Redis.

    .venv/bin/python bench/modelcards.py [--renders 20] [--cards 60]

Uses its own database `modelgov_bench_cards` on 127.0.0.1:5432 (dropped and created) and Redis
database 14 on 127.0.0.1:6379. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modelgov_bench_cards"
)
BROKER = "redis://127.0.0.1:6379/14"
MEDIA = tempfile.mkdtemp(prefix="modelgov-cards-")
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MEDIA_ROOT": MEDIA,
    }
)


def recreate_database() -> None:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def typical_version(user):
    from lineage import services as lineage
    from registry import services

    model = services.registered_model_create(
        actor=user, name="bench-credit", risk_tier="high", business_unit="Retail Lending"
    )
    run_id = uuid.uuid4()
    inputs = [
        {
            "namespace": "postgres://warehouse:5432",
            "name": f"public.table_{i}",
            "facets": {
                "schema": {"fields": [{"name": f"col_{j}", "type": "DOUBLE"} for j in range(8)]}
            },
        }
        for i in range(10)
    ]
    for i in range(5):  # upstream ETL, so the drawing holds ~30 nodes
        lineage.lineage_events_accept(
            actor=user,
            payloads=[
                {
                    "eventType": "COMPLETE",
                    "eventTime": "2026-11-01T00:00:00Z",
                    "producer": "bench",
                    "run": {"runId": str(uuid.uuid4())},
                    "job": {"namespace": "airflow", "name": f"etl_{i}"},
                    "inputs": [{"namespace": "s3://raw", "name": f"dump_{i}"}],
                    "outputs": [inputs[2 * i], inputs[2 * i + 1]],
                }
            ],
        )
    lineage.lineage_events_accept(
        actor=user,
        payloads=[
            {
                "eventType": "COMPLETE",
                "eventTime": "2026-11-01T01:00:00Z",
                "producer": "bench",
                "run": {"runId": str(run_id)},
                "job": {"namespace": "airflow", "name": "train"},
                "inputs": inputs,
                "outputs": [
                    {
                        "namespace": "s3://models",
                        "name": "bench-credit",
                        "facets": {
                            "modelgov_model": {
                                "name": "bench-credit",
                                "sha256": "a" * 64,
                                "metrics": {f"metric_{i}": 0.5 + i / 50 for i in range(20)},
                            }
                        },
                    }
                ],
            }
        ],
    )
    version = model.versions.get()
    for i in range(49):
        version = services.model_version_update(
            actor=user,
            version=version,
            data={"limitations": f"Revision {i}: not validated outside retail lending."},
        )
    return services.model_version_update(
        actor=user,
        version=version,
        data={
            "intended_use": "Probability of default for consumer loans; decision support.",
            "evaluation_summary": "Out-of-time validation on Q3 2026.",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--cards", type=int, default=60)
    args = parser.parse_args()
    recreate_database()
    import django

    django.setup()
    from celery import current_app
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audit.models import AuditEvent
    from core import context
    from modelcards import services
    from modelcards.models import ModelCard

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
    with context.bound(channel="cli"):
        version = typical_version(user)
        events = AuditEvent.objects.filter(
            object_type="registry.modelversion", object_id=str(version.pk)
        ).count()
        timings = []
        for _ in range(args.renders):
            card, _ = services.model_card_request(actor=user, version=version, force=True)
            if ModelCard.objects.get(pk=card.pk).status != "ready":  # eager already rendered
                start = time.perf_counter()
                services.model_card_render(card_id=card.pk)
                timings.append(time.perf_counter() - start)
        if not timings:  # eager mode rendered on commit: time the service directly
            for _ in range(args.renders):
                card = ModelCard.objects.create(
                    version=version, content_digest=version.content_digest
                )
                start = time.perf_counter()
                services.model_card_render(card_id=card.pk)
                timings.append(time.perf_counter() - start)
        pages = (
            ModelCard.objects.filter(status="ready").values_list("page_count", flat=True).first()
        )
        print(
            f"render of a typical card ({len(version.metrics)} metrics, 10 datasets, "
            f"{events} audit events on the version, {pages} pages), in-process, "
            f"{len(timings)} renders: p50 {statistics.median(timings):.2f} s, "
            f"p95 {percentile(timings, 95):.2f} s"
        )

        import redis

        redis.Redis.from_url(BROKER).flushdb()
        from kombu import pools

        current_app.conf.task_always_eager = False
        current_app.conf.broker_url = BROKER
        pools.reset()
        current_app._pool = None
        current_app.amqp._producer_pool = None
        env = {**os.environ, "CELERY_BROKER_URL": BROKER}
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    "solo",
                    "-n",
                    f"bench{i}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(2)
        ]
        try:
            time.sleep(4)  # workers connect
            ids = []
            start = time.perf_counter()
            for _ in range(args.cards):
                card, _ = services.model_card_request(actor=user, version=version, force=True)
                ids.append(card.pk)
            while ModelCard.objects.filter(pk__in=ids, status__in=["queued", "rendering"]).exists():
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
            ready = ModelCard.objects.filter(pk__in=ids, status="ready").count()
            print(
                f"2 Celery workers (solo pool each) on Redis: {ready}/{len(ids)} cards ready in "
                f"{elapsed:.1f} s → {ready / elapsed * 60:.0f} cards/min"
            )
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)


if __name__ == "__main__":
    main()
