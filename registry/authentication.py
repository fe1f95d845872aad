"""Bearer-token authentication over hashed, expiring, revocable tokens (django-rest-knox)."""

from __future__ import annotations

import binascii
from datetime import timedelta
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions

from audit.services import PIPELINE_GROUP, remember_actor_kind
from core import context, db
from core.auth import permissions_column, remember_permissions
from registry.models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=5)


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`; revoked and expired tokens are refused, never deleted."""

    def authenticate_credentials(self, token: bytes):
        msg = _("Invalid, expired or revoked token.")
        try:
            text = token.decode("utf-8")
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, binascii.Error, ValueError) as exc:
            raise exceptions.AuthenticationFailed(msg) from exc
        now = timezone.now()
        for api_token in _live_tokens(text[: CONSTANTS.TOKEN_KEY_LENGTH], now):
            if compare_digest(digest, api_token.digest):
                user, auth = self.validate_user(api_token)
                context.update(token_id=api_token.token_key)
                if (
                    not api_token.last_used_at
                    or now - api_token.last_used_at > LAST_USED_RESOLUTION
                ):
                    ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
                return user, auth
        raise exceptions.AuthenticationFailed(msg)


def _live_tokens(token_key: str, now) -> list[ApiToken]:
    """Unrevoked, unexpired tokens with this key, each with its user loaded: one plain
    statement, as it runs on every API request (a compiled queryset cost more CPU than the
    database spent answering it)."""
    user_model = get_user_model()
    token_names, user_names = db.columns(ApiToken), db.columns(user_model)
    quote = connection.ops.quote_name
    token_column = ApiToken._meta.get_field
    groups = user_model._meta.get_field("groups")

    def column(name: str) -> str:
        return "t." + quote(token_column(name).column)

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {db.select_list(ApiToken, token_names, 't')}, "
            f"{db.select_list(user_model, user_names, 'u')}, "
            # Whether the user is a service account, for the audit log (saves it a read).
            f"EXISTS (SELECT 1 FROM {quote(groups.m2m_db_table())} ug "
            f"JOIN {quote(Group._meta.db_table)} g "
            f"ON g.{quote('id')} = ug.{quote(groups.m2m_reverse_name())} "
            f"WHERE ug.{quote(groups.m2m_column_name())} = u.{quote(user_model._meta.pk.column)} "
            f"AND g.{quote('name')} = %s), "
            # The user's permissions, for the permission checks to come (saves their read).
            f"{permissions_column('u.' + quote(user_model._meta.pk.column))} "
            f"FROM {quote(ApiToken._meta.db_table)} t JOIN {quote(user_model._meta.db_table)} u "
            f"ON u.{quote(user_model._meta.pk.column)} = {column('user')} "
            f"WHERE {column('token_key')} = %s AND {column('revoked_at')} IS NULL "
            f"AND ({column('expiry')} IS NULL OR {column('expiry')} > %s)",
            [PIPELINE_GROUP, token_key, connection.ops.adapt_datetimefield_value(now)],
        )
        rows = cursor.fetchall()
    tokens = []
    for row in rows:
        token = db.load(ApiToken, token_names, row[: len(token_names)])
        token.user = db.load(user_model, user_names, row[len(token_names) : -2])
        remember_actor_kind(token.user, in_pipeline_group=bool(row[-2]))
        remember_permissions(token.user, row[-1])
        tokens.append(token)
    return tokens
