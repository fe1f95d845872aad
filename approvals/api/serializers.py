"""Shapes of the promotion endpoints: strict inputs (unknown keys are a 400), explicit outputs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals import selectors, workflow
from approvals.models import PromotionDecision, PromotionRequest, StageTransition
from core.api import StrictCharField, StrictFieldsMixin
from registry.models import Stage


class PromotionFileSerializer(StrictFieldsMixin, serializers.Serializer):
    to_stage = serializers.ChoiceField(
        choices=Stage.choices, help_text="The stage to move the version to."
    )
    justification = StrictCharField(
        max_length=10_000, help_text="Why this version should move (required)."
    )


class DecisionInputSerializer(StrictFieldsMixin, serializers.Serializer):
    comment = StrictCharField(max_length=10_000, help_text="What you checked (required).")


class CancelInputSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)


class SlotSerializer(serializers.Serializer):
    role = serializers.CharField()
    index = serializers.IntegerField()
    filled_by = serializers.CharField(allow_null=True)
    filled_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    required = serializers.DictField(child=serializers.IntegerField())
    slots = SlotSerializer(many=True)
    remaining = serializers.DictField(child=serializers.IntegerField())
    complete = serializers.BooleanField()


class DecisionSerializer(serializers.ModelSerializer):
    decider = serializers.CharField(source="decider.username")

    class Meta:
        model = PromotionDecision
        fields = ["id", "decider", "outcome", "role", "comment", "content_digest", "decided_at"]


class PolicySnapshotSerializer(serializers.Serializer):
    policy_id = serializers.IntegerField(allow_null=True)
    to_stage = serializers.CharField()
    risk_tier = serializers.CharField()
    required_approvals = serializers.DictField(child=serializers.IntegerField())
    filing_gates = serializers.ListField(child=serializers.CharField())
    approval_gates = serializers.ListField(child=serializers.CharField())
    expiry_days = serializers.IntegerField()


class PromotionRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    kind = serializers.SerializerMethodField()
    requester = serializers.CharField(source="requester.username")
    replaces = serializers.IntegerField(source="replaces.version", allow_null=True, default=None)
    policy = PolicySnapshotSerializer(source="policy_snapshot")
    progress = serializers.SerializerMethodField()
    decisions = DecisionSerializer(many=True)

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "model",
            "version",
            "from_stage",
            "to_stage",
            "kind",
            "status",
            "requester",
            "justification",
            "content_digest",
            "replaces",
            "policy",
            "progress",
            "decisions",
            "created_at",
            "expires_at",
            "closed_at",
            "closed_reason",
        ]

    def get_kind(self, obj: PromotionRequest) -> str:
        return workflow.TRANSITIONS.get((obj.from_stage, obj.to_stage), "")

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, obj: PromotionRequest) -> dict:
        return ProgressSerializer(selectors.progress(obj)).data


class StageTransitionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version")
    request = serializers.IntegerField(source="request_id")

    class Meta:
        model = StageTransition
        fields = ["id", "version", "from_stage", "to_stage", "request", "occurred_at"]


class VersionStageSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    since = serializers.DateTimeField()


class StagesAsOfSerializer(serializers.Serializer):
    model = serializers.CharField()
    as_of = serializers.DateTimeField()
    production = serializers.IntegerField(
        allow_null=True, help_text="The version in production at that moment, if any."
    )
    versions = VersionStageSerializer(many=True)
