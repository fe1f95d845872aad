"""Webhook event types, derived from audit events: one line registers a type.

    register_event("model_version.created", action="registry.model_version.created",
                   model=lambda version: version.model)

`action` is the audit action that raises it, `model` finds the registered model the event is
about from the audited object (for per-model subscriptions and visibility), `when` narrows
which of those events count. Another app adds its own type the same way from its
AppConfig.ready(), e.g. a monitoring alert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from audit.models import AuditEvent

TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class EventType:
    name: str
    action: str
    model: Callable[[Any], Any]
    when: Callable[[AuditEvent], bool] | None = None


EVENT_TYPES: dict[str, EventType] = {}
_BY_ACTION: dict[str, list[EventType]] = {}


def register_event(
    name: str,
    *,
    action: str,
    model: Callable[[Any], Any],
    when: Callable[[AuditEvent], bool] | None = None,
) -> None:
    """Send `name` to subscribers whenever `action` is audited (and `when` holds)."""
    if name in EVENT_TYPES:
        if EVENT_TYPES[name].action == action:
            return
        raise ValueError(f"Webhook event type '{name}' is registered already.")
    event_type = EventType(name, action, model, when)
    EVENT_TYPES[name] = event_type
    _BY_ACTION.setdefault(action, []).append(event_type)


def event_type_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(EVENT_TYPES)]


def _completes_quorum(event: AuditEvent) -> bool:
    return (event.changes.get("status") or [None, None])[1] == "approved"


def register_builtin() -> None:
    register_event(
        "registered_model.created", action="registry.registered_model.created", model=lambda m: m
    )
    register_event(
        "model_version.created", action="registry.model_version.created", model=lambda v: v.model
    )
    register_event(
        "promotion.requested",
        action="approvals.promotion_request.filed",
        model=lambda r: r.version.model,
    )
    register_event(
        "promotion.approved",
        action="approvals.promotion_decision.approved",
        model=lambda r: r.version.model,
        when=_completes_quorum,
    )
    register_event(
        "promotion.rejected",
        action="approvals.promotion_decision.rejected",
        model=lambda r: r.version.model,
    )
    register_event(
        "model_version.stage_changed",
        action="approvals.model_version.stage_changed",
        model=lambda v: v.model,
    )
    register_event(
        "model_card.ready", action="modelcards.model_card.rendered", model=lambda c: c.version.model
    )
    register_event(
        "monitoring_alert.opened",
        action="oversight.monitoring_alert.opened",
        model=lambda a: a.version.model,
    )
    # A version linked into the lineage graph: to its training run when registered, then to
    # the run's inputs, those reaching the graph after the version (perhaps approved) too.
    register_event(
        "model_version.lineage_linked",
        action="lineage.model_version.linked",
        model=lambda v: v.model,
    )
    # What a version was trained on changed: a read re-pointed to the version its producer
    # wrote, the producer's event arriving after the training run's.
    register_event(
        "model_version.training_data_repointed",
        action="lineage.model_version.relinked",
        model=lambda v: v.model,
    )


def on_audit_events(pairs: Sequence[tuple[AuditEvent, Any]]) -> None:
    """Audit listener: queue deliveries for the events subscribers asked for, in the
    recording transaction (so a rolled-back change sends nothing). Called once per batch of
    events recorded together; the subscriptions are looked up once for the whole batch, and
    not at all when none of its actions raises an event type."""
    raised = [
        (event_type, event, target)
        for event, target in pairs
        if target is not None
        for event_type in _BY_ACTION.get(event.action, ())
        if event_type.when is None or event_type.when(event)
    ]
    if raised:
        from webhooks.services import deliveries_create

        deliveries_create(raised=raised)
