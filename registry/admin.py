"""Admin for the catalogue. Every save goes through the same services as the API.

The version and dataset pages take panels from the apps above the registry (lineage
drawings, model cards, promotions): `ModelVersionAdmin.panels.register(Panel(...))` from the
app's own admin module (see core.admin.Panel).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst

from audit.selectors import is_auditor
from core.admin import (
    PanelAdmin,
    Panels,
    ReadOnlyAdmin,
    ServiceAdmin,
    ServiceForm,
    archive_action,
    refusal_to_message,
)
from core.errors import Conflict
from registry import selectors, services
from registry.models import (
    ApiToken,
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    ModelVersion,
    RegisteredModel,
    Run,
)
from registry.permissions import can_change_model, can_view_model, may_change_some_model

# --- registered models and versions ----------------------------------------------------------


class RegisteredModelForm(ServiceForm):
    class Meta:
        model = RegisteredModel
        fields = ["name", "description", "owner", "business_unit", "risk_tier", "tags"]

    def validate_unique(self):
        # The service decides, without confirming a model the user may not see.
        pass

    def call_service(self, actor):
        if self.instance.pk is None:
            return services.registered_model_create(actor=actor, **self.cleaned_data)
        data = self.changes()
        data.pop("name", None)
        return services.registered_model_update(actor=actor, model=self.instance, data=data)


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["version", "stage", "framework", "artifact_sha256", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _may_change_some_model(request) -> bool:
    """may_change_some_model, asked once per request (an admin page asks it several times:
    its title, its links, its actions)."""
    if not hasattr(request, "_may_change_some_model"):
        request._may_change_some_model = may_change_some_model(request.user)
    return request._may_change_some_model


class HistoryLinkMixin:
    """The object's history is its audit events: a link to them on its page, and the admin's
    History button leads there too (the admin's own change log is not kept). Auditors read
    the audit log; anyone else is told so, not shown a 403 or an empty history."""

    @admin.display(description="Audit history")
    def audit_history(self, obj):
        if obj.pk is None:
            return "-"
        meta = obj._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_history", args=[obj.pk])
        return format_html('<a href="{}">View audit events</a>', url)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_or_change_permission(request, obj):
            return super().history_view(request, object_id, extra_context)  # as the admin does
        meta = obj._meta
        if is_auditor(request.user):
            query = urlencode(
                {"object_type": f"{meta.app_label}.{meta.model_name}", "object_id": obj.pk}
            )
            return HttpResponseRedirect(f"{reverse('admin:audit_auditevent_changelist')}?{query}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": meta,
            "module_name": str(capfirst(meta.verbose_name_plural)),
        }
        return TemplateResponse(request, "admin/registry/history_in_audit_log.html", context)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(HistoryLinkMixin, ServiceAdmin):
    form = RegisteredModelForm
    list_display = ["name", "owner", "business_unit", "risk_tier", "archived", "updated_at"]
    list_filter = ["risk_tier", "archived", "business_unit"]
    search_fields = ["name", "description", "business_unit", "owner__username"]
    readonly_fields = [
        "archived",
        "labels",
        "aliases",
        "created_at",
        "updated_at",
        "audit_history",
    ]
    inlines = [ModelVersionInline]
    actions = [
        archive_action(services.registered_model_archive, "Archive selected models", "model")
    ]

    @admin.display(description="Aliases")
    def aliases(self, obj):
        if obj.pk is None:
            return "-"
        rows = sorted((alias, number) for _, _, number, alias in selectors.alias_rows([obj.pk]))
        return ", ".join(f"@{alias} → v{number}" for alias, number in rows) or "-"

    def get_queryset(self, request):
        return selectors.models_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["name"] if obj is not None else fields

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can_view_model(request.user, obj)

    def has_change_permission(self, request, obj=None):
        if obj is None:  # "Change" or "View" in lists and links: may they change any?
            return request.user.is_staff and _may_change_some_model(request)
        return can_change_model(request.user, obj)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_archive_permission(self, request):
        return _may_change_some_model(request)


class ModelVersionForm(ServiceForm):
    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "artifact_uri",
            "artifact_sha256",
            "framework",
            "parameters",
            "metrics",
            "training_run",
            "intended_use",
            "out_of_scope_uses",
            "limitations",
            "ethical_considerations",
            "training_data_summary",
            "evaluation_summary",
            "methodology",
            "assumptions",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "model" in self.fields and self.request is not None:
            self.fields["model"].queryset = selectors.models_visible_to(self.request.user)

    def call_service(self, actor):
        if self.instance.pk is None:
            data = dict(self.cleaned_data)
            return services.model_version_create(actor=actor, **data)
        data = self.changes()
        data.pop("model", None)
        return services.model_version_update(actor=actor, version=self.instance, data=data)


@admin.register(ModelVersion)
class ModelVersionAdmin(HistoryLinkMixin, PanelAdmin, ServiceAdmin):
    form = ModelVersionForm
    panels = Panels()
    list_display = ["model", "version", "stage", "framework", "created_by", "created_at"]
    list_filter = ["stage", "framework", "model__risk_tier"]
    search_fields = ["model__name", "artifact_uri", "artifact_sha256", "framework"]
    readonly_fields = [
        "version",
        "stage",
        "created_by",
        "created_at",
        "updated_at",
        "content_digest",
        "audit_history",
        "description",
        "labels",
        "aliases",
        "source_run_id",
        "source_model_id",
    ]
    list_select_related = ["model", "created_by"]
    raw_id_fields = ["training_run"]
    fieldsets = [
        (None, {"fields": ["model", "version", "stage", "framework"]}),
        (
            "Artifact and training (immutable once set)",
            {
                "fields": [
                    "artifact_uri",
                    "artifact_sha256",
                    "parameters",
                    "metrics",
                    "training_run",
                ]
            },
        ),
        (
            "Model card",
            {
                "fields": [
                    "intended_use",
                    "out_of_scope_uses",
                    "limitations",
                    "ethical_considerations",
                    "training_data_summary",
                    "evaluation_summary",
                    "methodology",
                    "assumptions",
                ]
            },
        ),
        (
            "Notes, tags and aliases (not governed content)",
            {"fields": ["description", "labels", "aliases", "source_run_id", "source_model_id"]},
        ),
        (
            "Record",
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "updated_at",
                    "content_digest",
                    "audit_history",
                ]
            },
        ),
    ]

    @admin.display(description="Aliases")
    def aliases(self, obj):
        if obj.pk is None:
            return "-"
        names = selectors.stored_aliases([obj.pk]).get(obj.pk, [])
        return ", ".join(f"@{a}" for a in sorted(names + selectors.governed_aliases_of(obj))) or "-"

    def get_queryset(self, request):
        return selectors.versions_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return fields
        # governed content once set is shown, not offered for editing: the service refuses it
        # (asked once per request: the admin asks for these fields several times)
        fixed = getattr(request, "_governed_fields_set", None)
        if fixed is None:
            fixed = request._governed_fields_set = obj.governed_fields_set()
        return fields + ["model", *fixed]

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can_view_model(request.user, obj.model)

    def has_change_permission(self, request, obj=None):
        if obj is None:  # "Change" or "View" in lists and links: may they change any?
            return request.user.is_staff and _may_change_some_model(request)
        return can_change_model(request.user, obj.model)

    def has_add_permission(self, request):
        return request.user.has_perm("registry.add_modelversion")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


# --- datasets, features, jobs, runs ----------------------------------------------------------


class DatasetForm(ServiceForm):
    class Meta:
        model = Dataset
        fields = ["namespace", "name", "description", "contains_pii"]

    def call_service(self, actor):
        if self.instance.pk is None:
            return services.dataset_create(actor=actor, **self.cleaned_data)
        data = {k: v for k, v in self.changes().items() if k not in ("namespace", "name")}
        return services.dataset_update(actor=actor, dataset=self.instance, data=data)


class FeatureInline(admin.TabularInline):
    model = Feature
    fields = ["name", "dtype", "pii", "archived"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(HistoryLinkMixin, PanelAdmin, ServiceAdmin):
    form = DatasetForm
    panels = Panels()
    list_display = ["namespace", "name", "owner", "contains_pii", "archived", "created_at"]
    list_filter = ["contains_pii", "archived", "namespace"]
    search_fields = ["namespace", "name", "description"]
    readonly_fields = ["owner", "archived", "versions", "created_at", "audit_history"]
    fieldsets = [
        (
            None,
            {"fields": ["namespace", "name", "description", "contains_pii", "owner", "archived"]},
        ),
        ("Versions", {"fields": ["versions"]}),
        ("Record", {"fields": ["created_at", "audit_history"]}),
    ]
    inlines = [FeatureInline]
    actions = [archive_action(services.dataset_archive, "Archive selected datasets", "dataset")]

    def has_archive_permission(self, request):
        return request.user.has_perm("registry.change_dataset")

    @admin.display(description="Versions")
    def versions(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        count = obj.versions.count()
        if not count:
            return "none yet"
        url = reverse("admin:registry_datasetversion_changelist")
        return format_html(
            '<a href="{}?dataset__id__exact={}">{} version{}, the newest first</a>',
            url,
            obj.pk,
            count,
            "" if count == 1 else "s",
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["namespace", "name"] if obj is not None else fields


class DatasetVersionForm(ServiceForm):
    class Meta:
        model = DatasetVersion
        fields = ["dataset", "version", "schema", "produced_by"]

    def call_service(self, actor):
        return services.dataset_version_create(actor=actor, **self.cleaned_data)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(HistoryLinkMixin, ServiceAdmin):
    form = DatasetVersionForm
    list_display = ["dataset", "version", "produced_by", "created_at"]
    search_fields = ["dataset__namespace", "dataset__name", "version"]
    list_select_related = ["dataset", "produced_by__job"]
    raw_id_fields = ["produced_by", "dataset"]
    readonly_fields = ["created_at", "audit_history", "schema_table", "schema_source"]
    # newest first, by the primary key's index (versions arrive by the thousand)
    ordering = ["-pk"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["dataset", "version", "schema", "produced_by"]
        return [
            "dataset",
            "version",
            "schema_table",
            "schema_source",
            "produced_by",
            "created_at",
            "audit_history",
        ]

    @admin.display(description="Schema given by")
    def schema_source(self, obj):
        """Whose word the schema is: what decides whether a later lineage event replaces it
        (a writer's replaces a reader's; of two of one kind, the earliest event's stands)."""
        if not obj.schema:
            return "-"
        if obj.schema_at is None:  # no lineage event's time: given through the registry
            return "the registry, or a lineage event stored before event times were kept"
        who = "a reader's lineage event" if obj.schema_by_reader else "its writer's lineage event"
        return f"{who} of {obj.schema_at:%Y-%m-%d %H:%M:%S} UTC"

    @admin.display(description="Schema")
    def schema_table(self, obj):
        if not obj.schema:
            return "-"
        if not isinstance(obj.schema, list) or not all(isinstance(f, dict) for f in obj.schema):
            # not the shape lineage and the API store: shown as written
            return format_html("<pre>{}</pre>", json.dumps(obj.schema, indent=2))
        fields = obj.schema
        return format_html(
            "<table><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((f.get("name", ""), f.get("type", ""), f.get("description", "")) for f in fields),
            ),
        )

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)


class FeatureForm(ServiceForm):
    class Meta:
        model = Feature
        fields = ["dataset", "name", "dtype", "description", "pii"]

    def call_service(self, actor):
        if self.instance.pk is None:
            return services.feature_create(actor=actor, **self.cleaned_data)
        data = {k: v for k, v in self.changes().items() if k not in ("dataset", "name")}
        return services.feature_update(actor=actor, feature=self.instance, data=data)


@admin.register(Feature)
class FeatureAdmin(HistoryLinkMixin, ServiceAdmin):
    form = FeatureForm
    list_display = ["name", "dataset", "dtype", "pii", "archived"]
    list_filter = ["pii", "archived", "dtype"]
    search_fields = ["name", "description", "dataset__name"]
    list_select_related = ["dataset"]
    raw_id_fields = ["dataset"]
    readonly_fields = ["archived", "created_at", "audit_history"]
    actions = [archive_action(services.feature_archive, "Archive selected features", "feature")]

    def has_archive_permission(self, request):
        return request.user.has_perm("registry.change_feature")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["dataset", "name"] if obj is not None else fields


class JobForm(ServiceForm):
    class Meta:
        model = Job
        fields = ["namespace", "name", "description"]

    def call_service(self, actor):
        if self.instance.pk is None:
            return services.job_create(actor=actor, **self.cleaned_data)
        data = {k: v for k, v in self.changes().items() if k not in ("namespace", "name")}
        return services.job_update(actor=actor, job=self.instance, data=data)


@admin.register(Job)
class JobAdmin(HistoryLinkMixin, ServiceAdmin):
    form = JobForm
    list_display = ["namespace", "name", "archived", "created_at"]
    list_filter = ["archived", "namespace"]
    search_fields = ["namespace", "name", "description"]
    readonly_fields = ["archived", "created_at", "audit_history"]
    actions = [archive_action(services.job_archive, "Archive selected jobs", "job")]

    def has_archive_permission(self, request):
        return request.user.has_perm("registry.change_job")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["namespace", "name"] if obj is not None else fields


@admin.register(Run)
class RunAdmin(HistoryLinkMixin, ReadOnlyAdmin):
    """Runs are written by pipelines; the admin shows them read-only."""

    list_display = ["run_id", "job", "state", "started_at", "ended_at"]
    list_filter = ["state", "job__namespace"]
    search_fields = ["run_id", "job__name", "job__namespace"]
    list_select_related = ["job"]
    readonly_fields = [
        "run_id",
        "job",
        "state",
        "started_at",
        "ended_at",
        "facets",
        "parent",
        "created_at",
        "audit_history",
    ]


# --- API tokens ------------------------------------------------------------------------------


class ApiTokenForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Lifetime in days (default from API_TOKEN_DEFAULT_DAYS).",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Mint a named token (shown once, never stored), list and revoke tokens."""

    form = ApiTokenForm
    list_display = ["name", "user", "token_key", "created", "expiry", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "token_key"]
    list_select_related = ["user"]
    readonly_fields = [
        "name",
        "user",
        "token_key",
        "created",
        "expiry",
        "revoked_at",
        "last_used_at",
    ]
    actions = ["revoke"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["user", "name", "days"] if obj is None else list(self.readonly_fields)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        token, plain = services.api_token_issue(
            actor=request.user,
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            days=form.cleaned_data.get("days"),
        )
        form.instance = token
        request._issued_token = plain

    def save_related(self, request, form, formsets, change):
        pass

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/registry/apitoken/issued.html",
            {
                **self.admin_site.each_context(request),
                "title": "API token issued",
                "token": request._issued_token,
                "api_token": request.POST.get("name"),
                "opts": self.model._meta,
            },
        )

    def log_addition(self, request, obj, message):
        pass  # the audit event from api_token_issue is the record

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset:
            try:
                services.api_token_revoke(actor=request.user, token=token)
                revoked += 1
            except (Conflict, PermissionDenied) as exc:
                refusal_to_message(request, exc, token)
        if revoked:
            messages.success(
                request, f"Revoked {revoked} token(s); this takes effect on their next request."
            )
        else:
            messages.warning(request, "Nothing was revoked.")
