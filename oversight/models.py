"""After approval: validation reports and findings, production monitoring (points, threshold
rules, alerts) and periodic review, with the oversight policy per risk tier."""

from __future__ import annotations

import operator

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.models import ModelVersion, RiskTier


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# Findings of these severities block promotions (gate) and need an independent closer.
SERIOUS = (Severity.HIGH, Severity.CRITICAL)


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    REMEDIATED = "remediated", "Remediated"
    ACCEPTED = "accepted", "Accepted (risk accepted)"


class ValidationReport(models.Model):
    """An independent validator's report on one model version."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="validation_reports"
    )
    validator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    scope = models.TextField(max_length=20_000, help_text="What was validated, and what not.")
    methods = models.TextField(max_length=20_000, help_text="How it was validated.")
    conclusion = models.TextField(max_length=20_000, blank=True)
    conditions_of_use = models.TextField(
        max_length=20_000, blank=True, help_text="Conditions under which the model may be used."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Validation report #{self.pk} on {self.version}"


class Finding(models.Model):
    """One issue a validation found; closed (remediated or accepted) with a comment."""

    report = models.ForeignKey(ValidationReport, on_delete=models.PROTECT, related_name="findings")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=20_000, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=12, choices=FindingStatus.choices, default=FindingStatus.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who remediates it.",
    )
    due_date = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closing_comment = models.TextField(max_length=10_000, blank=True)

    class Meta:
        ordering = ["report_id", "id"]
        indexes = [models.Index(fields=["status", "severity"], name="oversight_finding_open")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"


class OversightPolicy(models.Model):
    """Periodic review for one risk tier: how often, and whether an overdue review blocks
    further promotions of the model (gate `periodic_review_current`)."""

    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, unique=True)
    review_interval_months = models.PositiveSmallIntegerField(
        help_text="A production version is reviewed this many months after its approval or "
        "last review."
    )
    block_promotions_when_overdue = models.BooleanField(
        default=False,
        help_text="While a review of the model's production version is overdue, its other "
        "versions cannot be promoted (when promotion policies list the gate).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["risk_tier"]
        verbose_name_plural = "oversight policies"

    def __str__(self) -> str:
        return f"{self.risk_tier} risk: review every {self.review_interval_months} months"


class Comparator(models.TextChoices):
    GT = "gt", ">"
    GE = "ge", "≥"
    LT = "lt", "<"
    LE = "le", "≤"


# How each comparator tells a value beyond the threshold.
BEYOND = {
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
}


class ThresholdRule(models.Model):
    """A bound on a production metric, for one model or for every model of a risk tier.
    A point beyond it opens an alert and, when `revalidate` is set, files a re-validation."""

    model = models.ForeignKey(
        "registry.RegisteredModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="threshold_rules",
    )
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, blank=True)
    metric = models.CharField(max_length=100)
    segment = models.CharField(
        max_length=200, blank=True, help_text="Only this segment (e.g. a feature); empty: any."
    )
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    threshold = models.FloatField()
    revalidate = models.BooleanField(
        default=False, help_text="A breach files a re-validation request (production → staging)."
    )
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["metric", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(model__isnull=False) & Q(risk_tier=""))
                | (Q(model__isnull=True) & ~Q(risk_tier="")),
                name="threshold_rule_one_scope",
                violation_error_message="A rule applies to one model or to one risk tier.",
            ),
        ]

    def __str__(self) -> str:
        scope = self.model.name if self.model_id else f"{self.risk_tier} risk"
        where = f" on {self.segment}" if self.segment else ""
        return f"{self.metric}{where} {self.get_comparator_display()} {self.threshold:g} ({scope})"

    def breached_by(self, value: float) -> bool:
        return BEYOND[self.comparator](value, self.threshold)


class MonitoringPoint(models.Model):
    """One production measurement of a version (append-only: a trigger refuses updates and
    deletes on PostgreSQL)."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    metric = models.CharField(max_length=100)
    segment = models.CharField(max_length=200, blank=True, default="")
    value = models.FloatField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["window_end", "id"]
        indexes = [
            models.Index(fields=["version", "metric", "window_end"], name="oversight_point_series"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g} ({self.window_end:%Y-%m-%d %H:%M})"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class MonitoringAlert(models.Model):
    """A threshold breach of a version; further breaches of the same rule while it is open
    count on it rather than opening another."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="monitoring_alerts"
    )
    rule = models.ForeignKey(ThresholdRule, on_delete=models.PROTECT, related_name="alerts")
    point = models.ForeignKey(MonitoringPoint, on_delete=models.PROTECT, related_name="+")
    # What the rule said when it fired (rules are editable).
    rule_text = models.CharField(max_length=400)
    metric = models.CharField(max_length=100)
    segment = models.CharField(max_length=200, blank=True)
    value = models.FloatField()
    breaches = models.PositiveIntegerField(default=1)
    last_point = models.ForeignKey(
        MonitoringPoint, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default="open")
    revalidation_request = models.ForeignKey(
        "approvals.PromotionRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    revalidation_note = models.CharField(
        max_length=500, blank=True, help_text="Why no re-validation request was filed."
    )
    opened_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_comment = models.TextField(max_length=10_000, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "rule"],
                condition=Q(status="open"),
                name="one_open_alert_per_rule",
            ),
        ]

    def __str__(self) -> str:
        return f"Alert #{self.pk}: {self.version} {self.rule_text}"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class PeriodicReview(models.Model):
    """A periodic review of a production version, opened ahead of its due date."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="periodic_reviews"
    )
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default="open")
    opened_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(max_length=10_000, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"], condition=Q(status="open"), name="one_open_review_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"Review of {self.version} due {self.due_at:%Y-%m-%d}"

    @property
    def overdue(self) -> bool:
        return self.status == ReviewStatus.OPEN and self.due_at < timezone.now()


class MonitoredVersion(ModelVersion):
    """A model version seen from production monitoring (an admin view of ModelVersion)."""

    class Meta:
        proxy = True
        verbose_name = "production monitoring"
        verbose_name_plural = "production monitoring"


class OverdueReview(PeriodicReview):
    """Open reviews past their due date (an admin view of PeriodicReview)."""

    class Meta:
        proxy = True
        verbose_name = "overdue review"
        verbose_name_plural = "overdue reviews"
