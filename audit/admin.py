"""Read-only audit log in the admin: no add, change or delete, for anyone."""

import copy

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.urls import path

from audit import selectors, services
from audit.api.views import EXPORT_FORMATS, export_response
from audit.models import AuditEvent
from core import context
from core.admin import ReadOnlyAdmin


class ActingUserMixin:
    """Saves made here go through the audit services and name the signed-in admin as the
    actor of their audit events."""

    def changeform_view(self, request, *args, **kwargs):
        with context.bound(**{**context.current(), "admin_user": request.user}):
            return super().changeform_view(request, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        pass  # saved with its relations by save_related, in one service call

    def _relations(self, form) -> dict:
        names = {field.name for field in form.instance._meta.many_to_many}
        return {name: value for name, value in form.cleaned_data.items() if name in names}


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(ActingUserMixin, UserAdmin):
    def save_related(self, request, form, formsets, change):
        services.user_save(actor=request.user, user=form.instance, relations=self._relations(form))

    def has_delete_permission(self, request, obj=None):
        return False  # people leave; their accounts are deactivated, the record stays


@admin.register(Group)
class AuditedGroupAdmin(ActingUserMixin, GroupAdmin):
    def save_related(self, request, form, formsets, change):
        services.role_save(
            actor=request.user,
            role=form.instance,
            permissions=self._relations(form).get("permissions"),
        )

    def delete_model(self, request, obj):
        services.role_delete(actor=request.user, role=obj)

    def delete_queryset(self, request, queryset):
        for role in queryset:
            services.role_delete(actor=request.user, role=role)


class SealedFilter(admin.SimpleListFilter):
    title = "chain"
    parameter_name = "sealed"

    def lookups(self, request, model_admin):
        return [("yes", "Sealed"), ("no", "Pending")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(seal__isnull=self.value() == "no")
        return queryset


NO_USER = "(none: the system)"


class ActorFilter(admin.AllValuesFieldListFilter):
    """By the username events were recorded under; those no user made (the system's own,
    the command line) under a name, not a blank line."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": choice["display"] or NO_USER}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only for everyone; `?object_type=app.model&object_id=pk` lists one object's
    history (the registry's "Audit history" links)."""

    list_display = ["id", "seq", "occurred_at", "actor_name", "action", "target"]
    list_filter = [
        SealedFilter,
        "channel",
        "actor_kind",
        ("actor_username", ActorFilter),
        "action",
        "object_type",
    ]
    search_fields = ["action", "actor_username", "object_repr", "=object_id"]
    date_hierarchy = "occurred_at"
    ordering = ["-id"]  # newest first
    list_select_related = ["seal"]
    show_full_result_count = False  # counting millions of rows on every page is wasted work

    @admin.display(description="actor", ordering="actor_username")
    def actor_name(self, obj):
        return obj.actor_username or NO_USER

    @admin.display(description="object", ordering="object_type")
    def target(self, obj):
        text = f"{obj.object_type} {obj.object_id}: {obj.object_repr}".strip(" :")
        return text if len(text) <= 44 else text[:43] + "…"

    @admin.display(description="seq", ordering="seal__seq")
    def seq(self, obj):
        seal = getattr(obj, "seal", None)
        return seal.seq if seal else "pending"

    @admin.display(description="prev hash")
    def prev_hash(self, obj):
        seal = getattr(obj, "seal", None)
        return seal.prev_hash if seal else "-"

    @admin.display(description="hash")
    def hash(self, obj):
        seal = getattr(obj, "seal", None)
        return seal.hash if seal else "-"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["seq", "prev_hash", "hash"]

    def get_urls(self):
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name="audit_auditevent_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The events the list shows (its filters, search and dates; `format`: jsonl or csv)
        as the API's export streams them, in chain order. Recorded, with the list's query."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.copy()
        fmt = query.pop("format", ["jsonl"])[-1]
        if fmt not in EXPORT_FORMATS:
            return HttpResponseBadRequest("format must be jsonl or csv.")
        listing = copy.copy(request)
        listing.GET = query
        try:
            events = self.get_changelist_instance(listing).get_queryset(listing)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("The list's filters are not valid.")
        services.audit_export_record(
            actor=request.user,
            export_format=fmt,
            filters={name: query.getlist(name) for name in sorted(query)},
        )
        return export_response(events, fmt)

    def get_queryset(self, request):
        queryset = selectors.events()  # who may read it: has_view_permission
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_view_permission(self, request, obj=None):
        return selectors.is_auditor(request.user)

    def has_module_permission(self, request):
        return self.has_view_permission(request)
