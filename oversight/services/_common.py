"""What the oversight services share: text checks, after-commit queueing, audit values."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

MAX_TEXT = 20_000


def _on_commit(task: Any, *args: Any) -> None:
    """Queue a task once the transaction commits; a failure to queue is logged, never raised
    into a request that already committed."""
    transaction.on_commit(partial(task.delay, *args), robust=True)


def _text(value: Any, field: str, what: str, *, required: bool = True, limit: int = MAX_TEXT):
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "Must be a string."}, code="invalid")
    text = value.strip()
    if required and not text:
        raise ValidationError({field: f"{what} is required."}, code="required")
    if len(text) > limit:
        raise ValidationError({field: f"At most {limit} characters."}, code="max_length")
    return text


def _user_ref(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _plain(value: Any) -> Any:
    return str(value) if hasattr(value, "_meta") else value


def _require(actor: Any, perm: str, what: str) -> None:
    if not getattr(actor, "is_authenticated", False) or not actor.has_perm(perm):
        raise PermissionDenied(f"You may not change {what}.")
