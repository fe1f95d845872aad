"""Request and response shapes of the catalogue API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from core.api import StrictCharField, StrictModelSerializer, StrictRegexField
from registry.models import (
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    ModelVersion,
    RegisteredModel,
    Run,
)
from registry.permissions import GRANTABLE
from registry.validators import MODEL_NAME_RE

User = get_user_model()


class RegisteredModelSerializer(StrictModelSerializer):
    name = StrictRegexField(
        MODEL_NAME_RE,
        max_length=100,
        error_messages={
            "invalid": "Use 1–100 lowercase letters, digits, '-' or '_', starting and ending "
            "with a letter or digit."
        },
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=50), max_length=20, required=False
    )
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "business_unit",
            "risk_tier",
            "tags",
            "archived",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "archived", "latest_version", "created_at", "updated_at"]
        # Uniqueness is the service's job (409), not the serializer's (400).
        extra_kwargs = {"name": {"validators": []}}

    def get_latest_version(self, obj: RegisteredModel) -> int | None:
        return getattr(obj, "latest_version", None)


class RegisteredModelUpdateSerializer(RegisteredModelSerializer):
    class Meta(RegisteredModelSerializer.Meta):
        read_only_fields = RegisteredModelSerializer.Meta.read_only_fields + ["name"]


class ModelVersionSerializer(StrictModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    training_run = serializers.SlugRelatedField(
        slug_field="run_id",
        queryset=Run.objects.all(),
        required=False,
        allow_null=True,
        help_text="run_id (UUID) of the run that trained this version.",
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    parameters = serializers.JSONField(
        required=False, help_text="JSON object, ≤ 8 levels, ≤ 64 KiB."
    )
    metrics = serializers.JSONField(
        required=False, help_text="JSON object: metric name → finite number."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "stage",
            "artifact_uri",
            "artifact_sha256",
            "framework",
            "parameters",
            "metrics",
            "intended_use",
            "out_of_scope_uses",
            "limitations",
            "ethical_considerations",
            "training_data_summary",
            "evaluation_summary",
            "methodology",
            "assumptions",
            "training_run",
            "created_by",
            "created_at",
            "updated_at",
            "content_digest",
        ]
        read_only_fields = [
            "id",
            "model",
            "version",
            "stage",
            "created_by",
            "created_at",
            "updated_at",
            "content_digest",
        ]


class DatasetSerializer(StrictModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "namespace",
            "name",
            "description",
            "owner",
            "contains_pii",
            "archived",
            "created_at",
        ]
        read_only_fields = ["id", "owner", "archived", "created_at"]
        validators = []


class DatasetUpdateSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        read_only_fields = DatasetSerializer.Meta.read_only_fields + ["namespace", "name"]


class DatasetVersionSerializer(StrictModelSerializer):
    dataset = serializers.PrimaryKeyRelatedField(read_only=True)
    produced_by = serializers.SlugRelatedField(
        slug_field="run_id", queryset=Run.objects.all(), required=False, allow_null=True
    )
    schema = serializers.ListField(child=serializers.DictField(), required=False, max_length=2000)

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "version", "schema", "produced_by", "created_at"]
        read_only_fields = ["id", "dataset", "created_at"]
        validators = []


class FeatureSerializer(StrictModelSerializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())

    class Meta:
        model = Feature
        fields = ["id", "dataset", "name", "dtype", "description", "pii", "archived", "created_at"]
        read_only_fields = ["id", "archived", "created_at"]
        validators = []


class FeatureUpdateSerializer(FeatureSerializer):
    class Meta(FeatureSerializer.Meta):
        read_only_fields = FeatureSerializer.Meta.read_only_fields + ["dataset", "name"]


class JobSerializer(StrictModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "namespace", "name", "description", "archived", "created_at"]
        read_only_fields = ["id", "archived", "created_at"]
        validators = []


class JobUpdateSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        read_only_fields = JobSerializer.Meta.read_only_fields + ["namespace", "name"]


class RunSerializer(StrictModelSerializer):
    job = serializers.PrimaryKeyRelatedField(queryset=Job.objects.all())
    parent = serializers.SlugRelatedField(
        slug_field="run_id", queryset=Run.objects.all(), required=False, allow_null=True
    )
    run_id = serializers.UUIDField(required=False)
    facets = serializers.JSONField(required=False)

    class Meta:
        model = Run
        fields = [
            "id",
            "run_id",
            "job",
            "state",
            "started_at",
            "ended_at",
            "facets",
            "parent",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators = []


class RunUpdateSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        read_only_fields = RunSerializer.Meta.read_only_fields + [
            "run_id",
            "job",
            "started_at",
            "parent",
        ]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    database = serializers.CharField()
    broker = serializers.CharField()


class HeldGrantSerializer(serializers.Serializer):
    """One object permission held on a model: the grants above, and any another app grants on
    models (e.g. `decide_promotion`, appointing an approver), so a plain codename."""

    user = serializers.CharField(allow_null=True)
    group = serializers.CharField(allow_null=True)
    permission = serializers.CharField(
        help_text="Permission codename: view_registeredmodel, change_registeredmodel, or one "
        "granted by another part of modelgov (decide_promotion)."
    )


class GrantSerializer(serializers.Serializer):
    """An object permission on one model, held by a user or a group (exactly one of them)."""

    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
    )
    group = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True
    )
    permission = serializers.ChoiceField(choices=sorted(GRANTABLE))

    def validate(self, attrs):
        if bool(attrs.get("user")) == bool(attrs.get("group")):
            raise serializers.ValidationError("Name exactly one of 'user' and 'group'.")
        return attrs

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)

    def to_representation(self, instance):
        return instance


class AliasSerializer(serializers.Serializer):
    """A named pointer to one version of the model; governed aliases follow production."""

    alias = StrictCharField(max_length=255)
    version = serializers.IntegerField(min_value=1, max_value=999_999_999)
    governed = serializers.BooleanField(read_only=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - {"alias", "version"})
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)
