"""Catalogue entities: models and their versions, datasets, features, jobs and runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from knox.models import AbstractAuthToken

from core.fields import StoredJSONField
from registry.validators import (
    validate_alias,
    validate_labels,
    validate_metrics,
    validate_model_name,
    validate_name_bytes,
    validate_namespace_bytes,
    validate_parameters,
    validate_sha256,
    validate_tags,
)


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Stage(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class RunState(models.TextChoices):
    START = "START", "Started"
    RUNNING = "RUNNING", "Running"
    COMPLETE = "COMPLETE", "Complete"
    FAIL = "FAIL", "Failed"
    ABORT = "ABORT", "Aborted"
    OTHER = "OTHER", "Other"


class RegisteredModel(models.Model):
    """A model under governance; its versions are what gets promoted."""

    name = models.CharField(max_length=100, unique=True, validators=[validate_model_name])
    description = models.TextField(blank=True, max_length=10_000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models"
    )
    business_unit = models.CharField(max_length=100, blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    tags = models.JSONField(default=list, blank=True, validators=[validate_tags])
    # Denormalised "tag,tag," form so that tag filters work the same on SQLite and PostgreSQL.
    tags_index = models.CharField(max_length=1100, blank=True, editable=False, db_index=True)
    # Key → value tags, as MLflow clients set them (`tags` above are plain labels).
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def is_set(value) -> bool:
    """A governed field holds a value (an empty one may still be set once)."""
    return value not in (None, "", {}, [])


GOVERNED_IMMUTABLE_FIELDS = (
    "artifact_uri",
    "artifact_sha256",
    "parameters",
    "metrics",
    "training_run",
)
DOCUMENTATION_FIELDS = (
    "framework",
    "intended_use",
    "out_of_scope_uses",
    "limitations",
    "ethical_considerations",
    "training_data_summary",
    "evaluation_summary",
    "methodology",
    "assumptions",
)
# Documentation fields added after versions were first recorded: they enter the content
# digest only once they hold text, so digests recorded before they existed stay valid.
DIGEST_WHEN_SET_FIELDS = ("methodology", "assumptions")


class ModelVersion(models.Model):
    """One trained artefact of a registered model, numbered 1, 2, 3 … per model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(editable=False)
    stage = models.CharField(
        max_length=12, choices=Stage.choices, default=Stage.DEVELOPMENT, editable=False
    )
    artifact_uri = models.CharField(max_length=1000, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True, validators=[validate_sha256])
    framework = models.CharField(max_length=100, blank=True)
    parameters = models.JSONField(default=dict, blank=True, validators=[validate_parameters])
    metrics = models.JSONField(default=dict, blank=True, validators=[validate_metrics])
    intended_use = models.TextField(blank=True, max_length=20_000)
    out_of_scope_uses = models.TextField(blank=True, max_length=20_000)
    limitations = models.TextField(blank=True, max_length=20_000)
    ethical_considerations = models.TextField(blank=True, max_length=20_000)
    training_data_summary = models.TextField(blank=True, max_length=20_000)
    evaluation_summary = models.TextField(blank=True, max_length=20_000)
    methodology = models.TextField(
        blank=True, max_length=20_000, help_text="How the model was built and why this way."
    )
    assumptions = models.TextField(
        blank=True,
        max_length=20_000,
        help_text="What the model takes for granted about its data and use.",
    )
    training_run = models.ForeignKey(
        "registry.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )
    # Not governed content (outside the digest): a note and key → value tags, editable in
    # every stage, and where the version came from in an external tracking server.
    description = models.TextField(blank=True, max_length=20_000)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    source_run_id = models.CharField(
        max_length=100, blank=True, help_text="Run id in the tracking server that logged it."
    )
    source_model_id = models.CharField(
        max_length=100, blank=True, help_text="Logged-model id in the tracking server."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    content_digest = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["model__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="uniq_model_version"),
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(stage="production"),
                name="one_production_version_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def governed_fields_set(self) -> list[str]:
        """The governed fields already set, as stored: fixed from here on (register a new
        version instead). Read anew: an admin form may have put values on this instance that
        its save will refuse."""
        attnames = [self._meta.get_field(name).attname for name in GOVERNED_IMMUTABLE_FIELDS]
        stored = ModelVersion.objects.filter(pk=self.pk).values(*attnames).first() or {}
        return [
            name
            for name, attname in zip(GOVERNED_IMMUTABLE_FIELDS, attnames, strict=True)
            if is_set(stored.get(attname))
        ]


class ModelAlias(models.Model):
    """A named pointer from a registered model to one of its versions (`@challenger`).

    Governed aliases (settings.GOVERNED_ALIASES) are never stored: they name the version in
    production, so only an approved promotion moves them.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="aliases")
    alias = models.CharField(max_length=255, validators=[validate_alias])
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "alias"]
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="uniq_model_alias")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"


class Dataset(models.Model):
    """A data asset, identified as OpenLineage does by namespace and name."""

    namespace = models.CharField(max_length=255, validators=[validate_namespace_bytes])
    name = models.CharField(max_length=500, validators=[validate_name_bytes])
    description = models.TextField(blank=True, max_length=10_000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    contains_pii = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="uniq_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"


class DatasetVersion(models.Model):
    """An immutable state of a dataset, e.g. one run's output."""

    # no index of its own: uniq_dataset_version's leads with it
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="versions", db_index=False
    )
    version = models.CharField(max_length=255)
    schema = StoredJSONField(default=list, blank=True)  # as written; read whole, not searched
    # The schema is one a reader's lineage event gave before the version's writer named one:
    # the writer's replaces it, whichever arrives first. (A default in the database too, so
    # that a release without the column can still insert during a rolling upgrade.)
    schema_by_reader = models.BooleanField(default=False, db_default=False, editable=False)
    # eventTime of the lineage event that gave the schema: of two writers (or two readers)
    # giving different schemas, the earliest event's stands, whatever arrives first. Null for a
    # schema given through the registry, or stored before the time was kept: it stays.
    schema_at = models.DateTimeField(null=True, blank=True, editable=False)
    produced_by = models.ForeignKey(
        "registry.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="outputs"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="uniq_dataset_version"),
        ]
        # A dataset's latest version (what an unversioned lineage input reads) without sorting
        # every version of a dataset that is written daily for years.
        indexes = [
            models.Index(fields=["dataset", "-created_at", "-id"], name="dataset_version_latest")
        ]

    def __str__(self) -> str:
        return f"{self.dataset}@{self.version}"


class Feature(models.Model):
    """A column or field of a dataset, with its type and whether it holds personal data."""

    # no index of its own: uniq_feature's leads with it
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="features", db_index=False
    )
    name = models.CharField(max_length=255)
    dtype = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True, max_length=10_000)
    pii = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="uniq_feature"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}.{self.name}"


class Job(models.Model):
    """A recurring process (an Airflow task, a Spark job, a training script)."""

    namespace = models.CharField(max_length=255, validators=[validate_namespace_bytes])
    name = models.CharField(max_length=500, validators=[validate_name_bytes])
    description = models.TextField(blank=True, max_length=10_000)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="uniq_job")]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"


class Run(models.Model):
    """One execution of a job."""

    run_id = models.UUIDField(unique=True, default=uuid.uuid4)
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="runs")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.START)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Stored as the producer sent them (lineage checks its own limits): never the model
    # parameter rules.
    facets = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # eventTime of the lineage event that set `state` (events arrive out of order).
    state_time = models.DateTimeField(null=True, blank=True, editable=False)
    # eventTime (ISO 8601, UTC) of the lineage event that gave each facet its value, by facet
    # name: the latest event's value wins whatever the arrival order. Null (none known) for
    # runs stored before it was kept, and for rows written by a release that did not know it
    # while an upgrade rolls out.
    facet_times = models.JSONField(default=dict, null=True, blank=True, editable=False)
    # The run id as the producer sent it, when it was not a UUID (mapped deterministically).
    external_id = models.CharField(max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.job.name}/{self.run_id}"


class ApiToken(AbstractAuthToken):
    """A named API token; only its digest is stored. Revoked tokens stay for the record."""

    name = models.CharField(max_length=100)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…) of {self.user}"
