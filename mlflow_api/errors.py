"""The one place where domain errors become MLflow's error body and status code.

MLflow clients raise `RestException` from `{"error_code": …, "message": …}`; users handle
`RESOURCE_DOES_NOT_EXIST`, `RESOURCE_ALREADY_EXISTS`, `PERMISSION_DENIED` and
`INVALID_PARAMETER_VALUE`, so the codes and statuses are MLflow's own
(mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS). No expected failure answers 5xx: the client
retries those.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from core.api import _django_validation_detail, _flatten
from core.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"

STATUS = {
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    RESOURCE_ALREADY_EXISTS: 400,
    INVALID_PARAMETER_VALUE: 400,
    BAD_REQUEST: 400,
    PERMISSION_DENIED: 403,
    UNAUTHENTICATED: 401,
    RESOURCE_CONFLICT: 409,
    REQUEST_LIMIT_EXCEEDED: 429,
    TEMPORARILY_UNAVAILABLE: 503,
}


class MlflowError(Exception):
    """An error the door raises itself (bad parameter, unknown object) in MLflow's terms."""

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def not_found(message: str) -> MlflowError:
    return MlflowError(RESOURCE_DOES_NOT_EXIST, message)


def invalid(message: str) -> MlflowError:
    return MlflowError(INVALID_PARAMETER_VALUE, message)


def _messages(detail: Any) -> str:
    parts = []
    for error in _flatten(detail):
        field = error["field"]
        parts.append(f"{field}: {error['message']}" if field else error["message"])
    return " ".join(parts)


def classify(exc: Exception) -> tuple[str, str, int | None]:
    """(error_code, message, status override) for an exception, or raise it on."""
    if isinstance(exc, MlflowError):
        return exc.error_code, exc.message, None
    if isinstance(exc, Http404 | ObjectDoesNotExist | NotFound | exceptions.NotFound):
        return RESOURCE_DOES_NOT_EXIST, str(exc) or "Not found.", None
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return UNAUTHENTICATED, str(exc.detail), None
    if isinstance(exc, DjangoPermissionDenied):
        return PERMISSION_DENIED, str(exc) or "Permission denied.", None
    if isinstance(exc, exceptions.PermissionDenied):
        return PERMISSION_DENIED, str(exc.detail), None
    if isinstance(exc, DjangoValidationError):
        return INVALID_PARAMETER_VALUE, _messages(_django_validation_detail(exc)), None
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        return INVALID_PARAMETER_VALUE, _messages(exc.detail), None
    if isinstance(exc, Conflict):
        if exc.code == "duplicate":
            return RESOURCE_ALREADY_EXISTS, str(exc), None
        return RESOURCE_CONFLICT, str(exc), None
    if isinstance(exc, DataError):
        return INVALID_PARAMETER_VALUE, "A value is out of range or not storable.", None
    if isinstance(exc, OperationalError):
        logger.warning("database unavailable: %s", exc)
        return TEMPORARILY_UNAVAILABLE, "Database unavailable; retry later.", None
    if isinstance(exc, exceptions.Throttled):
        return REQUEST_LIMIT_EXCEEDED, str(exc.detail), None
    if isinstance(exc, exceptions.APIException):
        # Method not allowed, unsupported media type, body too large: keep their status.
        return BAD_REQUEST, str(exc.detail), exc.status_code
    raise exc


def error_response(error_code: str, message: str, status: int | None = None) -> Response:
    return Response(
        {"error_code": error_code, "message": message},
        status=status or STATUS.get(error_code, 400),
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler of the MLflow door (set on its views only)."""
    code, message, status = classify(exc)
    response = error_response(code, message, status)
    if code == UNAUTHENTICATED:
        response["WWW-Authenticate"] = "Bearer"
    elif code == TEMPORARILY_UNAVAILABLE:
        response["Retry-After"] = "5"
    return response
