"""Parsing a batch of monitoring points (pure: no database), strictly and fast.

A batch is `{"points": [{"metric", "value", "window_start", "window_end", "segment"?}, …]}`.
Every problem is reported with its dotted field (`points.3.value`); one bad point refuses
the whole batch, so nothing is written from it. Hand-written rather than a DRF serializer
per point: ingest is the hot path (batches of hundreds, many per second). A point is a plain
tuple, and a batch's window times (typically a handful shared by all its points) are parsed once
each.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, NamedTuple

from core.moments import in_utc

METRIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,99}$")
MAX_SEGMENT = 200
FIELDS = {"metric", "value", "window_start", "window_end", "segment"}
REQUIRED = ("metric", "value", "window_start", "window_end")
REQUIRED_SET = frozenset(REQUIRED)
BAD_TIME = "Must be an ISO 8601 time, e.g. 2026-11-30T12:00:00Z."


def _finite_number(value: Any) -> bool:
    """A JSON number a float holds: not a boolean, not infinite, and not an integer literal
    beyond a float's range (JSON parses `1` followed by 400 zeros as a Python int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class Point(NamedTuple):
    metric: str
    value: float
    window_start: datetime
    window_end: datetime
    segment: str = ""


class BatchInvalid(ValueError):
    """The batch is refused; `errors` maps dotted fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class BatchTooLarge(ValueError):
    pass


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not 10 <= len(raw) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return in_utc(parsed)  # None beyond the calendar in UTC


def parse_batch(data: Any, *, max_points: int) -> list[Point]:
    """The points of a batch, or BatchInvalid naming every problem (BatchTooLarge beyond
    `max_points`)."""
    if not isinstance(data, dict):
        raise BatchInvalid({"": 'Must be an object: {"points": [...]}.'})
    unknown = sorted(set(data) - {"points"})
    if unknown:
        raise BatchInvalid({key: "Unknown field." for key in unknown})
    raw_points = data.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        raise BatchInvalid({"points": "Must be a non-empty list of points."})
    if len(raw_points) > max_points:
        raise BatchTooLarge(f"At most {max_points} points per batch; got {len(raw_points)}.")
    errors: dict[str, str] = {}
    points: list[Point] = []
    times: dict[Any, datetime | None] = {}  # raw window time → parsed, once per batch

    def when(raw: Any) -> datetime | None:
        if not isinstance(raw, str):
            return None
        if raw not in times:
            times[raw] = _time(raw)
        return times[raw]

    metrics: set[str] = set()  # metric names found valid in this batch (a handful)
    for index, raw in enumerate(raw_points):
        if not isinstance(raw, dict):
            errors[f"points.{index}"] = "Must be an object."
            continue
        keys = raw.keys()
        if not keys <= FIELDS:
            for key in sorted(keys - FIELDS):
                errors[f"points.{index}.{key}"] = "Unknown field."
        if not keys >= REQUIRED_SET:
            for key in REQUIRED:
                if key not in raw:
                    errors[f"points.{index}.{key}"] = "This field is required."
        metric, value = raw.get("metric"), raw.get("value")
        if "metric" in raw and not (isinstance(metric, str) and metric in metrics):
            if isinstance(metric, str) and METRIC_RE.match(metric):
                metrics.add(metric)  # valid: not matched again in this batch
            else:
                errors[f"points.{index}.metric"] = (
                    "Must be 1–100 characters: letters, digits and _ . : / @ - "
                    "(starting with a letter or digit)."
                )
        if "value" in raw and not _finite_number(value):
            errors[f"points.{index}.value"] = "Must be a finite number."
        start, end = when(raw.get("window_start")), when(raw.get("window_end"))
        if start is None and "window_start" in raw:
            errors[f"points.{index}.window_start"] = BAD_TIME
        if end is None and "window_end" in raw:
            errors[f"points.{index}.window_end"] = BAD_TIME
        elif start and end and start > end:
            errors[f"points.{index}.window_end"] = "Must not be before window_start."
        segment = raw.get("segment", "")
        if segment is None:
            segment = ""
        if not isinstance(segment, str) or len(segment) > MAX_SEGMENT or "\x00" in segment:
            errors[f"points.{index}.segment"] = (
                f"Must be a string of at most {MAX_SEGMENT} characters."
            )
        if len(errors) >= 50:
            break  # enough to fix; a batch of a thousand broken points gets no essay
        if not errors:
            points.append(Point(metric, float(value), start, end, segment))
    if errors:
        raise BatchInvalid(errors)
    return points
