"""Version numbers stay gapless and unique under concurrent writers (PostgreSQL row locks)."""

import threading

import pytest
from django.db import connection

from registry import services
from registry.models import ModelVersion

THREADS = 8
PER_THREAD = 25


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_version_creation_yields_gapless_unique_numbers(owner, credit_model):
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait(timeout=30)
            for _ in range(PER_THREAD):
                services.model_version_create(actor=owner, model=credit_model)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    numbers = list(
        ModelVersion.objects.filter(model=credit_model)
        .order_by("version")
        .values_list("version", flat=True)
    )
    assert numbers == list(range(1, THREADS * PER_THREAD + 1))
