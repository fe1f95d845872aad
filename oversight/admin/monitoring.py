"""Monitoring in the admin: charts per metric with thresholds, alerts, rules, policies."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin, ServiceAdmin, ServiceForm
from oversight import charts, selectors, services
from oversight.admin._common import OpenItemMixin, VisibleMixin, _staff
from oversight.models import (
    AlertStatus,
    MonitoredVersion,
    MonitoringAlert,
    MonitoringPoint,
    OversightPolicy,
    ThresholdRule,
)
from registry.admin import HistoryLinkMixin
from registry.permissions import can_view_model
from registry.selectors import models_visible_to, versions_visible_to

# --- monitoring -------------------------------------------------------------------------------


def monitoring_charts(version) -> str:
    """Every metric of a version, charted with its thresholds (inline SVG, labels escaped)."""
    series = selectors.monitoring_series(version)
    if not series:
        return "No monitoring points yet."
    blocks = []
    for entry in series:
        latest = ", ".join(
            f"{seg or 'all'}: {value:.4g} ({when:%Y-%m-%d})"
            for seg, (when, value) in entry["latest"].items()
        )
        blocks.append(
            format_html(
                '<div class="monitoring-metric">{}<div class="monitoring-latest">Latest: {}</div>'
                "</div>",
                mark_safe(charts.series_chart(entry)),  # noqa: S308 - built with escape()
                latest or "—",
            )
        )
    return mark_safe("".join(blocks))  # noqa: S308 - each block is format_html output


@admin.register(MonitoredVersion)
class MonitoredVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "stage", "open_alerts", "points"]
    list_filter = ["stage", "model__risk_tier"]
    search_fields = ["model__name"]
    fields = ["model", "version", "stage", "charts", "alerts"]
    readonly_fields = fields

    class Media:
        css = {"all": ["oversight/monitoring.css"]}

    def get_queryset(self, request):
        has_points = MonitoringPoint.objects.filter(version_id=OuterRef("pk"))
        return (
            MonitoredVersion.objects.filter(pk__in=versions_visible_to(request.user).values("pk"))
            .filter(Exists(has_points))
            .select_related("model")
            .annotate(
                open_count=Count(
                    "monitoring_alerts", filter=Q(monitoring_alerts__status=AlertStatus.OPEN)
                )
            )
        )

    @admin.display(description="Open alerts", ordering="open_count")
    def open_alerts(self, obj):
        return obj.open_count

    @admin.display(description="Points")
    def points(self, obj):
        return MonitoringPoint.objects.filter(version_id=obj.pk).count()

    @admin.display(description="Metrics and thresholds")
    def charts(self, obj):
        return monitoring_charts(obj)

    @admin.display(description="Alerts")
    def alerts(self, obj):
        rows = MonitoringAlert.objects.filter(version_id=obj.pk).order_by("-opened_at")[:20]
        if not rows:
            return "None."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">#{}</a> {} — {} ({})</li>',
                (
                    (
                        reverse("admin:oversight_monitoringalert_change", args=[a.pk]),
                        a.pk,
                        a.opened_at.strftime("%Y-%m-%d %H:%M"),
                        a.rule_text,
                        a.status,
                    )
                    for a in rows
                ),
            ),
        )

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return _staff(request)
        return can_view_model(request.user, obj.model)

    def has_module_permission(self, request):
        return _staff(request)


class AlertResolveForm(ServiceForm):
    resolution_comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=10_000,
        help_text="Required: what was done about it.",
    )

    class Meta:
        model = MonitoringAlert
        fields = ["resolution_comment"]

    def call_service(self, actor):
        return services.monitoring_alert_resolve(
            actor=actor, alert=self.instance, comment=self.cleaned_data["resolution_comment"]
        )


@admin.register(MonitoringAlert)
class MonitoringAlertAdmin(OpenItemMixin, VisibleMixin, HistoryLinkMixin, ServiceAdmin):
    form = AlertResolveForm
    open_status, closing_field = AlertStatus.OPEN, "resolution_comment"
    list_display = ["id", "version", "rule_text", "value", "breaches", "status", "opened_at"]
    list_filter = ["status"]
    list_select_related = ["version__model"]
    search_fields = ["version__model__name", "metric", "segment"]
    readonly_fields = [
        "version",
        "rule_text",
        "metric",
        "segment",
        "value",
        "breaches",
        "status",
        "opened_at",
        "revalidation",
        "notified_at",
        "resolved_at",
        "resolved_by",
        "chart",
        "audit_history",
    ]

    @admin.display(description="Re-validation request")
    def revalidation(self, obj):
        if obj.revalidation_request_id:
            url = reverse(
                "admin:approvals_promotionrequest_change", args=[obj.revalidation_request_id]
            )
            return format_html('<a href="{}">#{}</a>', url, obj.revalidation_request_id)
        return obj.revalidation_note or "—"

    @admin.display(description="Metric and thresholds")
    def chart(self, obj):
        entry = next(
            (e for e in selectors.monitoring_series(obj.version) if e["metric"] == obj.metric),
            None,
        )
        return mark_safe(charts.series_chart(entry)) if entry else "—"  # noqa: S308

    def may_close(self, user, version) -> bool:
        from oversight.permissions import may_resolve_alert

        return may_resolve_alert(user, version)


class ThresholdRuleForm(ServiceForm):
    class Meta:
        model = ThresholdRule
        fields = [
            "model",
            "risk_tier",
            "metric",
            "segment",
            "comparator",
            "threshold",
            "revalidate",
            "active",
            "description",
        ]

    def call_service(self, actor):
        if self.instance.pk is None:
            return services.threshold_rule_create(actor=actor, **self.cleaned_data)
        return services.threshold_rule_update(actor=actor, rule=self.instance, data=self.changes())


@admin.register(ThresholdRule)
class ThresholdRuleAdmin(HistoryLinkMixin, ServiceAdmin):
    form = ThresholdRuleForm
    list_display = ["__str__", "model", "risk_tier", "revalidate", "active", "updated_at"]
    list_filter = ["active", "revalidate", "risk_tier"]
    search_fields = ["metric", "model__name"]
    readonly_fields = ["updated_at", "audit_history"]
    raw_id_fields = ["model"]

    def get_queryset(self, request):
        # A rule on a model names it: only rules by risk tier and on models the user sees.
        return (
            super()
            .get_queryset(request)
            .filter(
                Q(model__isnull=True) | Q(model__in=models_visible_to(request.user).values("pk"))
            )
        )

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: alerts keep pointing at their rule


class OversightPolicyForm(ServiceForm):
    class Meta:
        model = OversightPolicy
        fields = ["review_interval_months", "block_promotions_when_overdue"]

    def call_service(self, actor):
        return services.oversight_policy_update(
            actor=actor, policy=self.instance, data=self.changes()
        )


@admin.register(OversightPolicy)
class OversightPolicyAdmin(HistoryLinkMixin, ServiceAdmin):
    form = OversightPolicyForm
    list_display = ["risk_tier", "review_interval_months", "block_promotions_when_overdue"]
    readonly_fields = ["risk_tier", "updated_at", "audit_history"]

    def has_add_permission(self, request):
        return False  # one per risk tier, created by the migrations

    def has_delete_permission(self, request, obj=None):
        return False
