"""Mechanics every registry service shares: field diffs for the audit trail, validated
saves whose unique clashes become 409s."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from core.errors import Conflict
from registry.models import Run

security_log = logging.getLogger("modelgov.security")


def _plain(value: Any) -> Any:
    """A JSON-able form of a field value for audit diffs: a run by its run id and a user by
    their username (as every door names them, and the other apps' audits do), any other row
    by its primary key."""
    if isinstance(value, Run):
        return str(value.run_id)
    if isinstance(value, AbstractBaseUser):
        return value.get_username()
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, datetime | uuid.UUID):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def _apply(instance: models.Model, data: Mapping[str, Any], allowed: Iterable[str]) -> dict:
    """Set allowed fields from `data`; returns {field: [before, after]} of real changes."""
    allowed = set(allowed)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError({key: "This field cannot be changed here." for key in unknown})
    changes = {}
    for field, value in data.items():
        before = getattr(instance, field)
        if before != value:
            changes[field] = [_plain(before), _plain(value)]
            setattr(instance, field, value)
    return changes


def _save(instance: models.Model, *, conflict_message: str, conflict_field: str | None) -> None:
    """Validate and save; a unique clash found only by the database becomes 409, not 500."""
    instance.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise Conflict(conflict_message, field=conflict_field) from exc


def _exists_conflict(qs: models.QuerySet, message: str, field: str) -> None:
    if qs.exists():
        raise Conflict(message, code="duplicate", field=field)
