"""Field validators for catalogue entities (pure functions, no database)."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import BaseValidator, RegexValidator
from django.utils.deconstruct import deconstructible

from core.canonical import canonical_json

MODEL_NAME_RE = r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$"
validate_model_name = RegexValidator(
    MODEL_NAME_RE,
    "Use 1–100 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit.",
    code="invalid_name",
)
validate_sha256 = RegexValidator(
    r"^[0-9a-f]{64}$",
    "Must be 64 lowercase hexadecimal characters (a SHA-256 digest).",
    code="invalid_sha256",
)
validate_tag = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]{0,49}$",
    "Tags are 1–50 lowercase letters, digits, '-', '_' or '.'.",
    code="invalid_tag",
)


@deconstructible
class MaxBytesValidator(BaseValidator):
    """At most `limit_value` bytes of UTF-8, as MaxLengthValidator counts characters. A
    namespace and a name make one entry of a unique index, which PostgreSQL caps at 2,704
    bytes: within their lengths in characters, text in other scripts (2 to 4 bytes a
    character) could exceed it, and the database would refuse the row."""

    message = (
        "Ensure this value takes at most %(limit_value)d bytes of UTF-8 (it takes %(show_value)d)."
    )
    code = "max_bytes"

    def compare(self, a: int, b: int) -> bool:
        return a > b

    def clean(self, x: str) -> int:
        return len(x.encode("utf-8", "surrogatepass"))


# Room for any character of the Basic Multilingual Plane (3 bytes) at the full length of a
# namespace (255) and a name (500): 2,265 bytes together, under the index entry's cap.
validate_namespace_bytes = MaxBytesValidator(765)
validate_name_bytes = MaxBytesValidator(1500)

_SURROGATE_MESSAGE = "Text must be valid Unicode (no lone UTF-16 surrogates)."


def _is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate, which UTF-8 (and the digest) cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_JSON_DEPTH = 8
MAX_JSON_BYTES = 64 * 1024
MAX_METRICS = 500
MAX_TAGS = 20


def _depth(value: Any, level: int = 1) -> int:
    """How many objects and lists deep `value` nests (a scalar 0, `{"a": 1}` 1, `{"a": {}}`
    2); counting stops once past MAX_JSON_DEPTH."""
    if not isinstance(value, dict | list):
        return level - 1
    if level > MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level)


def validate_parameters(value: Any) -> None:
    """A JSON object, at most 8 levels deep and 64 KiB in canonical form, numbers finite."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.", code="invalid_type")
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(
            f"Nested too deeply: at most {MAX_JSON_DEPTH} levels.", code="too_deep"
        )
    try:
        size = len(canonical_json(value).encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValidationError(_SURROGATE_MESSAGE, code="invalid_text") from exc
    except ValueError as exc:
        raise ValidationError(
            "Numbers must be finite (no NaN or Infinity).", code="invalid_number"
        ) from exc
    if size > MAX_JSON_BYTES:
        raise ValidationError(f"Too large: at most {MAX_JSON_BYTES} bytes.", code="too_large")


def validate_metrics(value: Any) -> None:
    """A JSON object of metric name → finite number."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object of metric name → number.", code="invalid_type")
    if len(value) > MAX_METRICS:
        raise ValidationError(f"At most {MAX_METRICS} metrics.", code="too_many")
    for name, number in value.items():
        if not name or len(name) > 100:
            raise ValidationError("Metric names are 1–100 characters.", code="invalid_name")
        if not _is_unicode(name):
            raise ValidationError(_SURROGATE_MESSAGE, code="invalid_text")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValidationError(f"Metric '{name[:100]}' must be a number.", code="invalid_number")
        if not _finite_float(number):  # 1e400 read as infinity, or a whole number beyond it
            raise ValidationError(f"Metric '{name[:100]}' must be finite.", code="invalid_number")


def _finite_float(number: int | float) -> bool:
    """Whether the number is a finite float, as metrics are compared and charted: a whole
    number of 400 digits is not (it overflows one)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def validate_tags(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("Must be a list of strings.", code="invalid_type")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="too_many")
    if len(set(value)) != len(value):
        raise ValidationError("Tags must be unique.", code="duplicate")
    for tag in value:
        validate_tag(tag)


MAX_LABELS = 100
MAX_LABEL_KEY = 250
MAX_LABEL_VALUE = 5000
validate_alias = RegexValidator(
    r"^(?!(?i:latest)$)(?![vV][0-9]+$)[A-Za-z0-9_-]{1,255}$",
    "Aliases are 1–255 letters, digits, '-' or '_'; 'latest' and 'v<number>' are reserved "
    "(in any letter case).",
    code="invalid_alias",
)


def validate_label_key(key: Any) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_LABEL_KEY:
        raise ValidationError(
            f"A tag key is 1–{MAX_LABEL_KEY} characters, not only spaces.", code="invalid_key"
        )


def validate_labels(value: Any) -> None:
    """Key → value tags (MLflow's tags): strings, keys up to 250 and values up to 5,000
    characters, at most 100 of them."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object of key → text.", code="invalid_type")
    if len(value) > MAX_LABELS:
        raise ValidationError(f"At most {MAX_LABELS} tags.", code="too_many")
    for key, text in value.items():
        validate_label_key(key)
        if not isinstance(text, str) or len(text) > MAX_LABEL_VALUE:
            raise ValidationError(
                f"The value of tag '{key[:100]}' must be text of at most {MAX_LABEL_VALUE} "
                "characters.",
                code="invalid_value",
            )
