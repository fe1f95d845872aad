"""What the oversight admin pages share."""

from __future__ import annotations

from registry.permissions import can_view_model
from registry.selectors import models_visible_to


def _staff(request) -> bool:
    return request.user.is_active and request.user.is_staff


class VisibleMixin:
    """Rows of the models the signed-in user may see; others are 404, as everywhere."""

    version_path = "version"

    def _visible(self, request, qs):
        return qs.filter(
            **{f"{self.version_path}__model__in": models_visible_to(request.user).values("pk")}
        )

    def get_queryset(self, request):
        return self._visible(request, super().get_queryset(request))


class OpenItemMixin:
    """An item the services open and close (a monitoring alert, a periodic review): never
    added or deleted in the admin. Staff reach the list; an item is seen by whoever may see
    its model, and changed (closed through its form) only while its status is `open_status`,
    by whoever `may_close` lets; once closed, `closing_field` is read-only too."""

    open_status: str
    closing_field: str

    def may_close(self, user, version) -> bool:
        raise NotImplementedError

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status != self.open_status:
            fields.append(self.closing_field)
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
        if obj is None:
            return _staff(request)
        return obj.status == self.open_status and self.may_close(request.user, obj.version)

    def has_module_permission(self, request):
        return _staff(request)
