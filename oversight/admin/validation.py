"""Validation reports and findings in the admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Q

from core.admin import ServiceAdmin, ServiceForm
from oversight import services
from oversight.admin._common import VisibleMixin, _staff
from oversight.models import (
    Finding,
    FindingStatus,
    ValidationReport,
)
from registry.admin import HistoryLinkMixin
from registry.permissions import can_view_model
from registry.selectors import models_visible_to, versions_visible_to

# --- validation ---------------------------------------------------------------------------------


class FindingInline(admin.TabularInline):
    model = Finding
    fields = ["title", "severity", "status", "owner", "due_date", "closed_by", "closing_comment"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ValidationReportForm(ServiceForm):
    class Meta:
        model = ValidationReport
        fields = ["version", "scope", "methods", "conclusion", "conditions_of_use"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "version" in self.fields and self.request is not None:
            self.fields["version"].queryset = versions_visible_to(self.request.user)

    def call_service(self, actor):
        return services.validation_report_create(actor=actor, **self.cleaned_data)


@admin.register(ValidationReport)
class ValidationReportAdmin(VisibleMixin, HistoryLinkMixin, ServiceAdmin):
    """Reports are recorded here (model validators) and never edited afterwards."""

    form = ValidationReportForm
    list_display = ["version", "validator", "created_at", "open_findings"]
    list_select_related = ["version__model", "validator"]
    search_fields = ["version__model__name", "scope", "methods"]
    fields = [
        "version",
        "validator",
        "created_at",
        "scope",
        "methods",
        "conclusion",
        "conditions_of_use",
        "audit_history",
    ]
    inlines = [FindingInline]

    def get_fields(self, request, obj=None):
        return self.fields if obj is not None else ValidationReportForm.Meta.fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # findings are added to a report

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []

    def has_add_permission(self, request):
        from approvals.permissions import user_roles
        from approvals.workflow import VALIDATOR

        return request.user.is_superuser or VALIDATOR in user_roles(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(open_count=Count("findings", filter=Q(findings__status="open")))
        )

    @admin.display(description="Open findings", ordering="open_count")
    def open_findings(self, obj):
        return obj.open_count


class FindingCloseForm(ServiceForm):
    status = forms.ChoiceField(
        choices=[(s, label) for s, label in FindingStatus.choices if s != FindingStatus.OPEN]
    )
    closing_comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=10_000,
        help_text="Required: what was done, or why the risk is accepted.",
    )

    class Meta:
        model = Finding
        fields = ["status", "closing_comment"]

    def call_service(self, actor):
        return services.finding_close(
            actor=actor,
            finding=self.instance,
            status=self.cleaned_data["status"],
            comment=self.cleaned_data["closing_comment"],
        )


class FindingAddForm(ServiceForm):
    class Meta:
        model = Finding
        fields = ["report", "title", "description", "severity", "owner", "due_date"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "report" in self.fields and self.request is not None:
            from oversight.selectors import reports_visible_to

            self.fields["report"].queryset = reports_visible_to(self.request.user)

    def call_service(self, actor):
        return services.finding_record(actor=actor, **self.cleaned_data)


@admin.register(Finding)
class FindingAdmin(HistoryLinkMixin, ServiceAdmin):
    form = FindingCloseForm
    list_display = ["title", "severity", "status", "version", "owner", "due_date", "created_at"]
    list_filter = ["status", "severity"]
    list_select_related = ["report__version__model", "owner"]
    search_fields = ["title", "report__version__model__name"]
    readonly_fields = [
        "report",
        "title",
        "description",
        "severity",
        "owner",
        "due_date",
        "created_by",
        "created_at",
        "closed_by",
        "closed_at",
        "audit_history",
    ]

    def get_queryset(self, request):
        return Finding.objects.filter(
            report__version__model__in=models_visible_to(request.user).values("pk")
        )

    @admin.display(description="Version")
    def version(self, obj):
        return obj.report.version

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = FindingAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return FindingAddForm.Meta.fields
        return [*self.readonly_fields[:-1], "status", "closing_comment", "audit_history"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = list(self.readonly_fields)
        if obj.status != FindingStatus.OPEN:
            fields += ["status", "closing_comment"]
        return fields

    def has_add_permission(self, request):
        from approvals.permissions import user_roles
        from approvals.workflow import VALIDATOR

        return request.user.is_superuser or VALIDATOR in user_roles(request.user)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return _staff(request)
        return can_view_model(request.user, obj.report.version.model)

    def has_change_permission(self, request, obj=None):
        from oversight.permissions import finding_close_refusal

        if obj is None:
            return _staff(request)
        return obj.status == FindingStatus.OPEN and finding_close_refusal(request.user, obj) is None

    def has_module_permission(self, request):
        return _staff(request)
