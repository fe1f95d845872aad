"""Oversight endpoints: thin views that look up what the caller may see (404 otherwise),
parse strictly, call a service (403/409 from it) and answer."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import PayloadTooLarge, UTCIsoDateTimeFilter
from oversight import monitoring, permissions, selectors, services
from oversight.api import serializers as s
from oversight.models import (
    AlertStatus,
    FindingStatus,
    MonitoringPoint,
    ReviewStatus,
    Severity,
    ValidationReport,
)
from registry.models import ModelVersion
from registry.permissions import can_view_model
from registry.selectors import versions_visible_to


def _visible_version(request, model_name: str, version: int) -> ModelVersion:
    return get_object_or_404(
        versions_visible_to(request.user), model__name=model_name, version=version
    )


class VersionReportsView(generics.ListAPIView):
    """GET: the version's validation reports with their findings, newest first.
    POST: record a validation report (model validators independent of the version's author;
    403 otherwise), optionally with its findings — all of it or nothing."""

    serializer_class = s.ReportSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ValidationReport.objects.none()
        version = _visible_version(self.request, self.kwargs["model_name"], self.kwargs["version"])
        return (
            ValidationReport.objects.filter(version=version)
            .select_related("version__model", "validator")
            .prefetch_related("findings__owner", "findings__created_by", "findings__closed_by")
        )

    @extend_schema(request=s.ReportInputSerializer, responses={201: s.ReportSerializer})
    def post(self, request, model_name: str, version: int):
        target = _visible_version(request, model_name, version)
        permissions.require_validator(request.user, target)
        data = s.ReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        findings = values.pop("findings", [])
        with transaction.atomic():
            report = services.validation_report_create(actor=request.user, version=target, **values)
            for finding in findings:
                services.finding_record(actor=request.user, report=report, **finding)
        fresh = self.get_queryset().get(pk=report.pk)
        return Response(s.ReportSerializer(fresh).data, status=status.HTTP_201_CREATED)


class ReportViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One validation report; POST …/findings adds a finding to it."""

    serializer_class = s.ReportSerializer
    lookup_value_regex = "[0-9]{1,9}"

    def get_queryset(self):
        return selectors.reports_visible_to(self.request.user).prefetch_related(
            "findings__owner", "findings__created_by", "findings__closed_by"
        )

    @extend_schema(request=s.FindingInputSerializer, responses={201: s.FindingSerializer})
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def findings(self, request, pk=None):
        """Add an open finding (model validators independent of the version's author)."""
        report = self.get_object()
        permissions.require_validator(request.user, report.version)
        data = s.FindingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        finding = services.finding_record(actor=request.user, report=report, **data.validated_data)
        fresh = selectors.findings_visible_to(request.user).get(pk=finding.pk)
        return Response(s.FindingSerializer(fresh).data, status=status.HTTP_201_CREATED)


class FindingFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=FindingStatus.choices)
    severity = filters.ChoiceFilter(choices=Severity.choices)
    model = filters.CharFilter(field_name="report__version__model__name", help_text="Model name.")

    class Meta:
        model = s.Finding
        fields = ["status", "severity", "model"]


class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Validation findings of the models the caller may see."""

    serializer_class = s.FindingSerializer
    filterset_class = FindingFilter
    ordering_fields = ["created_at", "due_date"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = "[0-9]{1,9}"

    def get_queryset(self):
        return selectors.findings_visible_to(self.request.user)

    @extend_schema(request=s.FindingCloseSerializer, responses=s.FindingSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def close(self, request, pk=None):
        """Close as remediated or accepted, with a comment. 403 for who you are (a high or
        critical finding needs someone other than the version's author); 409 if closed."""
        finding = self.get_object()
        # Who may close comes before what they sent: 403, not 400, for the unentitled.
        refusal = permissions.finding_close_refusal(request.user, finding)
        if refusal:
            raise PermissionDenied(refusal)
        data = s.FindingCloseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.finding_close(actor=request.user, finding=finding, **data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)


class PointFilter(filters.FilterSet):
    metric = filters.CharFilter()
    segment = filters.CharFilter()
    since = UTCIsoDateTimeFilter(field_name="window_end", lookup_expr="gte")
    until = UTCIsoDateTimeFilter(field_name="window_end", lookup_expr="lte")

    class Meta:
        model = MonitoringPoint
        fields = ["metric", "segment", "since", "until"]


class MonitoringView(generics.ListAPIView):
    """GET: the version's monitoring points (append-only), filtered by metric, segment and
    window end. POST: append a batch of points (who may change the model: its owner and
    those granted change on it, e.g. pipelines)."""

    serializer_class = s.MonitoringPointSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = PointFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MonitoringPoint.objects.none()
        version = _visible_version(self.request, self.kwargs["model_name"], self.kwargs["version"])
        return MonitoringPoint.objects.filter(version=version).order_by("window_end", "id")

    @extend_schema(
        request=s.MonitoringBatchSerializer, responses={201: s.MonitoringBatchResultSerializer}
    )
    def post(self, request, model_name: str, version: int):
        # One query: the version, its model and whether the caller may change it. Changers
        # see the model; only for the others is visibility asked (404 or 403).
        target = permissions.version_for_monitoring(request.user, model_name, version)
        if target is None or not permissions.may_post_monitoring(request.user, target):
            if target is None or not can_view_model(request.user, target.model):
                raise Http404
            raise PermissionDenied(
                f"You may not post monitoring of model '{model_name}': its owner and users "
                "granted change permission on it may."
            )
        try:
            points = monitoring.parse_batch(request.data, max_points=settings.OVERSIGHT_MAX_POINTS)
        except monitoring.BatchTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from exc
        except monitoring.BatchInvalid as exc:
            raise serializers.ValidationError(
                {(key or "non_field_errors"): [message] for key, message in exc.errors.items()}
            ) from exc
        batch = services.monitoring_points_record(actor=request.user, version=target, points=points)
        body = {
            "recorded": len(batch.ids),
            "breaching": len(batch.breaching),
            "first_id": batch.ids[0],
            "last_id": batch.ids[-1],
        }
        return Response(body, status=status.HTTP_201_CREATED)


class AlertFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=AlertStatus.choices)
    model = filters.CharFilter(field_name="version__model__name", help_text="Model name.")
    version = filters.NumberFilter(field_name="version__version", help_text="Version number.")

    class Meta:
        model = s.MonitoringAlert
        fields = ["status", "model", "version"]


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Monitoring alerts of the models the caller may see, newest first."""

    serializer_class = s.AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["opened_at"]
    ordering = ["-opened_at", "-id"]
    lookup_value_regex = "[0-9]{1,9}"

    def get_queryset(self):
        return selectors.alerts_visible_to(self.request.user)

    @extend_schema(request=s.CommentSerializer, responses=s.AlertSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def resolve(self, request, pk=None):
        """Resolve an open alert with a comment (the model's changers and approvers)."""
        alert = self.get_object()
        # Who may resolve comes before what they sent: 403, not 400, for the unentitled.
        if not permissions.may_resolve_alert(request.user, alert.version):
            raise PermissionDenied(
                "Resolving an alert needs change rights on the model or an approver role."
            )
        data = s.CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.monitoring_alert_resolve(
            actor=request.user, alert=alert, comment=data.validated_data["comment"]
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


class ReviewFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ReviewStatus.choices)
    model = filters.CharFilter(field_name="version__model__name", help_text="Model name.")
    overdue = filters.BooleanFilter(method="filter_overdue", help_text="Open and past due.")

    class Meta:
        model = s.PeriodicReview
        fields = ["status", "model", "overdue"]

    def filter_overdue(self, queryset, name, value):
        ids = selectors.overdue_reviews().values("pk")
        return queryset.filter(pk__in=ids) if value else queryset.exclude(pk__in=ids)


class ReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Periodic reviews of production versions of the models the caller may see."""

    serializer_class = s.ReviewSerializer
    filterset_class = ReviewFilter
    ordering_fields = ["due_at", "opened_at"]
    ordering = ["due_at", "id"]
    lookup_value_regex = "[0-9]{1,9}"

    def get_queryset(self):
        return selectors.reviews_visible_to(self.request.user)

    @extend_schema(request=s.CommentSerializer, responses=s.ReviewSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def complete(self, request, pk=None):
        """Record the review as done (approvers of the model, not the version's author)."""
        review = self.get_object()
        # Who may complete comes before what they sent: 403, not 400, for the unentitled.
        if (refusal := permissions.review_refusal(request.user, review.version)) is not None:
            raise PermissionDenied(refusal)
        data = s.CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.periodic_review_complete(
            actor=request.user, review=review, comment=data.validated_data["comment"]
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=review.pk)).data)
