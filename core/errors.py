"""Domain exceptions that every door (API, admin, CLI, tasks) maps the same way.

Plain Python: services raise them without knowing which door called. Each carries
`.message` (what `str(exc)` says), `.code` (a short machine-readable reason) and `.field`
(the input it is about, or None). The API answers them in `core.api.exception_handler`
(NotFound 404, Forbidden 403, Conflict 409, Invalid 400). Code that catches them reads
`str(exc)` and `getattr(exc, "field", None)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError


class DomainError(Exception):
    """A refusal the caller can understand and act on."""

    default_message = "The request cannot be carried out."
    default_code = "error"

    def __init__(self, message: Any = None, code: str | None = None, field: str | None = None):
        self.message = str(message) if message is not None else self.default_message
        self.code = code or self.default_code
        self.field = field
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (self.__class__, (self.message, self.code, self.field))


class NotFound(DomainError):
    """The object asked for does not exist (or is not visible to the caller)."""

    default_message = "Not found."
    default_code = "not_found"


class Forbidden(DomainError, PermissionDenied):
    """The caller may not do this."""

    default_message = "You do not have permission to perform this action."
    default_code = "permission_denied"


class Conflict(DomainError):
    """The request is well-formed but clashes with the current state."""

    default_message = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class Invalid(DomainError, ValidationError):
    """The input is wrong. `message` is a text, or a mapping of field name to message(s)."""

    default_message = "Invalid input."
    default_code = "invalid"

    def __init__(self, message: Any = None, code: str | None = None, field: str | None = None):
        code = code or self.default_code
        if isinstance(message, Mapping):
            errors = {
                str(name): [
                    ValidationError(str(text), code=code)
                    for text in (texts if isinstance(texts, list | tuple) else [texts])
                ]
                for name, texts in message.items()
            }
            ValidationError.__init__(self, errors)
            text = " ".join(
                f"{name}: {error.message}" for name, items in errors.items() for error in items
            )
        else:
            text = str(message) if message is not None else self.default_message
            if field:
                ValidationError.__init__(self, {field: [ValidationError(text, code=code)]})
            else:
                ValidationError.__init__(self, text, code=code)
        self._original = message
        self.message = text
        self.code = code
        self.field = field
        Exception.__init__(self, text)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (self.__class__, (self._original, self.code, self.field))


# How error bodies are written, as DRF's JSONRenderer writes every body: no spaces, UTF-8
# rather than \u escapes (json.dumps keywords).
COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


def error_body(message: str, code: str, field: str | None = None) -> dict[str, Any]:
    """The one error body every door answers with: `{"errors": [{"field", "message",
    "code"}]}` (core.api's exception handler builds the same from DRF's errors)."""
    return {"errors": [{"field": field, "message": message, "code": code}]}


def too_large_message(limit: int) -> str:
    """What a request body beyond MAX_REQUEST_BYTES is told, by whichever layer measures it."""
    return f"Request body too large: the limit is {limit} bytes."
