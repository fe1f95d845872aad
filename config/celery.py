"""The Celery application. Without CELERY_BROKER_URL, tasks run eagerly in-process."""

import gc
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("modelgov")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Full collections between two full collections' worth of young ones (Python's default is 10):
# a mapping batch keeps its decoded events alive while it runs (a few hundred thousand
# objects for 1,000 events), and with the default every batch was walked whole about three
# times, about a tenth of its CPU. Cyclic garbage that survives to the oldest generation
# waits longer to be collected; it is rare in a task's work.
FULL_COLLECTION_EVERY = 100


@worker_init.connect
@worker_process_init.connect
def tune_worker_gc(**_) -> None:
    """Leave what a worker process holds once started (Django, the apps, their modules) out
    of the garbage collector's full collections: they outlive every task, yet each full
    collection walked all of them — a few hundred thousand objects, the largest part of a
    mapping batch's CPU. And run full collections less often (FULL_COLLECTION_EVERY). Tasks'
    own garbage is collected as before.

    Run in the process that runs tasks: the worker's own with `--pool solo`, each pool process
    with the default prefork pool (whose parent runs it too, before it forks: the children
    then share those pages with it rather than copying them)."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
