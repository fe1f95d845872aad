"""Webhooks endpoints: thin views over the webhooks services."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.response import Response

from registry import selectors as registry_selectors
from webhooks import services
from webhooks.api import serializers as s
from webhooks.models import Webhook


class WebhookPermissions(DjangoModelPermissions):
    """Global webhooks permissions (administrators), `view` required for reads."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook subscriptions (administrators). The signing secret is shown once, on create."""

    serializer_class = s.WebhookSerializer
    permission_classes = [WebhookPermissions]
    queryset = Webhook.objects.select_related("model", "created_by")
    http_method_names = ["get", "post", "patch", "head", "options"]
    filter_backends: list = []
    ordering = ["name"]

    def get_serializer_class(self):
        if self.action == "partial_update":
            return s.WebhookUpdateSerializer
        return s.WebhookSerializer

    @extend_schema(responses={201: s.WebhookCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = s.WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        model_name = (data.pop("model", None) or {}).get("name")
        model = None
        if model_name:
            model = get_object_or_404(
                registry_selectors.models_visible_to(request.user), name=model_name
            )
        webhook, secret = services.webhook_create(actor=request.user, model=model, **data)
        body = s.WebhookCreatedSerializer(webhook, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.webhook_update(
            actor=self.request.user, webhook=serializer.instance, data=serializer.validated_data
        )

    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        response.data = s.WebhookSerializer(self.get_object()).data
        return response

    @extend_schema(request=None, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, pk=None):
        """Send a `webhook.test` event now (signed like any other)."""
        delivery = services.webhook_test_send(actor=request.user, webhook=self.get_object())
        delivery.refresh_from_db()
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=s.DeliverySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request, pk=None):
        """The webhook's delivery log, newest first."""
        page = self.paginate_queryset(self.get_object().deliveries.order_by("-id"))
        return self.get_paginated_response(s.DeliverySerializer(page, many=True).data)
