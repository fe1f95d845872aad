"""Approvals in the admin, for risk officers and model validators.

- Approval queue: only the pending requests the signed-in user may decide now (the count is
  shown on the admin index).
- A request page with the evidence on one screen — version details, metrics, lineage drawing,
  gate status, model-card link, policy progress, history — and Approve / Reject buttons that
  need a comment. Refusals are explained in plain words. Decisions go through the same
  service as the API.
- Promotion policies: editable by risk officers and superusers, every edit audited.
- On a version's page (a panel of the registry's version admin): its promotion requests.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.timesince import timesince

from approvals import selectors, services, workflow
from approvals.models import ApprovalQueue, PromotionPolicy, PromotionRequest, RequestStatus
from approvals.permissions import may_file, user_roles
from core.admin import Panel, ReadOnlyAdmin, ServiceAdmin, ServiceForm
from core.errors import Conflict
from registry.admin import HistoryLinkMixin, ModelVersionAdmin
from registry.models import ModelVersion, Stage
from registry.permissions import can_view_model

EVIDENCE_TEMPLATE = "admin/approvals/promotionrequest/evidence.html"
FILING_TEMPLATE = "admin/approvals/promotionrequest/file.html"


# --- policies -----------------------------------------------------------------------------------


class PromotionPolicyForm(ServiceForm):
    class Meta:
        model = PromotionPolicy
        fields = [
            "required_approvals",
            "filing_gates",
            "approval_gates",
            "expiry_days",
            "fallback",
        ]

    def call_service(self, actor):
        return services.policy_update(actor=actor, policy=self.instance, data=self.changes())


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(HistoryLinkMixin, ServiceAdmin):
    form = PromotionPolicyForm
    list_display = [
        "to_stage",
        "risk_tier",
        "required_approvals",
        "filing_gates",
        "approval_gates",
        "expiry_days",
        "fallback",
        "updated_at",
    ]
    list_filter = ["to_stage", "risk_tier"]
    readonly_fields = ["to_stage", "risk_tier", "updated_at"]
    fields = [
        "to_stage",
        "risk_tier",
        "required_approvals",
        "filing_gates",
        "approval_gates",
        "expiry_days",
        "fallback",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False  # one policy per (stage, tier), created by the migrations

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("approvals.change_promotionpolicy")


# --- requests and the evidence page ------------------------------------------------------------


def _model_card_link(site, request, version) -> str | None:
    """The admin's list of model cards, searched for the version's current content, if this
    viewer may open it (auditors, reviewers; a model's owner sees its cards on the version's
    page instead)."""
    try:
        card_admin = site.get_model_admin(apps.get_model("modelcards", "ModelCard"))
        url = reverse("admin:modelcards_modelcard_changelist")
    except (LookupError, NotRegistered, NoReverseMatch):
        return None
    if not card_admin.has_view_permission(request):
        return None
    return f"{url}?{urlencode({'q': version.content_digest})}"


def _lineage_drawing(version, viewer) -> str | None:
    """The lineage drawing (SVG, every label escaped by lineage) or None if unavailable;
    without the model versions the viewer may not see."""
    try:
        from lineage import nodes
        from lineage.selectors import lineage_svg
    except ImportError:
        return None
    node = nodes.model_id(version.model.name, version.version)
    try:
        return lineage_svg([node], node, viewer=viewer)
    except Exception:  # noqa: BLE001 - the page must show the rest of the evidence
        return None


def _lineage_full_size_link(version) -> str | None:
    try:
        return reverse("admin:registry_modelversion_lineage_svg", args=[version.pk])
    except NoReverseMatch:
        return None


def _refusal_text(exc: Exception) -> str:
    """A service's refusal in the words a message shows (a ValidationError's messages)."""
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


class DecisionForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=10_000,
        help_text="Required: say what you checked.",
    )
    outcome = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])


class EvidenceMixin:
    """The one-screen evidence page with the decision form (GET shows, POST decides)."""

    def evidence_view(self, request, object_id: str):
        promotion = get_object_or_404(
            selectors.requests_visible_to(request.user).prefetch_related("decisions__decider"),
            pk=object_id,
        )
        if request.method == "POST":
            return self._post_decision(request, promotion)
        return self._render(request, promotion, DecisionForm())

    def _post_decision(self, request, promotion: PromotionRequest):
        form = DecisionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Write a comment saying what you checked, then decide.")
            return self._render(request, promotion, form)
        outcome = form.cleaned_data["outcome"]
        try:
            services.promotion_decide(
                actor=request.user,
                request=promotion,
                outcome=outcome,
                comment=form.cleaned_data["comment"],
            )
        except (PermissionDenied, Conflict, ValidationError) as exc:
            # shown again with what was typed: the reviewer may reject instead, or wait
            messages.error(request, _refusal_text(exc))
            promotion.refresh_from_db()  # a refusal may have closed it (superseded, expired)
            return self._render(request, promotion, form)
        else:
            promotion.refresh_from_db()
            version = promotion.version
            version.refresh_from_db()
            if promotion.status == "approved":
                messages.success(
                    request,
                    f"Approved. The quorum is met: {version} is now in {version.stage}.",
                )
            elif promotion.status == "rejected":
                messages.success(request, "Rejected. The request is closed.")
            else:
                messages.success(request, "Approved. The request waits for more approvals.")
        return HttpResponseRedirect(request.path)

    def _way_back(self, request) -> dict[str, str]:
        """The breadcrumb's list: the reviewer's queue, else (a requester) the requests."""
        if self.admin_site.get_model_admin(ApprovalQueue).has_view_permission(request):
            return {
                "list_url": reverse("admin:approvals_approvalqueue_changelist"),
                "list_name": "Approval queue",
            }
        return {
            "list_url": reverse("admin:approvals_promotionrequest_changelist"),
            "list_name": "Promotion requests",
        }

    def _render(self, request, promotion: PromotionRequest, form: DecisionForm):
        version = promotion.version
        blockers = selectors.decision_blockers(request.user, promotion)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Promotion request #{promotion.pk}",
            "opts": PromotionRequest._meta,
            "promotion": promotion,
            "version": version,
            "model": version.model,
            "metrics": sorted(version.metrics.items()),
            "lineage_svg": _lineage_drawing(version, request.user),
            "lineage_full_size_url": _lineage_full_size_link(version),
            "gates": selectors.gate_status(promotion),
            "model_card_url": _model_card_link(self.admin_site, request, version),
            "version_url": reverse("admin:registry_modelversion_change", args=[version.pk]),
            "progress": selectors.progress(promotion),
            "history": selectors.request_history(promotion),
            "digest_changed": version.content_digest != promotion.content_digest,
            "blockers": blockers,
            "can_decide": not (blockers["approve"] and blockers["reject"]),
            "form": form,
            **self._way_back(request),
        }
        return TemplateResponse(request, EVIDENCE_TEMPLATE, context)


@admin.register(PromotionRequest)
class PromotionRequestAdmin(EvidenceMixin, HistoryLinkMixin, ReadOnlyAdmin):
    """Every request about a model the user may see; each opens on its evidence page. Filed
    through the API and decided on that page, through the service: read-only here."""

    list_display = [
        "id",
        "version",
        "from_stage",
        "to_stage",
        "status",
        "requester",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "to_stage", "version__model__risk_tier"]
    search_fields = ["version__model__name", "requester__username", "justification"]
    list_select_related = ["version__model", "requester"]

    def get_queryset(self, request):
        return selectors.requests_visible_to(request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.evidence_view(request, object_id)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can_view_model(request.user, obj.version.model)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


def _promotions(version, viewer) -> str:
    """The version's promotion requests, newest first, each opening on its evidence page."""
    requests = (
        selectors.requests_visible_to(viewer)
        .filter(version=version)
        .select_related("requester")
        .order_by("-created_at", "-id")[:20]
    )
    rows = [
        (
            reverse("admin:approvals_promotionrequest_change", args=[r.pk]),
            r.pk,
            f"{r.from_stage} → {r.to_stage}",
            r.get_status_display(),
            r.requester.get_username(),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for r in requests
    ]
    filing = ""
    if workflow.allowed_targets(version.stage) and may_file(viewer, version):
        filing = format_html(
            '<p><a href="{}" class="button" id="file-promotion">File a promotion request</a></p>',
            reverse("admin:registry_modelversion_promote", args=[version.pk]),
        )
    if not rows:
        return format_html("<p>None filed.</p>{}", filing)
    return format_html(
        "<table><tr><th>Request</th><th>Transition</th><th>Status</th><th>Filed by</th>"
        "<th>Filed (UTC)</th></tr>{}</table>{}",
        format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            rows,
        ),
        filing,
    )


class FilingForm(forms.Form):
    to_stage = forms.ChoiceField(label="Move to")
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=10_000,
        help_text="Required: the evidence the approvers should weigh.",
    )

    def __init__(self, *args, version: ModelVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_stage"].choices = [
            (stage, Stage(stage).label) for stage in workflow.allowed_targets(version.stage)
        ]


def _filing_urls(model_admin) -> list:
    """The page that files a promotion request of a version (the API's
    POST /api/v1/models/{name}/versions/{n}/promotions), for those who may file one."""

    def view(request, object_id):
        version = model_admin.get_object(request, object_id)
        if version is None or not model_admin.has_view_permission(request, version):
            raise Http404
        if not may_file(request.user, version):
            raise PermissionDenied(services.file_refused(version.model))
        form = FilingForm(request.POST or None, version=version)
        if request.method == "POST" and form.is_valid():
            try:
                promotion = services.promotion_request_file(
                    actor=request.user,
                    version=version,
                    to_stage=form.cleaned_data["to_stage"],
                    justification=form.cleaned_data["justification"],
                )
            except (PermissionDenied, Conflict, ValidationError) as exc:
                messages.error(request, _refusal_text(exc))  # shown again with what was typed
            else:
                messages.success(
                    request,
                    f"Request #{promotion.pk} filed: {version} from {promotion.from_stage} to "
                    f"{promotion.to_stage}, waiting for {selectors.outstanding(promotion)}.",
                )
                return HttpResponseRedirect(
                    reverse("admin:approvals_promotionrequest_change", args=[promotion.pk])
                )
        pending = (
            PromotionRequest.objects.filter(version=version, status=RequestStatus.PENDING)
            .order_by("pk")
            .first()
        )
        if pending is not None and services.basis_changed(pending, version):
            pending = None  # filing anew supersedes it
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"File a promotion request: {version}",
            "pending": pending,
            "opts": ModelVersion._meta,
            "version": version,
            "form": form,
            "policies": selectors.policies_for(version),
        }
        return TemplateResponse(request, FILING_TEMPLATE, context)

    return [
        path(
            "<path:object_id>/promote/",
            model_admin.admin_site.admin_view(view),
            name="registry_modelversion_promote",
        )
    ]


ModelVersionAdmin.panels.register(
    Panel(
        name="promotions",
        label="Promotion requests",
        title="Promotions",
        render=_promotions,
        urls=_filing_urls,
    )
)


@admin.register(ApprovalQueue)
class ApprovalQueueAdmin(ReadOnlyAdmin):
    """The requests the signed-in reviewer may decide now; below them, those a failing
    approval gate holds back, with the gate named."""

    list_display = [
        "open",
        "model_name",
        "version_number",
        "transition",
        "risk_tier",
        "filed_by",
        "age",
        "outstanding",
    ]
    list_display_links = None
    list_select_related = ["version__model", "requester"]
    ordering = ["expires_at"]
    change_list_template = "admin/approvals/approvalqueue/change_list.html"

    def get_queryset(self, request):
        ready, _ = self._queue(request)
        return (
            ApprovalQueue.objects.filter(pk__in=[r.pk for r in ready])
            .select_related("version__model", "requester")
            .prefetch_related("decisions")
        )

    def _queue(self, request):
        if not hasattr(request, "_approval_queue"):
            request._approval_queue = selectors.approval_queue(request.user)
        return request._approval_queue

    def changelist_view(self, request, extra_context=None):
        _, blocked = self._queue(request)
        rows = [
            {
                "url": reverse("admin:approvals_promotionrequest_change", args=[b["request"].pk]),
                "request": b["request"],
                "gates": "; ".join(f"{g.label}: {g.message}" for g in b["gates"]),
            }
            for b in blocked
        ]
        context = {
            "blocked": rows,
            "title": "Approval queue: the requests you may decide now",
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description="Request")
    def open(self, obj):
        url = reverse("admin:approvals_promotionrequest_change", args=[obj.pk])
        return format_html('<a href="{}">Review #{}</a>', url, obj.pk)

    @admin.display(description="Model", ordering="version__model__name")
    def model_name(self, obj):
        return obj.version.model.name

    @admin.display(description="Version", ordering="version__version")
    def version_number(self, obj):
        return f"v{obj.version.version}"

    @admin.display(description="From → to")
    def transition(self, obj):
        return f"{obj.from_stage} → {obj.to_stage}"

    @admin.display(description="Risk tier", ordering="version__model__risk_tier")
    def risk_tier(self, obj):
        return obj.version.model.risk_tier

    @admin.display(description="Filed by", ordering="requester__username")
    def filed_by(self, obj):
        return obj.requester.get_username()

    @admin.display(description="Filed", ordering="created_at")
    def age(self, obj):
        return format_html(
            '<span title="{}">{} ago</span>',
            obj.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            timesince(obj.created_at),
        )

    @admin.display(description="Still needed")
    def outstanding(self, obj):
        return selectors.outstanding(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        url = reverse("admin:approvals_promotionrequest_change", args=[object_id])
        return HttpResponseRedirect(url)

    def _reviewer(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or bool(user_roles(user)))

    def has_module_permission(self, request):
        return self._reviewer(request)

    def has_view_permission(self, request, obj=None):
        return self._reviewer(request)


# The admin index and sidebar show how many requests await the signed-in user.
_get_app_list = admin.site.get_app_list


def _app_list_with_queue_count(request, app_label: str | None = None) -> list[dict[str, Any]]:
    app_list = _get_app_list(request, app_label)
    for app in app_list:
        for entry in app["models"]:
            if entry.get("model") is ApprovalQueue:
                count = len(selectors.approval_queue(request.user)[0])
                entry["name"] = f"Approval queue ({count})"
    return app_list


admin.site.get_app_list = _app_list_with_queue_count
