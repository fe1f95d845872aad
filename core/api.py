"""DRF glue shared by every app: strict JSON parsing, pagination, one error body shape.

Error bodies always read `{"errors": [{"field": <name or null>, "message": <text>,
"code": <code>}]}`; nested fields are dotted (`metrics.auc`), list items indexed
(`tags.0`).
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, OperationalError, models
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.errors import Conflict

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500


class StrictJSONParser(JSONParser):
    """JSON only, optionally gzip (`Content-Encoding: gzip`, inflated size capped). Anything
    that is not one well-formed JSON document becomes 400, never 500: NaN/Infinity, invalid
    UTF-8, a lone surrogate escape (`"\\ud800"`),
    pathological nesting, a malformed or truncated gzip stream or data after it."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        try:
            raw = stream.read() if stream is not None else b""
        except RequestDataTooBig as exc:
            raise PayloadTooLarge() from exc
        return parse_json_body(raw, content_encoding=encoding)


class UnsupportedEncoding(exceptions.UnsupportedMediaType):
    """A Content-Encoding other than gzip or identity (415)."""

    def __init__(self, encoding: str):
        super().__init__(
            encoding, detail=f"Content-Encoding {encoding!r} is not supported; use gzip."
        )


def parse_json_body(raw: bytes, *, content_encoding: str = "") -> Any:
    """The one JSON document in a request body, gunzipped first when the body says gzip."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        raw = _inflate(raw, settings.MAX_INFLATED_BYTES)
    elif encoding not in ("", "identity"):
        raise UnsupportedEncoding(encoding)
    if not raw:
        raise exceptions.ParseError("Request body is empty; a JSON document is required.")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise exceptions.ParseError("Request body is not valid UTF-8.") from exc
    except RecursionError as exc:
        raise exceptions.ParseError("JSON is nested too deeply.") from exc
    except ValueError as exc:
        raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise exceptions.ParseError(
            "Malformed JSON: a string holds a lone surrogate escape (\\ud800–\\udfff "
            "without its pair), which is not Unicode text."
        )
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether some string (key or value) holds a surrogate json.loads left unpaired.
    Iterative: the document may be deeply nested."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for string in strings:
            try:
                string.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _inflate(raw: bytes, cap: int) -> bytes:
    """One gzip member, inflated up to `cap` bytes (413 beyond); truncation or anything after
    the member's end is a 400."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, cap + 1)
    except zlib.error as exc:
        raise exceptions.ParseError(f"Malformed gzip body: {exc}") from exc
    if len(data) > cap or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"The decompressed body exceeds {cap} bytes.")
    if not inflater.eof:
        raise exceptions.ParseError("Malformed gzip body: truncated stream.")
    if inflater.unused_data:
        raise exceptions.ParseError("Malformed gzip body: data follows the end of the gzip stream.")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON; numbers must be finite")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


class Pagination(PageNumberPagination):
    """Page-number pagination; `page_size` may be asked for, up to 500."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class StrictFieldsMixin:
    """Refuses unknown and read-only keys on writes instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {
                        key: [
                            "This field is read-only: the server sets it."
                            if key in self.fields
                            else "Unknown field."
                        ]
                        for key in unknown
                    }
                )
        return super().to_internal_value(data)


class StrictStringMixin:
    """Refuses numbers and booleans where text is expected (DRF would coerce 12 to "12")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}


class StrictRegexField(StrictStringMixin, serializers.RegexField):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A ModelSerializer that refuses unknown keys and non-string values for text fields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }


def _flatten(detail: Any, prefix: str | None = None) -> list[dict[str, Any]]:
    if isinstance(detail, Mapping):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "__all__", "detail") else str(key)
            field = ".".join(p for p in (prefix, name) if p) or None
            out.extend(_flatten(value, field))
        return out
    if isinstance(detail, list):
        out = []
        for index, item in enumerate(detail):
            if isinstance(item, Mapping | list) and item:
                out.extend(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
            elif not isinstance(item, Mapping | list):
                out.extend(_flatten(item, prefix))
        return out
    return [
        {
            "field": prefix,
            "message": str(detail),
            "code": getattr(detail, "code", None) or "invalid",
        }
    ]


def _django_validation_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {
            field: [
                serializers.ErrorDetail(m, code=e.code or "invalid")
                for e in errors
                for m in e.messages
            ]
            for field, errors in exc.error_dict.items()
        }
    return [serializers.ErrorDetail(m, code=exc.code or "invalid") for m in exc.messages]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Maps every expected failure to one body shape and the right status code."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DataError):
        # e.g. an integer beyond the column's range in a filter or lookup
        exc = exceptions.ValidationError(
            {
                "non_field_errors": [
                    "A value is out of range or not storable; check numbers and text."
                ]
            }
        )
    elif isinstance(exc, OperationalError):
        logger.warning("database unavailable: %s", exc)
        response = Response(
            {
                "errors": [
                    {
                        "field": None,
                        "message": "Database unavailable; retry later.",
                        "code": "unavailable",
                    }
                ]
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "5"
        return response

    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        detail: Any = "Not found."
    else:
        detail = getattr(exc, "detail", response.data)
    errors = _flatten(detail)
    if isinstance(exc, Conflict) and exc.field:
        for error in errors:
            error["field"] = error["field"] or exc.field
    response.data = {"errors": errors}
    return response
