"""Bearer-token authentication over hashed, expiring, revocable tokens (django-rest-knox)."""

from __future__ import annotations

import binascii
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from rest_framework import exceptions

from core import context
from registry.models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=5)


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`; revoked and expired tokens are refused, never deleted.

    The token is found by its digest, the table's primary key (knox stores the SHA-512 of the
    whole token there), with its user: one keyed SELECT per request, read afresh each time, so
    a revocation or an expiry takes effect on the next request."""

    def authenticate_credentials(self, token: bytes):
        msg = _("Invalid, expired or revoked token.")
        try:
            digest = hash_token(token.decode("utf-8"))
        except (UnicodeDecodeError, TypeError, binascii.Error, ValueError) as exc:
            raise exceptions.AuthenticationFailed(msg) from exc
        try:
            api_token = ApiToken.objects.select_related("user").get(pk=digest)
        except ApiToken.DoesNotExist as exc:
            raise exceptions.AuthenticationFailed(msg) from exc
        now = timezone.now()
        if api_token.revoked_at is not None or (
            api_token.expiry is not None and api_token.expiry <= now
        ):
            raise exceptions.AuthenticationFailed(msg)
        user, auth = self.validate_user(api_token)
        context.update(token_id=api_token.token_key)
        if not api_token.last_used_at or now - api_token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        return user, auth
