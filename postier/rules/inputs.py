"""Edges of every free-form input: its type, its characters, its length, its time window.

Text reaches PostgreSQL and SQLite and the providers' HTTP APIs: a lone surrogate cannot be
encoded in UTF-8 (UnicodeEncodeError), PostgreSQL refuses NUL in a text (DataError), and a
value of megabytes fills the ledger and the worker's memory. These checks turn each of those
into a ``RuleViolation`` naming the field and the rule, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from postier.rules.errors import RuleViolation

#: provider ids, template ids, platform ids, idempotency keys
MAX_ID_CHARS: Final = 128
#: a WhatsApp template's parameters: how many, and the length of one
MAX_TEMPLATE_PARAMS: Final = 50
MAX_TEMPLATE_PARAM_CHARS: Final = 1024
#: a template header's fields (file URL, place name, address)
MAX_HEADER_FIELDS: Final = 8
#: a ``send_at`` this far in the past is a mistake, not "now" (clock skew passes)
SEND_AT_GRACE: Final = timedelta(minutes=5)
#: the longest horizon of a scheduled message
SEND_AT_HORIZON: Final = timedelta(days=366)


def check_string(value: Any, *, field: str, max_chars: int, required: bool = False) -> str:
    """``value`` when it is a string Postier can store and send; else ``RuleViolation``.

    Rules: ``<field>.type`` (not a string), ``<field>.encoding`` (a lone surrogate, which
    no UTF-8 store or API takes), ``<field>.nul`` (a NUL character), ``<field>.length``
    (more than ``max_chars``), ``<field>.required`` (empty when ``required``).
    """
    if not isinstance(value, str):
        raise RuleViolation(field, f"{field}.type", f"must be text, not {type(value).__name__}")
    if len(value) > max_chars:
        raise RuleViolation(
            field, f"{field}.length", f"{len(value)} characters; at most {max_chars}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RuleViolation(
            field, f"{field}.encoding", "holds a lone surrogate (not valid Unicode text)"
        ) from exc
    if "\x00" in value:
        raise RuleViolation(field, f"{field}.nul", "holds a NUL character")
    if required and not value.strip():
        raise RuleViolation(field, f"{field}.required", "is empty")
    return value


def check_optional_string(value: Any, *, field: str, max_chars: int) -> str | None:
    """``check_string`` for a value that may be ``None``."""
    return None if value is None else check_string(value, field=field, max_chars=max_chars)


def check_template_params(params: Any) -> dict[str, str]:
    """A template's ``{{name}}`` values: a mapping of at most ``MAX_TEMPLATE_PARAMS`` short texts.

    Numbers are taken as their text; anything else (lists, objects, bytes) is refused.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise RuleViolation("params", "params.type", "must be a mapping of name to text")
    if len(params) > MAX_TEMPLATE_PARAMS:
        raise RuleViolation(
            "params", "params.count", f"{len(params)} parameters; at most {MAX_TEMPLATE_PARAMS}"
        )
    clean: dict[str, str] = {}
    for key, value in params.items():
        name = check_string(key, field="params", max_chars=64)
        if not name.strip():
            raise RuleViolation("params", "params.name", "a template parameter has no name")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RuleViolation(
                "params", "params.type", f"parameter {name!r} must be text or a number"
            )
        clean[name] = check_string(str(value), field="params", max_chars=MAX_TEMPLATE_PARAM_CHARS)
    return clean


def check_header(header: Any) -> dict[str, Any] | None:
    """A template header as a plain dict of short scalar fields (its meaning is checked later)."""
    if header is None:
        return None
    if not isinstance(header, Mapping):
        raise RuleViolation("header", "header.type", "must be a mapping")
    if len(header) > MAX_HEADER_FIELDS:
        raise RuleViolation("header", "header.count", f"at most {MAX_HEADER_FIELDS} fields")
    clean: dict[str, Any] = {}
    for key, value in header.items():
        name = check_string(key, field="header", max_chars=32)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RuleViolation("header", "header.type", f"{name!r} must be text or a number")
        clean[name] = (
            check_string(value, field="header", max_chars=2048) if isinstance(value, str) else value
        )
    return clean


def check_send_at(
    send_at: Any,
    *,
    now: datetime,
    grace: timedelta = SEND_AT_GRACE,
    horizon: timedelta = SEND_AT_HORIZON,
) -> datetime | None:
    """``send_at`` in UTC, within ``now - grace`` … ``now + horizon``; else ``RuleViolation``.

    Rules: ``send_at.type``, ``send_at.timezone`` (naive), ``send_at.past`` (before the grace),
    ``send_at.horizon`` (beyond it; also a date the offset pushes out of the calendar).
    """
    if send_at is None:
        return None
    if not isinstance(send_at, datetime):
        raise RuleViolation("send_at", "send_at.type", "must be a datetime")
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise RuleViolation(
            "send_at", "send_at.timezone", "send_at must be timezone-aware (e.g. Europe/Paris)"
        )
    try:
        when = send_at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # the offset moves it out of the calendar
        if send_at.year < now.year:
            raise RuleViolation("send_at", "send_at.past", "is long in the past") from exc
        raise RuleViolation(
            "send_at", "send_at.horizon", f"must be within {horizon.days} days from now"
        ) from exc
    if when < now - grace:
        raise RuleViolation(
            "send_at",
            "send_at.past",
            f"is more than {int(grace.total_seconds() // 60)} minutes in the past",
        )
    if when > now + horizon:
        raise RuleViolation(
            "send_at", "send_at.horizon", f"must be within {horizon.days} days from now"
        )
    return when


def parse_send_at_text(text: str, *, field: str = "send_at") -> datetime:
    """An ISO 8601 instant typed by a person (``--at``); ``RuleViolation`` when unreadable."""
    check_string(text, field=field, max_chars=64)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise RuleViolation(
            field, f"{field}.format", "use ISO 8601 with an offset, e.g. 2026-03-02T09:00+01:00"
        ) from exc
    return when


__all__ = [
    "MAX_ID_CHARS",
    "MAX_TEMPLATE_PARAMS",
    "MAX_TEMPLATE_PARAM_CHARS",
    "SEND_AT_GRACE",
    "SEND_AT_HORIZON",
    "check_header",
    "check_optional_string",
    "check_send_at",
    "check_string",
    "check_template_params",
    "parse_send_at_text",
]
