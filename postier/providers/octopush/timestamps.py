"""Octopush's legacy ``sending_date``: Unix seconds "in GMT+1" (Octopush SMS API docs).

Octopush reads the timestamp as wall-clock time at a fixed UTC+1 offset, whatever the season:
not Europe/Paris, which is UTC+2 in summer. So the number sent is the true Unix time plus
3600 s; sending Paris wall time as if it were UTC would deliver an hour early in summer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

#: Octopush SMS API docs: "La date attendue doit être présentée sous la forme d'un timestamp, au
#: format GMT+1"
GMT_PLUS_ONE: Final = timedelta(hours=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_octopush_timestamp(dt: datetime) -> int:
    """The ``sending_date`` for the instant ``dt`` (timezone-aware; seconds floored)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("to_octopush_timestamp needs a timezone-aware datetime")
    return (dt - _EPOCH + GMT_PLUS_ONE) // timedelta(seconds=1)


def from_octopush_timestamp(value: int) -> datetime:
    """The instant (UTC) a ``sending_date`` designates."""
    return _EPOCH + timedelta(seconds=value) - GMT_PLUS_ONE
