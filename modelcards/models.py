"""Model cards: the compliance document of one model version at one content digest."""

from django.conf import settings
from django.db import models


class CardStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ModelCard(models.Model):
    """A rendering request and, once ready, its PDF (never rewritten: a new digest gets a new
    card)."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="model_cards"
    )
    content_digest = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=CardStatus.choices, default=CardStatus.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Each claim by a worker bumps the attempt; only the latest attempt may finish the card.
    attempt = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="modelcards/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("download_modelcard", "Can download model cards")]
        indexes = [
            models.Index(fields=["version", "content_digest", "status"], name="card_lookup_idx")
        ]

    def __str__(self) -> str:
        return f"Model card #{self.pk} of {self.version} ({self.status})"
