"""Moments as modelgov stores them: aware, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def in_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC (one without an offset is read as UTC, as everywhere in modelgov), or
    None when it falls outside the calendar there: 9999-12-31T23:59:59-05:00 is in year 10000
    in UTC and 0001-01-01T00:00:00+05:00 in year 0, which no database column holds."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
