"""Catalogue endpoints: thin views that parse, call a service or selector, and serialize."""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.errors import error_body
from registry import permissions, selectors, services
from registry.api import serializers as s
from registry.models import (
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    ModelVersion,
    RegisteredModel,
    Run,
)
from registry.permissions import CataloguePermissions

METHODS_NO_PUT = ["get", "post", "patch", "delete", "head", "options"]


class CatalogueViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Common shape: create/update go through services, DELETE archives (or answers 405)."""

    http_method_names = METHODS_NO_PUT
    update_serializer_class: type[serializers.Serializer] | None = None

    def get_serializer_class(self):
        if self.action == "partial_update" and self.update_serializer_class is not None:
            return self.update_serializer_class
        return self.serializer_class

    def perform_create(self, serializer):
        serializer.instance = self.create_entity(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self.update_entity(serializer.instance, serializer.validated_data)

    def create_entity(self, **data):
        raise NotImplementedError

    def update_entity(self, instance, data):
        raise NotImplementedError

    def archive_entity(self, instance):
        raise NotImplementedError

    def destroy(self, request, *args, **kwargs):
        """Archives the entity (nothing is hard-deleted) and answers it."""
        return Response(self.get_serializer(self.archive_entity(self.get_object())).data)


def _with_relations_of(before, after, fields: list[str]):
    """`after` (as a service answered it), given the related objects `before` already holds
    for the fields whose foreign key did not change: answered without reading them again."""
    for field in fields:
        relation = after._meta.get_field(field)
        if (
            relation.is_cached(before)
            and not relation.is_cached(after)
            and getattr(before, relation.attname) == getattr(after, relation.attname)
        ):
            setattr(after, field, getattr(before, field))
    return after


class RegisteredModelFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    owner = filters.CharFilter(field_name="owner__username")
    tag = filters.CharFilter(method="filter_tag")
    stage = filters.ChoiceFilter(
        field_name="versions__stage",
        choices=ModelVersion._meta.get_field("stage").choices,
        distinct=True,
        label="Has a version in this stage",
    )

    class Meta:
        model = RegisteredModel
        fields = ["name", "owner", "risk_tier", "business_unit", "archived", "tag", "stage"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags_index__contains=f",{value},")


def _latest_kept(before: RegisteredModel, after: RegisteredModel) -> RegisteredModel:
    """`after` (as a service answered it) with the latest version `before` was read with:
    changing or archiving a model adds no version."""
    after.latest_version = getattr(before, "latest_version", None)
    return after


# The highest version number of the model in the row, read from the (model, version) unique
# index for the rows answered only.
LATEST_VERSION = Subquery(
    ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-version").values("version")[:1]
)


@extend_schema_view(destroy=extend_schema(responses={200: s.RegisteredModelSerializer}))
class RegisteredModelViewSet(CatalogueViewSet):
    """Registered models, looked up by name. DELETE archives."""

    serializer_class = s.RegisteredModelSerializer
    update_serializer_class = s.RegisteredModelUpdateSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_class = RegisteredModelFilter
    ordering_fields = ["name", "created_at", "updated_at", "risk_tier"]
    ordering = ["name"]

    def get_queryset(self):
        return selectors.models_visible_to(self.request.user).annotate(
            latest_version=LATEST_VERSION
        )

    def get_object(self):
        """One keyed fetch, then the single-object visibility check (404 when invisible)."""
        queryset = RegisteredModel.objects.select_related("owner").annotate(
            latest_version=LATEST_VERSION
        )
        if self.request.query_params:  # filters apply to detail routes too, as in DRF
            queryset = self.filter_queryset(queryset)
        model = selectors.visible_model(self.request.user, self.kwargs["name"], queryset)
        if model is None:
            raise Http404
        self.check_object_permissions(self.request, model)
        if self.action == "partial_update":  # who may change it before what they sent
            permissions.require_change_model(self.request.user, model)
        return model

    def create(self, request, *args, **kwargs):
        # Who may register comes before what they sent: 403, not 400, for the unentitled.
        permissions.require_global(request.user, permissions.ADD_MODEL)
        return super().create(request, *args, **kwargs)

    def create_entity(self, **data):
        return services.registered_model_create(actor=self.request.user, **data)

    def update_entity(self, instance, data):
        model = services.registered_model_update(actor=self.request.user, model=instance, data=data)
        return _latest_kept(instance, _with_relations_of(instance, model, ["owner"]))

    def archive_entity(self, instance):
        model = services.registered_model_archive(actor=self.request.user, model=instance)
        return _latest_kept(instance, model)

    @extend_schema(request=None, responses=s.HeldGrantSerializer(many=True))
    @action(
        detail=True, methods=["get"], url_path="grants", filter_backends=[], pagination_class=None
    )
    def grants(self, request, name=None):
        """Who holds object permissions on this model (visible to whoever may see it)."""
        return Response(selectors.model_grants(self.get_object()))

    @extend_schema(request=s.GrantSerializer, responses=s.HeldGrantSerializer(many=True))
    @grants.mapping.post
    def grant(self, request, name=None):
        """Grant view or change permission on this model (owner, granted changers, superusers)."""
        return self._change_grant(request, services.model_permission_grant)

    @extend_schema(request=s.GrantSerializer, responses=s.HeldGrantSerializer(many=True))
    @action(
        detail=True,
        methods=["post"],
        url_path="grants/revoke",
        filter_backends=[],
        pagination_class=None,
    )
    def revoke(self, request, name=None):
        """Withdraw a permission granted on this model."""
        return self._change_grant(request, services.model_permission_revoke)

    @extend_schema(request=None, responses=s.AliasSerializer(many=True))
    @action(
        detail=True, methods=["get"], url_path="aliases", filter_backends=[], pagination_class=None
    )
    def aliases(self, request, name=None):
        """The model's aliases, governed ones (which name the production version) included."""
        return Response(self._aliases(self.get_object()))

    @extend_schema(request=s.AliasSerializer, responses=s.AliasSerializer(many=True))
    @aliases.mapping.post
    def set_alias(self, request, name=None):
        """Point an alias at a version (owner and granted changers; governed aliases: 403)."""
        model = self.get_object()
        # Who may set comes before what they sent: 403, not 400, for the unentitled.
        permissions.require_change_model(request.user, model)
        serializer = s.AliasSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = get_object_or_404(
            ModelVersion.objects.all(), model=model, version=serializer.validated_data["version"]
        )
        version.model = model
        services.model_alias_set(
            actor=request.user,
            model=model,
            alias=serializer.validated_data["alias"],
            version=version,
        )
        return Response(self._aliases(model))

    @extend_schema(request=None, responses=s.AliasSerializer(many=True))
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"aliases/(?P<alias>[A-Za-z0-9_-]{1,255})",
        filter_backends=[],
        pagination_class=None,
    )
    def delete_alias(self, request, name=None, alias=None):
        """Remove an alias (governed aliases: 403)."""
        model = self.get_object()
        services.model_alias_delete(actor=request.user, model=model, alias=alias)
        return Response(self._aliases(model))

    @staticmethod
    def _aliases(model: RegisteredModel) -> list[dict]:
        rows = sorted((alias, number) for _, _, number, alias in selectors.alias_rows([model.pk]))
        governed = settings.GOVERNED_ALIASES
        return [{"alias": a, "version": n, "governed": a in governed} for a, n in rows]

    def _change_grant(self, request, service):
        model = self.get_object()
        # Who may grant comes before what they sent: 403, not 400, for the unentitled.
        permissions.require_change_model(request.user, model)
        serializer = s.GrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        service(
            actor=request.user,
            model=model,
            grantee=data.get("user") or data["group"],
            permission=data["permission"],
        )
        return Response(selectors.model_grants(model))


class ModelVersionFilter(filters.FilterSet):
    class Meta:
        model = ModelVersion
        fields = ["stage", "framework"]


class ModelVersionViewSet(CatalogueViewSet):
    """Versions of one model, looked up by number. Stages change only through promotions."""

    serializer_class = s.ModelVersionSerializer
    lookup_field = "version"
    lookup_value_regex = "[0-9]{1,9}"
    filterset_class = ModelVersionFilter
    ordering_fields = ["version", "created_at"]
    ordering = ["version"]

    def registered_model(self) -> RegisteredModel:
        if not hasattr(self, "_registered_model"):
            model = selectors.visible_model(self.request.user, self.kwargs["model_name"])
            if model is None:
                raise Http404
            self._registered_model = model
        return self._registered_model

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        model = self.registered_model()  # visible: so are its versions
        return ModelVersion.objects.select_related(
            "model", "model__owner", "created_by", "training_run"
        ).filter(model=model)

    def get_object(self):
        """The version and its model in one keyed fetch, then the single-object visibility
        check (404 when the model is invisible or the version does not exist)."""
        queryset = ModelVersion.objects.all()
        if self.request.query_params:  # filters apply to detail routes too, as in DRF
            queryset = self.filter_queryset(queryset)
        version = selectors.visible_version(
            self.request.user, self.kwargs["model_name"], self.kwargs["version"], queryset
        )
        if version is None:
            raise Http404
        self._registered_model = version.model
        self.check_object_permissions(self.request, version)
        if self.action == "partial_update":  # who may change it before what they sent
            permissions.require_change_model(self.request.user, version.model)
        return version

    def create(self, request, *args, **kwargs):
        # Who may register versions of the model comes before what they sent: 403, not 400.
        permissions.require_change_model(request.user, self.registered_model())
        return super().create(request, *args, **kwargs)

    def create_entity(self, **data):
        return services.model_version_create(
            actor=self.request.user, model=self.registered_model(), **data
        )

    def update_entity(self, instance, data):
        version = services.model_version_update(
            actor=self.request.user, version=instance, data=data
        )
        return _with_relations_of(instance, version, ["model", "created_by", "training_run"])

    @extend_schema(responses={405: None})
    def destroy(self, request, *args, **kwargs):
        self.get_object()
        return Response(
            error_body(
                "Versions are never deleted; archive one through a promotion request.",
                "method_not_allowed",
            ),
            status=status.HTTP_405_METHOD_NOT_ALLOWED,
        )


class DatasetFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    owner = filters.CharFilter(field_name="owner__username")

    class Meta:
        model = Dataset
        fields = ["namespace", "name", "owner", "contains_pii", "archived"]


@extend_schema_view(destroy=extend_schema(responses={200: s.DatasetSerializer}))
class DatasetViewSet(CatalogueViewSet):
    """Datasets (namespace + name). DELETE archives."""

    serializer_class = s.DatasetSerializer
    update_serializer_class = s.DatasetUpdateSerializer
    permission_classes = [CataloguePermissions]
    queryset = Dataset.objects.select_related("owner")
    filterset_class = DatasetFilter
    ordering_fields = ["namespace", "name", "created_at"]
    ordering = ["namespace", "name"]

    def create_entity(self, **data):
        return services.dataset_create(actor=self.request.user, **data)

    def update_entity(self, instance, data):
        return services.dataset_update(actor=self.request.user, dataset=instance, data=data)

    def archive_entity(self, instance):
        return services.dataset_archive(actor=self.request.user, dataset=instance)


class DatasetVersionViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Versions of one dataset; immutable once recorded."""

    serializer_class = s.DatasetVersionSerializer
    permission_classes = [CataloguePermissions]
    ordering_fields = ["created_at", "version"]
    ordering = ["created_at"]
    filterset_fields = ["version"]

    def dataset(self) -> Dataset:
        if not hasattr(self, "_dataset"):
            self._dataset = get_object_or_404(Dataset, pk=self.kwargs["dataset_pk"])
        return self._dataset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DatasetVersion.objects.none()
        return self.dataset().versions.select_related("produced_by")

    def perform_create(self, serializer):
        serializer.instance = services.dataset_version_create(
            actor=self.request.user, dataset=self.dataset(), **serializer.validated_data
        )


class FeatureFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    namespace = filters.CharFilter(field_name="dataset__namespace")

    class Meta:
        model = Feature
        fields = ["dataset", "name", "namespace", "pii", "archived"]


@extend_schema_view(destroy=extend_schema(responses={200: s.FeatureSerializer}))
class FeatureViewSet(CatalogueViewSet):
    """Features (columns) of datasets. DELETE archives."""

    serializer_class = s.FeatureSerializer
    update_serializer_class = s.FeatureUpdateSerializer
    permission_classes = [CataloguePermissions]
    queryset = Feature.objects.all()
    filterset_class = FeatureFilter
    ordering_fields = ["name", "created_at"]
    ordering = ["dataset_id", "name"]

    def create_entity(self, **data):
        return services.feature_create(actor=self.request.user, **data)

    def update_entity(self, instance, data):
        return services.feature_update(actor=self.request.user, feature=instance, data=data)

    def archive_entity(self, instance):
        return services.feature_archive(actor=self.request.user, feature=instance)


class JobFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Job
        fields = ["namespace", "name", "archived"]


@extend_schema_view(destroy=extend_schema(responses={200: s.JobSerializer}))
class JobViewSet(CatalogueViewSet):
    """Jobs (namespace + name). DELETE archives."""

    serializer_class = s.JobSerializer
    update_serializer_class = s.JobUpdateSerializer
    permission_classes = [CataloguePermissions]
    queryset = Job.objects.all()
    filterset_class = JobFilter
    ordering_fields = ["namespace", "name", "created_at"]
    ordering = ["namespace", "name"]

    def create_entity(self, **data):
        return services.job_create(actor=self.request.user, **data)

    def update_entity(self, instance, data):
        return services.job_update(actor=self.request.user, job=instance, data=data)

    def archive_entity(self, instance):
        return services.job_archive(actor=self.request.user, job=instance)


class RunFilter(filters.FilterSet):
    namespace = filters.CharFilter(field_name="job__namespace")

    class Meta:
        model = Run
        fields = ["job", "state", "namespace"]


class RunViewSet(CatalogueViewSet):
    """Runs of jobs. Runs are never deleted."""

    serializer_class = s.RunSerializer
    update_serializer_class = s.RunUpdateSerializer
    permission_classes = [CataloguePermissions]
    queryset = Run.objects.select_related("job", "parent")
    filterset_class = RunFilter
    ordering_fields = ["started_at", "created_at"]
    ordering = ["-created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create_entity(self, **data):
        return services.run_create(actor=self.request.user, **data)

    def update_entity(self, instance, data):
        return services.run_update(actor=self.request.user, run=instance, data=data)


@extend_schema(
    responses={
        200: s.HealthSerializer,
        503: s.HealthSerializer,
    },
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    """Database and broker reachability; open to load balancers, reveals nothing else."""
    database = "ok"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "unreachable" here
        database = "unreachable"
    if settings.CELERY_TASK_EAGER:
        broker = "eager"
    else:
        broker = "ok"
        try:
            with current_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception:  # noqa: BLE001
            broker = "unreachable"
    healthy = database == "ok" and broker in ("ok", "eager")
    return Response(
        {"status": "ok" if healthy else "degraded", "database": database, "broker": broker},
        status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
