"""Request and response shapes of the webhooks API."""

from __future__ import annotations

from rest_framework import serializers

from core.api import StrictCharField, StrictModelSerializer
from webhooks.models import Webhook, WebhookDelivery


class WebhookSerializer(StrictModelSerializer):
    model = serializers.CharField(
        source="model.name", required=False, allow_null=True, default=None
    )
    events = serializers.ListField(child=StrictCharField(max_length=100), required=False)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "model", "events", "active", "created_by", "created_at"]
        read_only_fields = ["id", "active", "created_by", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_…): shown only in this response."
    )

    class Meta(WebhookSerializer.Meta):
        fields = WebhookSerializer.Meta.fields + ["secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class WebhookUpdateSerializer(StrictModelSerializer):
    events = serializers.ListField(child=StrictCharField(max_length=100), required=False)

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "active"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event_type",
            "status",
            "attempts",
            "response_status",
            "latency_ms",
            "last_error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
            "payload",
        ]
        read_only_fields = fields
