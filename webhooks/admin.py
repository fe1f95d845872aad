"""Admin for webhooks: subscribe (the signing secret is shown once), send a test event, and
the delivery log (status, attempts, latency). Saves go through the webhooks services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin, ServiceAdmin, ServiceForm
from core.errors import Conflict
from registry.admin import HistoryLinkMixin
from registry.selectors import models_visible_to
from webhooks import events, services
from webhooks.models import Webhook, WebhookDelivery


class WebhookForm(ServiceForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=events.event_type_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "model", "events", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "model" in self.fields and self.request is not None:
            self.fields["model"].queryset = models_visible_to(self.request.user)

    def call_service(self, actor):
        data = dict(self.cleaned_data)
        data["events"] = list(data.get("events") or [])
        if self.instance.pk is None:
            data.pop("active", None)
            webhook, secret = services.webhook_create(actor=actor, **data)
            self.request._webhook_secret = secret
            return webhook
        changes = {k: v for k, v in self.changes().items() if k != "model"}
        if "events" in changes:
            changes["events"] = list(changes["events"])
        return services.webhook_update(actor=actor, webhook=self.instance, data=changes)


@admin.register(Webhook)
class WebhookAdmin(HistoryLinkMixin, ServiceAdmin):
    form = WebhookForm
    list_display = ["name", "url", "model", "active", "created_by", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    list_select_related = ["model", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at", "delivery_log", "audit_history"]
    actions = ["send_test_event", "rotate_secret"]

    @admin.display(description="Deliveries")
    def delivery_log(self, obj):
        if obj.pk is None:
            return "-"
        url = reverse("admin:webhooks_webhookdelivery_changelist")
        return format_html('<a href="{}?webhook__id__exact={}">Delivery log</a>', url, obj.pk)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["model"] if obj is not None else [])

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_webhook_secret", None)
        if secret:
            messages.warning(
                request,
                f"Signing secret of '{obj}' (shown once, stored encrypted): {secret}",
            )
        return super().response_add(request, obj, post_url_continue)

    def log_addition(self, request, obj, message):
        pass  # the audit event is the record

    def log_change(self, request, obj, message):
        pass

    @admin.action(description="Send a test event")
    def send_test_event(self, request, queryset):
        for webhook in queryset:
            try:
                delivery = services.webhook_test_send(actor=request.user, webhook=webhook)
                messages.success(request, f"{webhook}: test event {delivery.message_id} queued.")
            except (Conflict, PermissionDenied, ValidationError) as exc:
                messages.warning(request, f"{webhook}: {getattr(exc, 'detail', exc)}")

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request, queryset):
        for webhook in queryset:
            try:
                secret = services.webhook_secret_rotate(actor=request.user, webhook=webhook)
                messages.warning(request, f"New signing secret of '{webhook}': {secret}")
            except PermissionDenied as exc:
                messages.warning(request, f"{webhook}: {exc}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "webhook",
        "event_type",
        "status",
        "attempts",
        "response_status",
        "latency_ms",
        "last_error",
    ]
    list_filter = ["status", "event_type", "webhook"]
    search_fields = ["message_id", "event_type"]
    list_select_related = ["webhook"]
