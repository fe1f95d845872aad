"""Django's ModelBackend, asking for a user's global permissions in one statement."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission


class PermissionBackend(ModelBackend):
    """ModelBackend whose `get_all_permissions` reads the user's own permissions and those of
    their groups in one statement (a UNION) instead of two. The set is kept on the user object,
    as ModelBackend keeps it (`_perm_cache`): for the request that loaded the user, never
    longer, so a permission or a group taken away counts from the next request on.
    Everything else (superusers, inactive users, the separate user and group sets) is
    ModelBackend's own."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            fields = ("content_type__app_label", "codename")
            own = Permission.objects.filter(user=user_obj).values_list(*fields).order_by()
            grouped = (
                Permission.objects.filter(group__user=user_obj).values_list(*fields).order_by()
            )
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in own.union(grouped)}
        return user_obj._perm_cache
