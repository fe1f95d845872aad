"""Periodic reviews and the overdue list in the admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from core.admin import ServiceAdmin, ServiceForm
from oversight import services
from oversight.admin._common import VisibleMixin, _staff
from oversight.models import (
    OverdueReview,
    PeriodicReview,
    ReviewStatus,
)
from registry.admin import HistoryLinkMixin
from registry.permissions import can_view_model

# --- periodic review ----------------------------------------------------------------------------


class ReviewCompleteForm(ServiceForm):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=10_000,
        help_text="Required: what the review covered and concluded.",
    )

    class Meta:
        model = PeriodicReview
        fields = ["comment"]

    def call_service(self, actor):
        return services.periodic_review_complete(
            actor=actor, review=self.instance, comment=self.cleaned_data["comment"]
        )


@admin.register(PeriodicReview)
class PeriodicReviewAdmin(VisibleMixin, HistoryLinkMixin, ServiceAdmin):
    form = ReviewCompleteForm
    list_display = ["version", "status", "due_at", "is_overdue", "completed_by", "completed_at"]
    list_filter = ["status"]
    list_select_related = ["version__model", "completed_by"]
    search_fields = ["version__model__name"]
    readonly_fields = [
        "version",
        "status",
        "due_at",
        "opened_at",
        "completed_at",
        "completed_by",
        "audit_history",
    ]

    @admin.display(description="Overdue", boolean=True)
    def is_overdue(self, obj):
        return obj.overdue

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status != ReviewStatus.OPEN:
            fields.append("comment")
        return fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return _staff(request)
        return can_view_model(request.user, obj.version.model)

    def has_change_permission(self, request, obj=None):
        from oversight.permissions import review_refusal

        if obj is None:
            return _staff(request)
        return obj.status == ReviewStatus.OPEN and review_refusal(request.user, obj.version) is None

    def has_module_permission(self, request):
        return _staff(request)


@admin.register(OverdueReview)
class OverdueReviewAdmin(PeriodicReviewAdmin):
    list_display = ["version", "due_at", "days_overdue", "opened_at"]
    list_filter: list = []

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(status=ReviewStatus.OPEN, due_at__lt=timezone.now())
        )

    @admin.display(description="Days overdue")
    def days_overdue(self, obj):
        return (timezone.now() - obj.due_at).days
