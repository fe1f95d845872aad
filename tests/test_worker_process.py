"""What a Celery worker process does once started."""

import gc

from celery.signals import worker_init, worker_process_init

from config.celery import FULL_COLLECTION_EVERY, tune_worker_gc


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


def test_a_solo_worker_tunes_its_own_process_too():
    # With `--pool solo` tasks run in the worker's own process, which gets `worker_init`
    # (sending it here would also run Celery's Django fix-up, which expects a real worker).
    assert tune_worker_gc in worker_init._live_receivers(None)
