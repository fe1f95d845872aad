"""Promotion endpoints: thin views that look up what the caller may see (404 otherwise), parse
strictly, call a service and answer the request as it now stands."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, services
from approvals.api import serializers as s
from approvals.models import Outcome, PromotionRequest, RequestStatus, StageTransition
from approvals.permissions import decide_refusal, may_file
from core.moments import in_utc
from registry import selectors as registry_selectors
from registry.models import RegisteredModel, Stage


class PromotionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=RequestStatus.choices)
    model = filters.CharFilter(field_name="version__model__name", help_text="Model name.")
    version = filters.NumberFilter(field_name="version__version", help_text="Version number.")
    stage = filters.ChoiceFilter(
        field_name="to_stage", choices=Stage.choices, help_text="Target stage."
    )
    mine = filters.BooleanFilter(method="filter_mine", help_text="Only requests I filed.")
    awaiting_me = filters.BooleanFilter(
        method="filter_awaiting_me", help_text="Only pending requests I may decide now."
    )

    class Meta:
        model = PromotionRequest
        fields = ["status", "model", "version", "stage", "mine", "awaiting_me"]

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(requester=user) if value else queryset.exclude(requester=user)

    def filter_awaiting_me(self, queryset, name, value):
        ids = selectors.awaiting(self.request.user).values("pk")
        return queryset.filter(pk__in=ids) if value else queryset.exclude(pk__in=ids)


class PromotionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Promotion requests about the models the caller may see, with each one's policy
    progress (every slot: role, filled by whom, when)."""

    serializer_class = s.PromotionRequestSerializer
    filterset_class = PromotionFilter
    ordering_fields = ["created_at", "expires_at"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = "[0-9]{1,9}"

    def get_queryset(self):
        return selectors.requests_visible_to(self.request.user).prefetch_related(
            "decisions__decider"
        )

    def get_object(self):
        """One keyed fetch, then the single-object visibility check (404 when invisible)."""
        queryset = PromotionRequest.objects.all()
        if self.action == "retrieve":  # decisions answered from this very read
            queryset = queryset.prefetch_related("decisions__decider")
        if self.request.query_params:  # filters apply to detail routes too, as in DRF
            queryset = self.filter_queryset(queryset)
        promotion = selectors.visible_request(self.request.user, self.kwargs["pk"], queryset)
        if promotion is None:
            raise Http404
        self.check_object_permissions(self.request, promotion)
        return promotion

    def _answer(self, promotion: PromotionRequest, code: int = status.HTTP_200_OK) -> Response:
        # Already found visible: read it again as it now stands.
        fresh = _fresh(promotion.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def _decide(self, request, outcome: str) -> Response:
        promotion = self.get_object()
        # Who may decide comes before what they sent: 403, not 400, for the ineligible (the
        # service asks again under its locks).
        refusal = decide_refusal(request.user, promotion, promotion.version)
        if refusal is not None:
            raise PermissionDenied(refusal)
        data = s.DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.promotion_decide(
            actor=request.user,
            request=promotion,
            outcome=outcome,
            comment=data.validated_data["comment"],
        )
        return self._answer(promotion)

    @extend_schema(request=s.DecisionInputSerializer, responses=s.PromotionRequestSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def approve(self, request, pk=None):
        """Approve: fills one slot of a role you hold; the approval that meets the quorum
        changes the stage. 403 for the requester, the version's creator, and people without
        the role or the per-model decide permission; 409 when the request is no longer
        pending, expired, superseded (content or stage changed), or your slots are filled."""
        return self._decide(request, Outcome.APPROVE)

    @extend_schema(request=s.DecisionInputSerializer, responses=s.PromotionRequestSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def reject(self, request, pk=None):
        """Reject: one rejection ends the request. Same eligibility as approving."""
        return self._decide(request, Outcome.REJECT)

    @extend_schema(request=s.CancelInputSerializer, responses=s.PromotionRequestSerializer)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def cancel(self, request, pk=None):
        """Cancel your own pending request (the requester only: 403 for anyone else)."""
        promotion = self.get_object()
        if promotion.requester_id != request.user.pk:  # before the body (the service asks again)
            raise PermissionDenied(services.CANCEL_REFUSED)
        data = s.CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.promotion_request_cancel(
            actor=request.user, request=promotion, reason=data.validated_data.get("reason", "")
        )
        return self._answer(promotion)


class PromotionFileView(APIView):
    """POST: file a request to move this version to another stage."""

    @extend_schema(request=s.PromotionFileSerializer, responses={201: s.PromotionRequestSerializer})
    def post(self, request, model_name: str, version: int):
        """File a promotion request under the policy for the model's risk tier. 409 when the
        transition is not allowed, a request is already pending for the version, or the
        policy's filing gates (evidence) do not hold."""
        target = registry_selectors.visible_version(request.user, model_name, version)
        if target is None:
            raise Http404
        if not may_file(request.user, target):  # before the body (the service asks again)
            raise PermissionDenied(services.file_refused(target.model))
        data = s.PromotionFileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = services.promotion_request_file(
            actor=request.user, version=target, **data.validated_data
        )
        return Response(
            s.PromotionRequestSerializer(_fresh(promotion.pk)).data, status=status.HTTP_201_CREATED
        )


def _fresh(pk: int) -> PromotionRequest:
    """A request the caller was found to see, read again as it now stands."""
    return (
        PromotionRequest.objects.select_related(*selectors.REQUEST_RELATED)
        .prefetch_related("decisions__decider")
        .get(pk=pk)
    )


def _visible_model(request, model_name: str) -> RegisteredModel:
    model = registry_selectors.visible_model(request.user, model_name)
    if model is None:
        raise Http404
    return model


class StageHistoryView(generics.ListAPIView):
    """Every applied stage change of the model's versions, oldest first (append-only)."""

    serializer_class = s.StageTransitionSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StageTransition.objects.none()
        model = _visible_model(self.request, self.kwargs["model_name"])
        return selectors.stage_history(model).order_by("occurred_at", "id")


class StagesAsOfView(APIView):
    """Which version was in each stage at a moment (now when `as_of` is not given)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                description="ISO 8601 time, e.g. 2026-11-30T12:00:00Z (UTC when no offset).",
            )
        ],
        responses=s.StagesAsOfSerializer,
    )
    def get(self, request, model_name: str):
        model = _visible_model(request, model_name)
        raw = request.query_params.get("as_of")
        as_of = timezone.now()
        if raw:
            try:
                parsed = parse_datetime(raw)
            except ValueError:
                parsed = None
            parsed = parsed and in_utc(parsed)  # None beyond the calendar in UTC
            if parsed is None:
                raise serializers.ValidationError(
                    {"as_of": "Must be an ISO 8601 time, e.g. 2026-11-30T12:00:00Z."}
                )
            as_of = parsed
        rows = selectors.stages_as_of(model, as_of)
        production = next((r["version"] for r in rows if r["stage"] == Stage.PRODUCTION), None)
        body = {"model": model.name, "as_of": as_of, "production": production, "versions": rows}
        return Response(s.StagesAsOfSerializer(body).data)
