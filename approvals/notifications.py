"""E-mails about promotion requests: to eligible approvers when one is filed, to the requester
when it is decided. Sent by Celery tasks after commit; each (request, kind) is sent once."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from approvals.models import PromotionNotification, PromotionRequest, RequestStatus
from approvals.permissions import eligible_deciders

logger = logging.getLogger(__name__)
FILED = "filed"
DECIDED = "decided"


def eligible_approvers(request: PromotionRequest) -> list[Any]:
    """Active users who may decide the request: for each role the policy asks for, those
    appointed for the model (per model or business unit), or — when nobody holding the role
    was and the policy falls back — every member of the role; never the requester nor the
    version's creator."""
    return eligible_deciders(request, request.version)


def _message(request: PromotionRequest, kind: str) -> tuple[str, str]:
    version = request.version
    what = f"{version.model.name} v{version.version}: {request.from_stage} → {request.to_stage}"
    if kind == FILED:
        return (
            f"[modelgov] Promotion request #{request.pk} awaits your decision: {what}",
            f"{request.requester.get_username()} asks to move {what}.\n\n"
            f"Justification:\n{request.justification}\n\n"
            f"Decide it in the admin (Approvals → Approval queue) or through the API: "
            f"POST /api/v1/promotions/{request.pk}/approve or /reject.\n"
            f"It expires at {request.expires_at:%Y-%m-%d %H:%M} UTC.",
        )
    return (
        f"[modelgov] Promotion request #{request.pk} {request.status}: {what}",
        f"Your request to move {what} was {request.status}.\n\n"
        + "\n".join(
            f"- {d.outcome} by {d.decider.get_username()} ({d.role}): {d.comment}"
            for d in request.decisions.select_related("decider")
        ),
    )


def send(request_id: int, kind: str) -> int:
    """Send one notification at most once; returns how many recipients it went to (0 when it
    was sent before or has no one to go to)."""
    request = (
        PromotionRequest.objects.select_related("version__model", "requester")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return 0
    if kind == FILED:
        if request.status != RequestStatus.PENDING:
            return 0
        recipients = [u.email for u in eligible_approvers(request) if u.email]
    else:
        if request.status not in (RequestStatus.APPROVED, RequestStatus.REJECTED):
            return 0
        recipients = [request.requester.email] if request.requester.email else []
    if not recipients:
        return 0
    subject, body = _message(request, kind)
    try:
        with transaction.atomic():
            # The claim row commits only if sending succeeded: a failure is retried, a
            # redelivered task after success finds the row and sends nothing.
            PromotionNotification.objects.create(request=request, kind=kind, recipients=recipients)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except IntegrityError:
        return 0
    return len(recipients)
