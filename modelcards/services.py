"""Requesting, rendering and downloading model cards."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import audit_record, audit_seal
from core.errors import Conflict
from modelcards import selectors
from modelcards.models import CardStatus, ModelCard
from modelcards.render import html_to_pdf
from registry.models import ModelVersion
from registry.permissions import can_view_model

logger = logging.getLogger(__name__)
READER_ROLES = ("auditor", "risk-officer", "model-validator")


def can_read_cards(user: Any, version: ModelVersion) -> bool:
    """Auditors, risk officers, model validators, the model's owners (and superusers)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser or version.model.owner_id == user.pk:
        return can_view_model(user, version.model)
    return (
        can_view_model(user, version.model) and user.groups.filter(name__in=READER_ROLES).exists()
    )


def require_read_cards(user: Any, version: ModelVersion) -> None:
    if not can_read_cards(user, version):
        raise PermissionDenied(
            "Model cards are for auditors, risk officers, model validators and the model's owner."
        )


@transaction.atomic
def model_card_request(
    *, actor: AbstractBaseUser, version: ModelVersion, force: bool = False
) -> tuple[ModelCard, bool]:
    """A card for the version's current content and record: the existing one (ready or under
    way, requested after the record last changed: a card from before an approval would show
    the version in its former stage) unless `force`, else a new card queued for rendering.
    Returns (card, created)."""
    require_read_cards(actor, version)
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if not force:
        cards = ModelCard.objects.filter(
            version=version,
            content_digest=version.content_digest,
            status__in=[CardStatus.READY, CardStatus.QUEUED, CardStatus.RENDERING],
        )
        changed_at = selectors.record_changed_at(version)
        if changed_at is not None:
            cards = cards.filter(created_at__gte=changed_at)
        existing = cards.order_by("-created_at").first()
        # A card stuck under way (its worker died) is given up, and a new one is rendered.
        if existing is not None and not _give_up_if_stuck(existing):
            return existing, False
    card = ModelCard.objects.create(
        version=version, content_digest=version.content_digest, requested_by=actor
    )
    audit_record(
        actor=actor,
        action="modelcards.model_card.requested",
        target=card,
        changes={"version": str(version), "content_digest": version.content_digest, "force": force},
    )
    from modelcards.tasks import render_model_card

    render_model_card.delay_on_commit(card.pk)
    return card, True


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.MODEL_CARD_STALE_SECONDS)


def _stuck(card: ModelCard, cutoff: Any) -> bool:
    if card.status == CardStatus.RENDERING:
        return card.started_at is not None and card.started_at < cutoff
    return card.status == CardStatus.QUEUED and card.created_at < cutoff


def _give_up_if_stuck(card: ModelCard) -> bool:
    """Fail a card that has not progressed within MODEL_CARD_STALE_SECONDS (conditional on
    the state it was seen in: a worker that progressed meanwhile keeps it). True if failed."""
    cutoff = _stale_before()
    if not _stuck(card, cutoff):
        return False
    failed = _finish_if_unchanged(
        card,
        CardStatus.FAILED,
        f"Stalled: no progress for {settings.MODEL_CARD_STALE_SECONDS} s; a new card was "
        "requested.",
        action="modelcards.model_card.failed",
    )
    return failed


def _finish_if_unchanged(card: ModelCard, status: str, error: str, *, action: str) -> bool:
    """Move a card that is still as it was read (status and attempt) to `status`, audited."""
    with transaction.atomic():
        changed = ModelCard.objects.filter(
            pk=card.pk, status=card.status, attempt=card.attempt
        ).update(
            status=status,
            error=error[:5000],
            finished_at=timezone.now() if status == CardStatus.FAILED else None,
        )
        if not changed:
            return False
        audit_record(
            actor=None,
            action=action,
            target=card,
            changes={"status": [card.status, status], "attempt": card.attempt, "error": error},
        )
    return True


def model_cards_requeue_stalled() -> int:
    """Re-queue cards whose rendering has not progressed within MODEL_CARD_STALE_SECONDS
    (the worker died); a card that stalled MODEL_CARD_MAX_ATTEMPTS times fails. Each card in
    its own transaction, conditional on the state it was seen in. Run by Celery beat."""
    from modelcards.tasks import render_model_card

    cutoff = _stale_before()
    stalled = ModelCard.objects.filter(status=CardStatus.RENDERING, started_at__lt=cutoff)
    handled = 0
    for card in stalled.only("pk", "status", "attempt", "started_at"):
        if card.attempt >= settings.MODEL_CARD_MAX_ATTEMPTS:
            handled += _finish_if_unchanged(
                card,
                CardStatus.FAILED,
                f"Rendering stalled {card.attempt} times; request the card again.",
                action="modelcards.model_card.failed",
            )
            continue
        with transaction.atomic():
            if _finish_if_unchanged(
                card,
                CardStatus.QUEUED,
                f"Attempt {card.attempt} stalled; queued again.",
                action="modelcards.model_card.requeued",
            ):
                render_model_card.delay_on_commit(card.pk)
                handled += 1
    return handled


def _claim(card_id: int) -> int | None:
    """Take the card for rendering; the attempt number, or None when it needs no work."""
    with transaction.atomic():
        updated = ModelCard.objects.filter(
            pk=card_id, status__in=[CardStatus.QUEUED, CardStatus.RENDERING]
        ).update(status=CardStatus.RENDERING, attempt=F("attempt") + 1, started_at=timezone.now())
        if not updated:
            return None
        return ModelCard.objects.values_list("attempt", flat=True).get(pk=card_id)


def _write_atomically(relative: str, data: bytes) -> Path:
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".pdf")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def model_card_render(*, card_id: int) -> ModelCard | None:
    """Render a queued card. Safe to run twice (a redelivered task): only the latest claim
    may finish it, so one file and one audit event come of it."""
    attempt = _claim(card_id)
    if attempt is None:
        return None
    card = ModelCard.objects.select_related(
        "version__model__owner", "version__created_by", "version__training_run__job"
    ).get(pk=card_id)
    version = card.version
    if version.content_digest != card.content_digest:
        return _finish_failed(
            card, attempt, "The version changed after the card was requested; request a new card."
        )
    audit_seal(wait=True)  # the card's chain status and trail read a freshly sealed log
    html = render_to_string("modelcards/model_card.html", selectors.card_context(version))
    pdf, pages = html_to_pdf(html)
    digest = hashlib.sha256(pdf).hexdigest()
    # The attempt is in the name: two attempts may render identical bytes, and the loser
    # must delete only its own file.
    relative = (
        f"modelcards/{version.model.name}-v{version.version}-card{card.pk}-{attempt}-"
        f"{digest[:12]}.pdf"
    )
    path = _write_atomically(relative, pdf)
    with transaction.atomic():
        won = ModelCard.objects.filter(
            pk=card.pk, status=CardStatus.RENDERING, attempt=attempt
        ).update(
            status=CardStatus.READY,
            file=relative,
            sha256=digest,
            size=len(pdf),
            page_count=pages,
            finished_at=timezone.now(),
            error="",
        )
        if not won:
            path.unlink(missing_ok=True)  # a later attempt owns the card
            return None
        card.refresh_from_db()
        audit_record(
            actor=None,
            action="modelcards.model_card.rendered",
            target=card,
            changes={
                "sha256": digest,
                "size": len(pdf),
                "pages": pages,
                "file": relative,
                "content_digest": card.content_digest,
            },
        )
    return card


def _finish_failed(card: ModelCard, attempt: int, error: str) -> ModelCard | None:
    with transaction.atomic():
        won = ModelCard.objects.filter(
            pk=card.pk, status=CardStatus.RENDERING, attempt=attempt
        ).update(status=CardStatus.FAILED, error=error[:5000], finished_at=timezone.now())
        if not won:
            return None
        card.refresh_from_db()
        audit_record(
            actor=None,
            action="modelcards.model_card.failed",
            target=card,
            changes={"error": error[:500]},
        )
    return card


def model_card_fail(*, card_id: int, error: str) -> None:
    """Record a rendering that failed for good (retries exhausted or a permanent error)."""
    card = ModelCard.objects.get(pk=card_id)
    _finish_failed(card, card.attempt, error)


@transaction.atomic
def model_card_download(*, actor: AbstractBaseUser, card: ModelCard) -> ModelCard:
    """Record (audit) that the actor downloads a ready card."""
    require_read_cards(actor, card.version)
    if card.status != CardStatus.READY:
        raise Conflict(f"The card is {card.status}; it can be downloaded once ready.")
    audit_record(
        actor=actor,
        action="modelcards.model_card.downloaded",
        target=card,
        changes={"sha256": card.sha256},
    )
    return card
