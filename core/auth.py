"""Django's ModelBackend with a user's permissions read in one plain statement.

ModelBackend reads a user's own permissions and their groups' permissions with two compiled
querysets on the first permission check of every request (then caches them on the user); each
costs more CPU than the database spends answering it. This backend reads both with one
statement. Superusers, inactive and anonymous users, object permissions and every other method
are Django's own.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def _permissions_sql(user: str = "%s", select: str = "") -> str:
    """The user's permissions, own and their groups': rows of (app_label, codename), or with
    `select` that one expression of ct (content type) and p (permission). `user` is the SQL
    for the user's id (a parameter by default, or a column of an enclosing statement)."""
    user_model = get_user_model()
    own = user_model._meta.get_field("user_permissions")
    groups = user_model._meta.get_field("groups")
    granted = Group._meta.get_field("permissions")
    quote = connection.ops.quote_name
    select = select or f"ct.{quote('app_label')}, p.{quote('codename')}"
    return (
        f"SELECT {select} "
        f"FROM {quote(Permission._meta.db_table)} p "
        f"JOIN {quote(ContentType._meta.db_table)} ct "
        f"ON ct.{quote('id')} = p.{quote('content_type_id')} "
        f"WHERE p.{quote('id')} IN ("
        f"SELECT {quote(own.m2m_reverse_name())} FROM {quote(own.m2m_db_table())} "
        f"WHERE {quote(own.m2m_column_name())} = {user} "
        f"UNION SELECT gp.{quote(granted.m2m_reverse_name())} "
        f"FROM {quote(granted.m2m_db_table())} gp "
        f"JOIN {quote(groups.m2m_db_table())} ug "
        f"ON ug.{quote(groups.m2m_reverse_name())} = gp.{quote(granted.m2m_column_name())} "
        f"WHERE ug.{quote(groups.m2m_column_name())} = {user})"
    )


def permissions_column(user: str) -> str:
    """A scalar subquery of a user's permissions ('app_label.codename', newline-separated,
    NULL for none), for a statement that loads the user anyway; `user` is the SQL of the
    user's id there. Hand its value to `remember_permissions`."""
    quote = connection.ops.quote_name
    perm = f"ct.{quote('app_label')} || '.' || p.{quote('codename')}"
    separator = "chr(10)" if connection.vendor == "postgresql" else "char(10)"
    function = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"({_permissions_sql(user, f'{function}({perm}, {separator})')})"


def remember_permissions(user: Any, listed: str | None) -> None:
    """Cache on the user what `permissions_column` read, as this backend would have read it on
    the first permission check (superusers and inactive users are left to the backend)."""
    if user.is_active and not user.is_superuser:
        user._perm_cache = set(listed.split("\n")) if listed else set()


class ModelBackend(backends.ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app}.{codename}" for app, codename in cursor}
        return user_obj._perm_cache
