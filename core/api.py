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

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, OperationalError, models
from django.http import Http404
from django_filters.fields import IsoDateTimeField
from django_filters.filters import IsoDateTimeFilter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, error_body
from core.moments import in_utc

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500

# The failures of the cache CACHE_URL names (Redis), which keeps the rate limits' counts:
# a 503 here, a message in the admin.
CACHE_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)


class UTCIsoDateTimeField(IsoDateTimeField):
    """django-filter's ISO 8601 form field, refusing a moment outside the calendar in UTC
    (9999-12-31T23:59:59-05:00) instead of failing when the query is run."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        utc = in_utc(moment)
        if utc is None:
            raise forms.ValidationError("Is outside years 1 to 9999 in UTC.", code="out_of_range")
        return utc


class UTCIsoDateTimeFilter(IsoDateTimeFilter):
    """A filter by an ISO 8601 moment (UTC when no offset) that the database can compare."""

    field_class = UTCIsoDateTimeField


class StrictJSONParser(JSONParser):
    """JSON only, optionally gzip (`Content-Encoding: gzip`, inflated size capped). Anything
    that is not one well-formed JSON document becomes 400, never 500: NaN/Infinity, invalid
    UTF-8, a lone surrogate escape (`"\\ud800"`),
    pathological nesting, a malformed or truncated gzip stream or data after it."""

    # NaN and ±Infinity read as the strings "NaN", "Infinity" and "-Infinity" instead of
    # refused: for doors whose clients write them bare (see loads_strict)
    nonfinite_as_strings = False

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        try:
            raw = stream.read() if stream is not None else b""
        except RequestDataTooBig as exc:
            raise PayloadTooLarge() from exc
        return parse_json_body(
            raw, content_encoding=encoding, nonfinite_as_strings=self.nonfinite_as_strings
        )


class UnsupportedEncoding(exceptions.UnsupportedMediaType):
    """A Content-Encoding other than gzip or identity (415)."""

    def __init__(self, encoding: str):
        super().__init__(
            encoding, detail=f"Content-Encoding {encoding!r} is not supported; use gzip."
        )


def parse_json_body(
    raw: bytes, *, content_encoding: str = "", nonfinite_as_strings: bool = False
) -> Any:
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
    except UnicodeDecodeError as exc:
        raise exceptions.ParseError("Request body is not valid UTF-8.") from exc
    return loads_strict(text, nonfinite_as_strings=nonfinite_as_strings)


def loads_strict(text: str, *, nonfinite_as_strings: bool = False) -> Any:
    """Parse JSON text, refusing (400) what Python's json accepts but nothing downstream can
    store or hash: NaN and Infinity, and strings holding a lone UTF-16 surrogate
    (`"\\ud800"`), which cannot be encoded as UTF-8 — named by its dotted path. Any door that
    parses JSON by hand should use it. (A number overflowing a float, `1e400`, parses as
    infinity; the validators of numeric fields refuse it and name the field.)

    `nonfinite_as_strings`: NaN, Infinity and -Infinity become those strings instead, as
    Java's Jackson writes them (Python's json.dumps writes them bare by default), typed
    NonFinite so that the door can tell where they may stand."""
    constant = NonFinite if nonfinite_as_strings else _refuse_constant
    try:
        value = json.loads(text, parse_constant=constant)
    except RecursionError as exc:
        raise exceptions.ParseError("JSON is nested too deeply.") from exc
    except ValueError as exc:
        raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc
    # Only an escape can produce a surrogate (the UTF-8 decoder refuses encoded ones), and
    # paired escapes become one character: whatever is left after parsing is lone.
    if _SURROGATE_ESCAPE.search(text):
        path = _lone_surrogate_at(value)
        if path is not None:
            raise exceptions.ValidationError(
                {
                    path or "non_field_errors": [
                        exceptions.ErrorDetail(
                            "Text holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                            "escape); it must be valid Unicode.",
                            code="invalid_text",
                        )
                    ]
                }
            )
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate_at(value: Any) -> str | None:
    """The dotted path of the first string (or key) holding a lone surrogate, else None.
    Iterative: the document may be nested deeper than Python's recursion allows."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                return path
            continue
        if isinstance(item, dict):
            pairs = list(item.items())
        elif isinstance(item, list):
            pairs = list(enumerate(item))
        else:
            continue
        for key, child in reversed(pairs):
            if isinstance(key, str) and not _is_text(key):
                return path or "non_field_errors"
            stack.append((child, f"{path}.{key}" if path else str(key)))
    return None


def _is_text(string: str) -> bool:
    try:
        string.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


class NonFinite(str):
    """ "NaN", "Infinity" or "-Infinity" read from a bare constant (loads_strict): a string
    wherever it is stored, told apart from the same text sent as a string."""


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


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = Conflict.default_message
    default_code = Conflict.default_code


def _api_exception(exc: DomainError) -> exceptions.APIException:
    """The HTTP face of a domain error: NotFound 404, Forbidden 403, Conflict 409, Invalid 400
    (any other domain error 400)."""
    if isinstance(exc, Invalid):
        return exceptions.ValidationError(_django_validation_detail(exc))
    detail = serializers.ErrorDetail(exc.message, code=exc.code)
    if isinstance(exc, NotFound):
        return exceptions.NotFound(detail)
    if isinstance(exc, Forbidden):
        return exceptions.PermissionDenied(detail)
    if isinstance(exc, Conflict):
        return ConflictError(detail)
    return exceptions.ValidationError([detail])


def _unavailable(message: str) -> Response:
    response = Response(
        error_body(message, "unavailable"),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = "5"
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Maps every expected failure to one body shape and the right status code."""
    domain = exc if isinstance(exc, DomainError) else None
    if domain is not None:
        exc = _api_exception(domain)
    elif isinstance(exc, DjangoValidationError):
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
        return _unavailable("Database unavailable; retry later.")
    elif isinstance(exc, CACHE_UNAVAILABLE):
        logger.warning("cache unavailable: %s", exc)
        return _unavailable("Cache unavailable; retry later.")

    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):  # get_object_or_404's: its message may name the model
        detail: Any = serializers.ErrorDetail("Not found.", code="not_found")
    else:
        detail = getattr(exc, "detail", response.data)
    errors = _flatten(detail)
    if domain is not None and domain.field:
        for error in errors:
            error["field"] = error["field"] or domain.field
    response.data = {"errors": errors}
    return response


class AnyTypeJSONParser(StrictJSONParser):
    """StrictJSONParser (gzip-aware, strict) for doors whose clients send JSON under other
    media types: `application/json`, `text/plain`, `application/octet-stream`, or no
    Content-Type at all, as OpenLineage clients do. Any other Content-Type is 415."""

    media_type = "*/*"
    media_types = ("application/json", "text/plain", "application/octet-stream")

    def parse(self, stream, media_type=None, parser_context=None):
        kind = (media_type or "").split(";")[0].strip().lower()
        if kind and kind not in self.media_types:
            raise exceptions.UnsupportedMediaType(
                media_type, detail=f"Content-Type {media_type!r} is not supported; send JSON."
            )
        return super().parse(stream, media_type, parser_context)
