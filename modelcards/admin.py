"""Model cards in the admin: generate from a version, see status and download on its page
(a panel of the registry's version admin), and a searchable list of cards for auditors."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.admin import Panel, ReadOnlyAdmin
from modelcards import selectors, services
from modelcards.models import CardStatus, ModelCard
from registry.admin import HistoryLinkMixin, ModelVersionAdmin
from registry.models import ModelVersion


def _model_cards(version: ModelVersion, viewer) -> str:
    cards = version.model_cards.order_by("-created_at")[:10]
    if not cards:
        return "None yet: use the action “Generate model card” on the version list."
    rows = []
    for card in cards:
        current = (
            "current content" if card.content_digest == version.content_digest else "older content"
        )
        link = (
            format_html('<a href="{}">download PDF</a>', reverse("modelcard-pdf", args=[card.pk]))
            if card.status == "ready"
            else card.error[:200] or "—"
        )
        rows.append(
            (
                card.pk,
                card.get_status_display(),
                current,
                card.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                link,
            )
        )
    return format_html(
        "<table><tr><th>#</th><th>Status</th><th>Documents</th><th>Requested (UTC)</th>"
        "<th></th></tr>{}</table>",
        format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        ),
    )


@admin.action(description="Generate model card")
def generate_model_card(modeladmin, request, queryset):
    for version in queryset.select_related("model"):
        try:
            card, created = services.model_card_request(actor=request.user, version=version)
        except PermissionDenied as exc:
            messages.error(request, f"{version}: {exc}")
            continue
        card.refresh_from_db()  # rendered already where tasks run in-process
        if card.status == CardStatus.FAILED:
            messages.error(request, f"{version}: model card #{card.pk} failed: {card.error}")
            continue
        state = "ready" if card.status == CardStatus.READY else f"{card.status} (being rendered)"
        made = "" if created else " (requested before, for the same content)"
        messages.success(request, f"{version}: model card #{card.pk} {state}{made}.")


ModelVersionAdmin.panels.register(
    Panel(
        name="model_cards",
        label="Model cards",
        title="Model cards",
        render=_model_cards,
        actions=[generate_model_card],
    )
)


@admin.register(ModelCard)
class ModelCardAdmin(HistoryLinkMixin, ReadOnlyAdmin):
    """Read-only: cards are made by the rendering task, never edited or deleted."""

    # What an auditor looks for first (the file and its fingerprint) comes first, so it stays
    # on screen at 1280–1400 px.
    list_display = [
        "id",
        "version",
        "status",
        "download",
        "sha256_prefix",
        "requested_by",
        "created_at",
    ]
    list_filter = ["status", "version__model__risk_tier"]
    search_fields = ["version__model__name", "sha256", "content_digest", "requested_by__username"]
    list_select_related = ["version__model", "requested_by"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return selectors.cards_visible_to(request.user)

    # The stored file is named, not linked: media files are not served (a download is checked
    # and audited), so the FileField's own link would lead nowhere.
    exclude = ["file"]

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name != "file"]
        return fields + ["stored_as", "download"]

    @admin.display(description="stored as")
    def stored_as(self, obj):
        return obj.file.name or "-"

    @admin.display(description="SHA-256")
    def sha256_prefix(self, obj):
        return obj.sha256[:16] + "…" if obj.sha256 else "-"

    @admin.display(description="PDF")
    def download(self, obj):
        if obj.status != "ready":
            return "-"
        return format_html('<a href="{}">download</a>', reverse("modelcard-pdf", args=[obj.pk]))

    def has_view_permission(self, request, obj=None):
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (
                user.is_superuser
                or user.groups.filter(name__in=services.READER_ROLES).exists()
                or obj is not None
                and services.can_read_cards(user, obj.version)
            )
        )

    def has_module_permission(self, request):
        return self.has_view_permission(request)
