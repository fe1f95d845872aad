"""Bearer-token authentication over hashed, expiring, revocable tokens (django-rest-knox)."""

from __future__ import annotations

import binascii
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from rest_framework import exceptions

from core import context
from registry.models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=5)

# The user of a live token (found by its digest, the primary key; not revoked, not expired),
# with the token's key and whether its `last_used_at` is older than LAST_USED_RESOLUTION.
# It says what `ApiToken.objects.select_related("user").get(pk=digest)` and three checks in
# Python say; written out because it runs on every API request and compiling that query costs
# the ORM about 0.2 ms of CPU each time, twice what running this one costs. Read through
# `User.objects.raw`, so the user is built and converted as the ORM builds it, and the moments
# are passed as the ORM passes them: the same on PostgreSQL and SQLite.
LIVE_TOKEN_SQL = """
    SELECT auth_user.*,
           token.token_key AS token_key,
           (token.last_used_at IS NULL OR token.last_used_at < %(idle_since)s) AS token_idle
      FROM registry_apitoken AS token
      JOIN auth_user ON auth_user.id = token.user_id
     WHERE token.digest = %(digest)s
       AND token.revoked_at IS NULL
       AND (token.expiry IS NULL OR token.expiry > %(now)s)
"""


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`; revoked and expired tokens are refused, never deleted.

    The token is found by its digest, the table's primary key (knox stores the SHA-512 of the
    whole token there), with its user: one keyed SELECT per request, read afresh each time, so
    a revocation, an expiry or a deactivated user takes effect on the next request. The
    request's `auth` is the token's key (its public prefix), which audit events name."""

    def authenticate_credentials(self, token: bytes):
        msg = _("Invalid, expired or revoked token.")
        try:
            digest = hash_token(token.decode("utf-8"))
        except (UnicodeDecodeError, TypeError, binascii.Error, ValueError) as exc:
            raise exceptions.AuthenticationFailed(msg) from exc
        now = timezone.now()
        found = get_user_model().objects.raw(
            LIVE_TOKEN_SQL,
            {"digest": digest, "now": now, "idle_since": now - LAST_USED_RESOLUTION},
        )
        user = next(iter(found), None)
        if user is None:
            raise exceptions.AuthenticationFailed(msg)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token_key = user.token_key
        context.update(token_id=token_key)
        if user.token_idle:
            ApiToken.objects.filter(pk=digest).update(last_used_at=now)
        return user, token_key
