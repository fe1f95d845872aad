"""Celery tasks of oversight: thin, idempotent wrappers that take ids."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.db import OperationalError

from core import context


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def evaluate_breaches(self, version_id: int, point_ids: list[int]) -> list[int]:
    """Open alerts (and file re-validations) for points beyond a threshold."""
    from oversight.services import monitoring_breaches_evaluate

    with context.bound(channel="task", task_id=self.request.id):
        return monitoring_breaches_evaluate(version_id=version_id, point_ids=point_ids)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def notify_alert(self, alert_id: int) -> int:
    """E-mail the model's owner and approvers about a new alert (once)."""
    from oversight import notifications

    with context.bound(channel="task", task_id=self.request.id):
        return notifications.alert_opened(alert_id)


@shared_task(bind=True, ignore_result=True)
def open_periodic_reviews(self) -> int:
    """Open the periodic reviews falling due (Celery beat)."""
    from oversight.services import periodic_reviews_open

    with context.bound(channel="task", task_id=self.request.id):
        return periodic_reviews_open()
