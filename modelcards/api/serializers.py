from django.urls import reverse
from rest_framework import serializers

from core.api import StrictFieldsMixin
from modelcards.models import ModelCard


class ModelCardSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )
    status_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelCard
        fields = [
            "id",
            "model",
            "version",
            "content_digest",
            "status",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "sha256",
            "size",
            "page_count",
            "error",
            "status_url",
            "pdf_url",
        ]
        read_only_fields = fields

    def get_status_url(self, card) -> str:
        return reverse("modelcard-detail", args=[card.pk])

    def get_pdf_url(self, card) -> str | None:
        return reverse("modelcard-pdf", args=[card.pk]) if card.status == "ready" else None


class ModelCardRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Render again even if a card for the current content exists.",
    )
