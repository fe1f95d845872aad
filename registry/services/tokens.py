"""API tokens: issued and revoked with an audit event each."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from registry.models import (
    ApiToken,
)
from registry.services._common import _plain

# --- API tokens ------------------------------------------------------------------------------


@transaction.atomic
def api_token_issue(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """Mint a named token for `user`; the plain value is returned once and never stored."""
    if actor is not None and actor != user and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may issue tokens for another user.")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "A token needs a label of 1–100 characters."})
    if days is not None and not 1 <= days <= 3650:
        raise ValidationError({"days": "Token lifetime must be 1–3650 days."})
    if not user.is_active:
        raise ValidationError({"user": "The user is inactive."})
    ttl = timedelta(days=days) if days is not None else settings.REST_KNOX["TOKEN_TTL"]
    token, plain = ApiToken.objects.create(user=user, expiry=ttl, name=name)
    audit_record(
        actor=actor,
        action="registry.api_token.issued",
        target=token,
        object_id=token.token_key,
        object_repr=f"{name} for {user.get_username()}",
        changes={
            "user": [None, user.get_username()],
            "name": [None, name],
            "expiry": [None, _plain(token.expiry)],
        },
    )
    return token, plain


@transaction.atomic
def api_token_revoke(*, actor: AbstractBaseUser | None, token: ApiToken) -> ApiToken:
    """Revoke a token at once; the row stays so the audit trail keeps its meaning."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if actor is not None and actor != token.user and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may revoke another user's token.")
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="registry.api_token.revoked",
        target=token,
        object_id=token.token_key,
        object_repr=f"{token.name} for {token.user.get_username()}",
        changes={"revoked_at": [None, _plain(token.revoked_at)]},
    )
    return token
