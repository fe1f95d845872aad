"""The Celery application. Without CELERY_BROKER_URL, tasks run eagerly in-process."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("modelgov")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def freeze_startup_heap(**_) -> None:
    """Leave what a worker process holds once started (Django, the apps, their modules) out
    of the garbage collector's full collections: they outlive every task, yet each full
    collection walked all of them — a few hundred thousand objects, the largest part of a
    mapping batch's CPU. Tasks' own garbage is collected as before."""
    gc.freeze()
