"""Celery tasks of the webhooks app: thin, idempotent wrappers that take ids."""

from __future__ import annotations

from celery import current_app, shared_task

from core import context


@shared_task(bind=True, acks_late=True, ignore_result=True)
def deliver_webhook(self, delivery_id: int) -> str | None:
    """Attempt one delivery; on failure schedule the next attempt with backoff."""
    from webhooks import services

    with context.bound(channel="task", task_id=self.request.id):
        delivery = services.delivery_attempt(delivery_id=delivery_id)
    if delivery is None:
        return None
    if delivery.next_attempt_at is not None and not current_app.conf.task_always_eager:
        # In-process (no broker) a countdown would not wait: the beat sweep retries instead.
        deliver_webhook.apply_async((delivery_id,), eta=delivery.next_attempt_at)
    return delivery.status


@shared_task(bind=True, ignore_result=True)
def deliver_due_webhooks(self) -> int:
    """Celery beat: queue the retries that are due and any delivery never queued."""
    from webhooks import services

    with context.bound(channel="task", task_id=self.request.id):
        due = services.deliveries_due()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)
