"""E-mail about monitoring alerts: to the model's owner and its approvers, once per alert,
sent by a task after the alert committed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import get_users_with_perms

from approvals.defaults import DECIDE_CODENAME
from approvals.workflow import APPROVER_ROLES
from oversight.models import MonitoringAlert


def recipients(alert: MonitoringAlert) -> list[str]:
    """The owner, and active users in an approver role holding the decide permission."""
    model = alert.version.model
    holders = get_users_with_perms(
        model, only_with_perms_in=[DECIDE_CODENAME], with_superusers=False, with_group_users=True
    )
    approvers = (
        get_user_model()
        .objects.filter(pk__in=[u.pk for u in holders], is_active=True)
        .filter(groups__name__in=APPROVER_ROLES)
        .distinct()
        .order_by("username")
    )
    people: list[Any] = [model.owner, *approvers]
    seen, out = set(), []
    for person in people:
        if person.email and person.email not in seen and person.is_active:
            seen.add(person.email)
            out.append(person.email)
    return out


def _message(alert: MonitoringAlert) -> tuple[str, str]:
    version = alert.version
    segment = f" on {alert.segment}" if alert.segment else ""
    lines = [
        f"Production monitoring of {version} breached a threshold:",
        f"{alert.metric}{segment} = {alert.value:g}, rule: {alert.rule_text}.",
        "",
    ]
    if alert.revalidation_request_id:
        lines.append(
            f"A re-validation request (#{alert.revalidation_request_id}, production → staging) "
            "was filed and awaits approvers (Approvals → Approval queue)."
        )
    elif alert.revalidation_note:
        lines.append(f"Re-validation: {alert.revalidation_note}")
    lines.append(f"See the alert in the admin (Oversight → Monitoring alerts, #{alert.pk}).")
    return f"[modelgov] Monitoring alert on {version}: {alert.metric}{segment}", "\n".join(lines)


def alert_opened(alert_id: int) -> int:
    """Send the alert's e-mail at most once; the number of recipients (0 when sent before)."""
    alert = (
        MonitoringAlert.objects.select_related("version__model__owner").filter(pk=alert_id).first()
    )
    if alert is None or alert.notified_at is not None:
        return 0
    to = recipients(alert)
    with transaction.atomic():
        # The claim commits only if sending succeeded: a failure is retried, a redelivered
        # task after success finds it claimed and sends nothing.
        claimed = MonitoringAlert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )
        if not claimed or not to:
            return 0
        subject, body = _message(alert)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    return len(to)
