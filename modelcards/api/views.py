"""Model-card endpoints: request a rendering, follow its status, download the PDF."""

from __future__ import annotations

from django.http import FileResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from modelcards import selectors, services
from modelcards.api.serializers import ModelCardRequestSerializer, ModelCardSerializer
from modelcards.models import ModelCard
from registry.selectors import versions_visible_to


class ModelCardFilter(filters.FilterSet):
    model = filters.CharFilter(field_name="version__model__name")
    version = filters.NumberFilter(field_name="version__version")

    class Meta:
        model = ModelCard
        fields = ["model", "version", "status", "content_digest"]


class ModelCardViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cards of the versions the caller may see; reading them needs a reviewer role or
    ownership of the model (403 otherwise)."""

    serializer_class = ModelCardSerializer
    filterset_class = ModelCardFilter
    ordering_fields = ["created_at", "finished_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.cards_visible_to(self.request.user)

    def get_object(self):
        card = super().get_object()
        services.require_read_cards(self.request.user, card.version)
        return card

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        readable = [c.pk for c in queryset if services.can_read_cards(request.user, c.version)]
        page = self.paginate_queryset(queryset.filter(pk__in=readable))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            304: None,
            409: OpenApiResponse(description="not ready yet"),
        }
    )
    @action(detail=True, methods=["get"], url_path="pdf", url_name="pdf")
    def pdf(self, request, pk=None):
        """The PDF (ETag = its SHA-256). Every download is recorded in the audit log."""
        card = self.get_object()
        etag = f'"{card.sha256}"'
        if card.sha256 and request.headers.get("If-None-Match") == etag:
            return HttpResponseNotModified(headers={"ETag": etag})
        services.model_card_download(actor=request.user, card=card)
        response = FileResponse(
            card.file.open("rb"),
            content_type="application/pdf",
            as_attachment=True,
            filename=f"model-card-{card.version.model.name}-v{card.version.version}.pdf",
        )
        response["ETag"] = etag
        return response


class ModelCardRequestView(APIView):
    """POST: a card for this version's current content (202 when queued, 200 when it exists)."""

    @extend_schema(
        request=ModelCardRequestSerializer,
        responses={200: ModelCardSerializer, 202: ModelCardSerializer},
    )
    def post(self, request, model_name: str, version: int):
        target = get_object_or_404(
            versions_visible_to(request.user), model__name=model_name, version=version
        )
        payload = ModelCardRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        card, created = services.model_card_request(
            actor=request.user, version=target, force=payload.validated_data["force"]
        )
        card.refresh_from_db()
        body = ModelCardSerializer(card).data
        response = Response(
            body,
            status=status.HTTP_202_ACCEPTED
            if created and card.status != "ready"
            else status.HTTP_200_OK,
        )
        response["Location"] = body["status_url"]
        return response
