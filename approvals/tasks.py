"""Celery tasks of the approvals workflow: thin, idempotent wrappers that take ids."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from core import context

# E-mail tasks: acknowledged after they ran, retried with backoff while the mail server fails.
NOTIFY_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (OSError, SMTPException),
    "retry_backoff": True,
    "max_retries": 5,
    "ignore_result": True,
}


@shared_task(**NOTIFY_OPTIONS)
def notify_request_filed(self, request_id: int) -> int:
    """E-mail the eligible approvers of a newly filed request (once)."""
    from approvals import notifications

    with context.bound(channel="task", task_id=self.request.id):
        return notifications.send(request_id, notifications.FILED)


@shared_task(**NOTIFY_OPTIONS)
def notify_request_decided(self, request_id: int) -> int:
    """E-mail the requester the outcome of their request (once)."""
    from approvals import notifications

    with context.bound(channel="task", task_id=self.request.id):
        return notifications.send(request_id, notifications.DECIDED)


@shared_task(bind=True, ignore_result=True)
def expire_promotion_requests(self) -> int:
    """Expire pending requests past their expiry (Celery beat)."""
    from approvals.services import promotion_requests_expire

    with context.bound(channel="task", task_id=self.request.id):
        return promotion_requests_expire()
