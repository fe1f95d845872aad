"""Celery tasks of model cards: thin, idempotent wrappers around the services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from core import context
from modelcards import services

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, OSError)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
)
def render_model_card(self, card_id: int) -> str:
    """Render one card; safe to run again for the same id (a redelivery is a no-op or a
    re-render that only one attempt may finish)."""
    with context.bound(channel="task", task_id=self.request.id):
        try:
            card = services.model_card_render(card_id=card_id)
        except SoftTimeLimitExceeded:
            services.model_card_fail(card_id=card_id, error="Rendering took too long.")
            return "failed"
        except TRANSIENT as exc:
            if self.request.retries >= self.max_retries:
                services.model_card_fail(card_id=card_id, error=f"Gave up: {exc}")
                return "failed"
            raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
        except Exception as exc:  # noqa: BLE001 - a permanent failure is recorded on the card
            logger.exception("model card %s failed", card_id)
            services.model_card_fail(card_id=card_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        return "ready" if card is not None else "skipped"


@shared_task
def requeue_stalled_model_cards() -> int:
    """Beat: re-queue (or fail) cards whose rendering stalled because a worker died."""
    with context.bound(channel="task"):
        return services.model_cards_requeue_stalled()
