"""Time helpers: riskwatch handles timezone-aware UTC datetimes everywhere.

SQLModel stores them as ``timestamptz`` on PostgreSQL and as UTC on SQLite, and returns them
aware in UTC on both.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (seconds precision), or an empty string."""
    if value is None:
        return ""
    return to_utc(value).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
