"""Bearer-token authentication over hashed, expiring, revocable tokens (django-rest-knox)."""

from __future__ import annotations

import binascii
from datetime import timedelta
from hmac import compare_digest

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions

from core import context
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
        candidates = ApiToken.objects.filter(
            Q(expiry__isnull=True) | Q(expiry__gt=now),
            token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH],
            revoked_at__isnull=True,
        ).select_related("user")
        for api_token in candidates:
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
