"""Periodic reviews and the overdue list in the admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from core.admin import ServiceAdmin, ServiceForm
from oversight import services
from oversight.admin._common import OpenItemMixin, VisibleMixin
from oversight.models import (
    OverdueReview,
    PeriodicReview,
    ReviewStatus,
)
from registry.admin import HistoryLinkMixin

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
class PeriodicReviewAdmin(OpenItemMixin, VisibleMixin, HistoryLinkMixin, ServiceAdmin):
    form = ReviewCompleteForm
    open_status, closing_field = ReviewStatus.OPEN, "comment"
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

    def may_close(self, user, version) -> bool:
        from oversight.permissions import review_refusal

        return review_refusal(user, version) is None


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
