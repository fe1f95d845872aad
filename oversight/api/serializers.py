"""Shapes of the oversight endpoints: strict inputs (unknown keys are a 400), explicit outputs."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.api import StrictCharField, StrictFieldsMixin
from oversight.models import (
    Finding,
    FindingStatus,
    MonitoringAlert,
    MonitoringPoint,
    PeriodicReview,
    Severity,
    ValidationReport,
)


def _user(field: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(source=f"{field}.username", read_only=True, **kwargs)


class FindingInputSerializer(StrictFieldsMixin, serializers.Serializer):
    title = StrictCharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    description = StrictCharField(max_length=20_000, required=False, allow_blank=True)
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Username of who remediates it.",
    )
    due_date = serializers.DateField(required=False, allow_null=True)


class ReportInputSerializer(StrictFieldsMixin, serializers.Serializer):
    scope = StrictCharField(max_length=20_000)
    methods = StrictCharField(max_length=20_000)
    conclusion = StrictCharField(max_length=20_000, required=False, allow_blank=True)
    conditions_of_use = StrictCharField(max_length=20_000, required=False, allow_blank=True)
    findings = FindingInputSerializer(many=True, required=False, max_length=200)


class FindingCloseSerializer(StrictFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[(s, label) for s, label in FindingStatus.choices if s != FindingStatus.OPEN]
    )
    comment = StrictCharField(max_length=10_000, help_text="What was done (required).")


class CommentSerializer(StrictFieldsMixin, serializers.Serializer):
    comment = StrictCharField(max_length=10_000, help_text="Required.")


class FindingSerializer(serializers.ModelSerializer):
    report = serializers.IntegerField(source="report_id", read_only=True)
    model = serializers.CharField(source="report.version.model.name", read_only=True)
    version = serializers.IntegerField(source="report.version.version", read_only=True)
    owner = _user("owner", allow_null=True, default=None)
    created_by = _user("created_by")
    closed_by = _user("closed_by", allow_null=True, default=None)

    class Meta:
        model = Finding
        fields = [
            "id",
            "report",
            "model",
            "version",
            "title",
            "description",
            "severity",
            "status",
            "owner",
            "due_date",
            "created_by",
            "created_at",
            "closed_by",
            "closed_at",
            "closing_comment",
        ]


class ReportSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    validator = _user("validator")
    findings = FindingSerializer(many=True, read_only=True)

    class Meta:
        model = ValidationReport
        fields = [
            "id",
            "model",
            "version",
            "validator",
            "scope",
            "methods",
            "conclusion",
            "conditions_of_use",
            "created_at",
            "findings",
        ]


class MonitoringPointInputSerializer(serializers.Serializer):
    """Documentation of a point (the endpoint parses batches with oversight.monitoring)."""

    metric = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,99}$")
    value = serializers.FloatField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    segment = serializers.CharField(max_length=200, required=False, allow_blank=True)


class MonitoringBatchSerializer(serializers.Serializer):
    points = MonitoringPointInputSerializer(
        many=True, help_text="1 to OVERSIGHT_MAX_POINTS points."
    )


class MonitoringBatchResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
    breaching = serializers.IntegerField(
        help_text="Points beyond a threshold rule; alerts are evaluated after commit."
    )
    first_id = serializers.IntegerField()
    last_id = serializers.IntegerField()


class MonitoringPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoringPoint
        fields = ["id", "metric", "segment", "value", "window_start", "window_end", "recorded_at"]


class AlertSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    rule = serializers.CharField(source="rule_text", read_only=True)
    resolved_by = _user("resolved_by", allow_null=True, default=None)
    revalidation_request = serializers.IntegerField(
        source="revalidation_request_id", allow_null=True, read_only=True
    )

    class Meta:
        model = MonitoringAlert
        fields = [
            "id",
            "model",
            "version",
            "rule",
            "metric",
            "segment",
            "value",
            "breaches",
            "status",
            "revalidation_request",
            "revalidation_note",
            "opened_at",
            "resolved_at",
            "resolved_by",
            "resolution_comment",
        ]


class ReviewSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    overdue = serializers.BooleanField(read_only=True)
    completed_by = _user("completed_by", allow_null=True, default=None)

    class Meta:
        model = PeriodicReview
        fields = [
            "id",
            "model",
            "version",
            "status",
            "due_at",
            "overdue",
            "opened_at",
            "completed_at",
            "completed_by",
            "comment",
        ]
