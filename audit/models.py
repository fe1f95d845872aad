"""The append-only audit log: events are inserted by writers and sealed into a chain later."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class ActorKind(models.TextChoices):
    USER = "user", "User"
    SERVICE = "service", "Service account"
    SYSTEM = "system", "System"


class Channel(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    TASK = "task", "Task"
    CLI = "cli", "Command line"
    AUTH = "auth", "Authentication"
    MLFLOW = "mlflow", "MLflow API"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One recorded change: who did what to which object, through which door, from where."""

    occurred_at = models.DateTimeField(db_index=True)
    # No FK constraint and no cascade: the log outlives users and must never be rewritten.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # PostgreSQL transaction id of the writer; the sealer orders and gates on it (index below).
    txid = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            # The sealer walks unsealed events in (txid, id) order from the last sealed one.
            models.Index(fields=["txid", "id"], name="audit_txid_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id} by {self.actor_username or '-'}"


class AuditSeal(models.Model):
    """The chain: event number `seq` (1, 2, 3 … no gap) links to the one before by hash.

    Written once by the sealer, never updated (database triggers refuse UPDATE, DELETE and
    TRUNCATE, as on events). hash = sha256(prev_hash + canonical JSON of the event).
    """

    seq = models.BigIntegerField(primary_key=True)
    # No database foreign key (migration 0007): events are never deleted, and verification
    # reports a seal whose event is missing.
    event = models.OneToOneField(
        AuditEvent, on_delete=models.PROTECT, related_name="seal", db_constraint=False
    )
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's head that an auditor keeps outside the system."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"
