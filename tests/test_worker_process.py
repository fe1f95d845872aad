"""What a Celery worker process does once started."""

import gc

from celery.signals import worker_process_init


def test_a_started_worker_process_leaves_its_startup_heap_out_of_full_collections():
    assert gc.get_freeze_count() == 0
    try:
        worker_process_init.send(sender=None)
        # the objects it held at start (Django, the apps) are no longer walked by collections
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
