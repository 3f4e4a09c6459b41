"""Ids as people handle them: a 12-character short form in listings, any unique prefix as input.

Message and campaign ids are 32 hex characters; too long for an 80-column table, so listings
show the first 12 (``short_id``) and every command that takes an id accepts a prefix of it.
A prefix is looked up as the range ``prefix <= id < next(prefix)`` on the primary key, which
its index serves on SQLite and PostgreSQL alike, whatever the collation (``LIKE 'abc%'`` is
not indexable under a non-C PostgreSQL collation). The upper bound is the next prefix in hex
order (``ab9`` → ``aba``, ``abf`` → ``ac``): a non-hex character such as ``:`` would collate
unpredictably outside the C locale.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

#: characters of an id shown in listings (12 hex: a clash needs ~16 million ids)
SHORT_ID_LENGTH = 12
#: the characters of an id, in their order
HEX_DIGITS = "0123456789abcdef"


def short_id(full_id: str) -> str:
    """The short form of an id, as listings show it."""
    return full_id[:SHORT_ID_LENGTH]


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``(low, high)``: the ids starting with ``prefix`` are ``low <= id < high``.

    ``high`` is None when every id from ``low`` on starts with the prefix (``fff…``).
    ``prefix`` must be lowercase hex.
    """
    digits = prefix.rstrip("f")
    if not digits:
        return prefix, None
    last = HEX_DIGITS.index(digits[-1])
    return prefix, digits[:-1] + HEX_DIGITS[last + 1]


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in HEX_DIGITS for c in value)


@dataclass(frozen=True, slots=True)
class IdMatches:
    """The ids a prefix designates: none, one, or several (the first few, in id order)."""

    given: str
    ids: tuple[str, ...]
    #: more ids match than ``ids`` holds
    more: bool = False

    @property
    def unique(self) -> str | None:
        """The one id the prefix designates, if it designates exactly one."""
        return self.ids[0] if len(self.ids) == 1 and not self.more else None

    def problem(self, noun: str) -> str:
        """Why the prefix designates no single ``noun``: none, or the candidates to pick from."""
        if not self.ids:
            return f"no {noun} {self.given}"
        lines = [f"{self.given} is ambiguous; {noun}s whose id starts with it:"]
        lines += [f"  {candidate}" for candidate in self.ids]
        if self.more:
            lines.append("  … and more: give more characters")
        return "\n".join(lines)


def match_prefix(
    session: Session, column: sa.ColumnElement[str], given: str, *, limit: int = 10
) -> IdMatches:
    """The ids in ``column`` (a primary key) starting with ``given``, through its index."""
    prefix = given.strip().lower()
    if not _is_hex(prefix):
        # not the form of our ids: only an exact match can exist
        query = sa.select(column).where(column == given.strip())
        return IdMatches(given, tuple(str(v) for v in session.execute(query).scalars()))
    low, high = prefix_bounds(prefix)
    condition = column >= low if high is None else sa.and_(column >= low, column < high)
    query = sa.select(column).where(condition).order_by(column).limit(limit + 1)
    found = [str(value) for value in session.execute(query).scalars()]
    return IdMatches(given, tuple(found[:limit]), more=len(found) > limit)


__all__ = [
    "HEX_DIGITS",
    "SHORT_ID_LENGTH",
    "IdMatches",
    "match_prefix",
    "prefix_bounds",
    "short_id",
]
