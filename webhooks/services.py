"""Every write of the webhooks app: subscriptions (audited) and their deliveries."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import urllib3
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from core.canonical import canonical_json
from core.errors import Conflict
from registry.models import RegisteredModel
from registry.permissions import VIEW_MODEL, can_view_model
from webhooks import events, signing, targets
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)
MANAGE = "webhooks.change_webhook"
EDITABLE = ("name", "url", "events", "active")


def _key() -> str:
    return settings.WEBHOOK_SECRET_KEY or settings.SECRET_KEY


def check_url(url: str) -> list[str]:
    """The addresses the URL's host resolves to, once checked against the allow-list."""
    return targets.check_target(url, allow=settings.WEBHOOK_ALLOWED_TARGETS, resolve=resolve)


def resolve(host: str, port: int) -> list[str]:
    return targets._resolve(host, port)


def _check(webhook: Webhook) -> None:
    webhook.full_clean(exclude=["secret_encrypted", "created_by"])
    if not isinstance(webhook.events, list) or not all(isinstance(e, str) for e in webhook.events):
        raise ValidationError({"events": "Must be a list of event types."})
    unknown = sorted(set(webhook.events) - set(events.EVENT_TYPES))
    if unknown:
        raise ValidationError(
            {
                "events": f"Unknown event types: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(events.EVENT_TYPES))}."
            }
        )
    check_url(webhook.url)


def _require_manage(actor: Any) -> None:
    if not getattr(actor, "is_authenticated", False) or not actor.has_perm(MANAGE):
        raise PermissionDenied("Only administrators with the webhooks permission manage webhooks.")


def _require_scope(actor: Any, model: RegisteredModel | None) -> None:
    """A subscriber receives what its creator may see: one model, or every model with the
    global view permission."""
    if model is None and not (actor.is_superuser or actor.has_perm(VIEW_MODEL)):
        raise PermissionDenied(
            "A registry-wide webhook needs permission to see every model; subscribe to one model."
        )


@transaction.atomic
def webhook_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    url: str,
    model: RegisteredModel | None = None,
    events: list[str] | None = None,
) -> tuple[Webhook, str]:
    """Subscribe `url` to events; returns the webhook and its signing secret (shown once)."""
    _require_manage(actor)
    _require_scope(actor, model)
    secret = signing.new_secret()
    webhook = Webhook(
        name=name,
        url=url,
        model=model,
        events=[] if events is None else events,
        secret_encrypted=signing.encrypt(secret, _key()),
        created_by=actor,
    )
    _check(webhook)
    webhook.save()
    audit_record(
        actor=actor,
        action="webhooks.webhook.created",
        target=webhook,
        changes={
            "name": [None, name],
            "url": [None, url],
            "model": [None, model.name if model else None],
            "events": [None, webhook.events],
        },
    )
    return webhook, secret


@transaction.atomic
def webhook_update(
    *, actor: AbstractBaseUser, webhook: Webhook, data: Mapping[str, Any]
) -> Webhook:
    """Change a webhook's name, URL, event types or whether it is active."""
    _require_manage(actor)
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ValidationError({key: "This field cannot be changed here." for key in unknown})
    changes = {}
    for field, value in data.items():
        if getattr(webhook, field) != value:
            changes[field] = [getattr(webhook, field), value]
            setattr(webhook, field, value)
    if not changes:
        return webhook
    _check(webhook)
    webhook.save()
    audit_record(actor=actor, action="webhooks.webhook.updated", target=webhook, changes=changes)
    return webhook


@transaction.atomic
def webhook_secret_rotate(*, actor: AbstractBaseUser, webhook: Webhook) -> str:
    """A new signing secret (returned once); the old one stops signing at once."""
    _require_manage(actor)
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    secret = signing.new_secret()
    webhook.secret_encrypted = signing.encrypt(secret, _key())
    webhook.save(update_fields=["secret_encrypted", "updated_at"])
    audit_record(actor=actor, action="webhooks.webhook.secret_rotated", target=webhook, changes={})
    return secret


def _payload(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}


def _new_delivery(webhook: Webhook, event_type: str, payload: dict) -> WebhookDelivery:
    # Stored as it will be sent (JSON-safe), so a retry signs the same bytes.
    return WebhookDelivery(
        webhook=webhook,
        message_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        payload=json.loads(DjangoJSONEncoder().encode(payload)),
    )


def _enqueue_after_commit(deliveries: list[WebhookDelivery]) -> None:
    from webhooks.tasks import deliver_webhook

    for delivery in deliveries:
        # Robust: a broker outage must not fail the change that already committed; the
        # beat task sweeps deliveries that were never queued.
        transaction.on_commit(partial(deliver_webhook.delay, delivery.pk), robust=True)


def deliveries_create(
    *, raised: Sequence[tuple[events.EventType, AuditEvent, Any]]
) -> list[WebhookDelivery]:
    """Queue one delivery per subscriber of each (event type, audit event, audited object)
    of a batch recorded together, in the recording transaction. One EXISTS when nobody
    subscribes to anything; otherwise one query for the batch's subscriptions (those on its
    models and the registry-wide ones), whatever the batch's size. Not audited itself: the
    audit event that raised it is the record; the deliveries are its log."""
    if not raised:
        return []
    active = Webhook.objects.filter(active=True)
    if not active.exists():
        return []
    about = [(event_type, event, event_type.model(target)) for event_type, event, target in raised]
    hooks = list(
        active.filter(Q(model__isnull=True) | Q(model__in={model.pk for *_, model in about}))
        .select_related("created_by")
        .order_by("name", "id")
    )
    sight: dict[tuple[int, int], bool] = {}  # (creator, model) → may the creator see it?

    def subscribed(hook: Webhook, event_type: str, model: RegisteredModel) -> bool:
        if hook.model_id is not None:
            return hook.model_id == model.pk and (not hook.events or event_type in hook.events)
        if hook.events and event_type not in hook.events:
            return False
        key = (hook.created_by_id, model.pk)
        if key not in sight:
            sight[key] = can_view_model(hook.created_by, model)
        return sight[key]

    deliveries = []
    for event_type, event, model in about:
        data = {
            "model": model.name,
            "object": {"type": event.object_type, "id": event.object_id, "repr": event.object_repr},
            "actor": event.actor_username or None,
            "channel": event.channel,
            "occurred_at": event.occurred_at,
            "changes": event.changes,
        }
        deliveries += [
            _new_delivery(hook, event_type.name, _payload(event_type.name, data))
            for hook in hooks
            if subscribed(hook, event_type.name, model)
        ]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        _enqueue_after_commit(deliveries)
    return deliveries


@transaction.atomic
def webhook_test_send(*, actor: AbstractBaseUser, webhook: Webhook) -> WebhookDelivery:
    """Queue a `webhook.test` event to the webhook (whatever its event types)."""
    _require_manage(actor)
    if not webhook.active:
        raise Conflict("This webhook is inactive; activate it first.")
    delivery = _new_delivery(
        webhook,
        events.TEST_EVENT,
        _payload(events.TEST_EVENT, {"webhook": webhook.name, "sent_by": actor.get_username()}),
    )
    delivery.save()
    audit_record(
        actor=actor,
        action="webhooks.webhook.test_sent",
        target=webhook,
        changes={"delivery": delivery.message_id},
    )
    _enqueue_after_commit([delivery])
    return delivery


# --- sending ----------------------------------------------------------------------------------


def backoff(attempt: int) -> timedelta:
    """Wait before attempt n+1: 30 s, 1 min, 2 min, … doubling, at most 6 hours."""
    return timedelta(seconds=min(30 * 2 ** (attempt - 1), 6 * 3600))


def delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Send a pending delivery once and log the outcome; None when it is not pending (done,
    failed for good, or taken by another worker this instant)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=delivery_id,
        status=DeliveryStatus.PENDING,
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=None)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    body = canonical_json(delivery.payload).encode()
    started = time.monotonic()
    status, error = None, ""
    try:
        address = check_url(delivery.webhook.url)[0]
        secret = signing.decrypt(delivery.webhook.secret_encrypted, _key())
        status = targets.post(
            delivery.webhook.url,
            address,
            body,
            signing.headers(secret, delivery.message_id, int(time.time()), body),
            settings.WEBHOOK_TIMEOUT,
        )
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except ValidationError as exc:
        error = " ".join(exc.messages)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency = int((time.monotonic() - started) * 1000)
    fields = {"response_status": status, "latency_ms": latency, "last_error": error[:500]}
    if not error:
        fields |= {"status": DeliveryStatus.SUCCEEDED, "delivered_at": timezone.now()}
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields |= {"status": DeliveryStatus.FAILED}
    else:
        fields |= {"next_attempt_at": timezone.now() + backoff(delivery.attempts)}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
    if error:
        logger.warning("webhook delivery %s failed: %s", delivery.message_id, error)
    return delivery


def deliveries_due(*, now=None, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due (retries, and any never queued)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.WEBHOOK_TIMEOUT * 2)
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(
            Q(next_attempt_at__lte=now)
            # never queued, or its worker died mid-send
            | (
                Q(next_attempt_at__isnull=True, created_at__lte=stale)
                & (Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lte=stale))
            )
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
