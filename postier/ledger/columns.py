"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zone type: SQLAlchemy stores its DATETIME as ISO text and hands back naive
values, while PostgreSQL's ``timestamptz`` hands back aware ones in the session's zone.
``UTCDateTime`` stores naive UTC text on SQLite (so text order is time order and ``send_at <=
:now`` compares correctly) and always returns aware UTC datetimes. A naive datetime is refused
at bind time: a naive "now" is the classic source of one-hour bugs in France.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend; naive values are an error."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one, e.g. datetime.now(UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL (indexable, compact, keys deduplicated)."""
    return JSON().with_variant(JSONB(), "postgresql")


def bigint_pk_type() -> TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite (only ``INTEGER PRIMARY KEY`` autoincrements)."""
    return BigInteger().with_variant(Integer(), "sqlite")
