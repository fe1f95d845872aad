"""What a Celery worker process does once started."""

import gc

from celery.signals import worker_process_init

from config.celery import FULL_COLLECTION_EVERY


def test_a_started_worker_process_leaves_its_startup_heap_out_of_full_collections():
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    try:
        worker_process_init.send(sender=None)
        # the objects it held at start (Django, the apps) are no longer walked by collections
        assert gc.get_freeze_count() > 10_000
        # and full collections come less often; the young generations' thresholds are kept
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
        assert FULL_COLLECTION_EVERY > before[2]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
