"""Promotion policies, requests, decisions and the append-only stage history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals import workflow
from registry.models import RiskTier, Stage


class RequestStatus(models.TextChoices):
    PENDING = workflow.PENDING, "Pending"
    APPROVED = workflow.APPROVED, "Approved"
    REJECTED = workflow.REJECTED, "Rejected"
    CANCELLED = workflow.CANCELLED, "Cancelled"
    EXPIRED = workflow.EXPIRED, "Expired"
    SUPERSEDED = workflow.SUPERSEDED, "Superseded"


class Outcome(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


TARGET_STAGE_CHOICES = [(s, label) for s, label in Stage.choices if s in workflow.TARGET_STAGES]


class PromotionPolicy(models.Model):
    """Who must approve a move to a stage, for one risk tier, and on what evidence."""

    to_stage = models.CharField(max_length=12, choices=TARGET_STAGE_CHOICES)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    required_approvals = models.JSONField(
        default=dict, help_text='Role → number of approvals, e.g. {"model-validator": 1}.'
    )
    filing_gates = models.JSONField(
        default=list, blank=True, help_text="Gates that must hold to file a request."
    )
    approval_gates = models.JSONField(
        default=list, blank=True, help_text="Gates that must hold to approve."
    )
    expiry_days = models.PositiveIntegerField(
        default=30, help_text="A pending request expires this many days after filing."
    )
    fallback = models.CharField(
        max_length=10,
        choices=[
            ("role", "every member of the role"),
            ("none", "nobody: appointed approvers only"),
        ],
        default="role",
        help_text="Who decides for a role when no one holding it was appointed for the model "
        "(per model or for its business unit). With nobody at all, filing is refused.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["to_stage", "risk_tier"]
        verbose_name_plural = "promotion policies"
        constraints = [
            models.UniqueConstraint(fields=["to_stage", "risk_tier"], name="uniq_policy"),
        ]

    def __str__(self) -> str:
        return f"to {self.to_stage}, {self.risk_tier} risk"

    def snapshot(self) -> dict:
        return {
            "policy_id": self.pk,
            "to_stage": self.to_stage,
            "risk_tier": self.risk_tier,
            "required_approvals": dict(self.required_approvals),
            "filing_gates": list(self.filing_gates),
            "approval_gates": list(self.approval_gates),
            "expiry_days": self.expiry_days,
            "fallback": self.fallback,
        }


class PromotionRequest(models.Model):
    """A request to move one version to another stage, decided under a policy snapshot."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="promotion_requests"
    )
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    justification = models.TextField(max_length=10_000)
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    policy_snapshot = models.JSONField()
    content_digest = models.CharField(max_length=64)
    # For production targets: the version in production at filing, which this one replaces.
    replaces = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=500, blank=True)
    # PostgreSQL: the transaction that closed the request, written by a trigger (whatever the
    # application sends); the stage trigger lets a stage change through only in the
    # transaction that approved a request for it.
    decided_txid = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status="pending"),
                name="one_pending_request_per_version",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="approvals_status_exp"),
            models.Index(fields=["decided_txid"], name="approvals_decided_txid"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.version} → {self.to_stage}"

    @property
    def required(self) -> dict[str, int]:
        return dict(self.policy_snapshot.get("required_approvals", {}))


class ApprovalQueue(PromotionRequest):
    """The pending requests a reviewer may decide (an admin view of PromotionRequest)."""

    class Meta:
        proxy = True
        verbose_name = "approval queue entry"
        verbose_name_plural = "approval queue entries"


class BusinessUnitAppointment(models.Model):
    """A user or group appointed to decide the promotions of every model of a business unit,
    present and future (`manage.py appoint_approver --business-unit NAME`)."""

    business_unit = models.CharField(max_length=100, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)  # kept for the record

    class Meta:
        ordering = ["business_unit", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="bu_appointment_user_xor_group",
            ),
            models.UniqueConstraint(
                fields=["business_unit", "user"],
                condition=Q(revoked_at__isnull=True),
                name="uniq_bu_appointment_user",
            ),
            models.UniqueConstraint(
                fields=["business_unit", "group"],
                condition=Q(revoked_at__isnull=True),
                name="uniq_bu_appointment_group",
            ),
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{who} decides for {self.business_unit}"


class PromotionDecision(models.Model):
    """One person's approval or rejection of a request; one per person and request."""

    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="decisions"
    )
    decider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    role = models.CharField(max_length=50)
    comment = models.TextField(max_length=10_000)
    content_digest = models.CharField(max_length=64)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "decider"], name="one_decision_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} by {self.decider} on request #{self.request_id}"


class StageTransition(models.Model):
    """An applied stage change: append-only (a trigger refuses updates on PostgreSQL)."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="stage_transitions"
    )
    model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="stage_transitions"
    )
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="transitions"
    )
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage}"


class PromotionNotification(models.Model):
    """A notification that was sent, so a redelivered task sends nothing twice."""

    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="notifications"
    )
    kind = models.CharField(max_length=20)
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "kind"], name="one_notification_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} notification of request #{self.request_id}"
