"""Logging of every role: text or JSON lines, with the message id, provider and attempt.

``configure_logging`` installs one handler on the root logger with two filters:

- :class:`ContextFilter` adds ``message_id``, ``provider`` and ``attempt`` from the current
  :func:`log_context` (the worker opens one per ``send_message`` task) to records that do not
  carry them already (the dispatcher passes them as ``extra``);
- :class:`RedactingFilter`, the last line of defence: phone numbers that look like E.164 or
  French national numbers, passwords in URLs and the known secret values of the settings are
  masked in the message, its arguments, its extra fields and its traceback. Call sites mask
  numbers themselves (``mask_number``); this catches what slips through.

Celery's worker and beat call :func:`connect_celery_signals` so their logs go through the same
handler (the ``setup_logging`` signal replaces Celery's own configuration).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from postier import tasknames
from postier.config import Settings, get_settings
from postier.rules.phones import mask_number

#: fields every record may carry; ``None`` ones are left out of the output
CONTEXT_FIELDS = ("message_id", "provider", "attempt")
#: a secret shorter than this is not searched for in log lines (it would mask common words)
MIN_SECRET_LENGTH = 4
MASK = "***"
#: nested extras deeper than this are replaced by the mask rather than walked
_MAX_DEPTH = 8
#: loggers that write a line per HTTP request with its full URL (query strings hold numbers
#: and, for some providers, credentials): kept at WARNING
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3")

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "postier_log_context", default=MappingProxyType({})
)

#: attributes every LogRecord has; anything else on a record came from ``extra``
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
    # uvicorn's copy of the message with terminal colours
    | {"color_message"}
)

# "+33 6 12 34 56 78", "+33612345678", "+1-202-555-0143": a plus, then 8 to 15 digits with
# optional single separators
_INTERNATIONAL = r"\+\d(?:[ .\-]?\d){7,14}"
# "0033612345678", "33612345678" (Afilnet's form): French numbers without the plus
_FRENCH_NO_PLUS = r"(?:00)?33[1-9]\d{8}"
# "06 12 34 56 78", "06.12.34.56.78", "0612345678": French national form
_FRENCH_NATIONAL = r"0[1-9](?:[ .\-]?\d{2}){4}"
# "%2B33612345678": an international number inside a URL's query (httpx, provider URLs)
_URL_ENCODED = r"%2[Bb]\d{8,15}"
_NUMBER = re.compile(
    # not inside a word or a masked number; a national form not inside a decimal ("0.06123…")
    rf"(?<![\w+*])(?:{_INTERNATIONAL}|{_URL_ENCODED}"
    rf"|(?<!\d\.)(?:{_FRENCH_NO_PLUS}|{_FRENCH_NATIONAL}))(?![\w*])"
)
# scheme://user:password@host → scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)")


def _mask_number_match(match: re.Match[str]) -> str:
    raw = match.group(0)
    if raw[:3].upper() == "%2B":
        return "%2B" + mask_number("+" + raw[3:])[1:]
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        return mask_number("+" + digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets, URL passwords and phone numbers masked."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _NUMBER.sub(_mask_number_match, text)


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def known_secrets(settings: Settings) -> list[str]:
    """Every secret of ``settings``: ``SecretStr`` values and passwords inside URLs."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                walk(value)
            elif isinstance(value, str) and "://" in value:
                found.append(_url_password(value) or "")

    walk(settings)
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Records logged inside the block carry ``fields`` (message_id, provider, attempt…)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The fields of the innermost :func:`log_context`."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Adds the current context's fields to records that lack them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class RedactingFilter(logging.Filter):
    """Masks phone numbers and secrets in a record before any formatter sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= MIN_SECRET_LENGTH]

    def mask(self, text: str) -> str:
        return mask_text(text, self.secrets)

    def mask_value(self, value: Any, depth: int = 0) -> Any:
        """``value`` with every string inside it masked: dicts, lists, tuples and sets too."""
        if isinstance(value, str):
            return self.mask(value)
        if depth > _MAX_DEPTH:
            return MASK
        if isinstance(value, Mapping):
            return {
                self.mask_value(k, depth + 1): self.mask_value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.mask_value(item, depth + 1) for item in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.mask(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = self.mask(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, self.mask_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context and ``extra`` fields of a record, context first, ``None`` left out."""
    fields: dict[str, Any] = {}
    for key in CONTEXT_FIELDS:
        value = getattr(record, key, None)
        if value is not None:
            fields[key] = value
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and key not in fields and value is not None:
            fields[key] = value
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <message> key=value …`` for people."""

    def format(self, record: logging.LogRecord) -> str:
        # structured extras (Celery's ``data`` dict) are for the JSON format; text keeps scalars
        scalars = {
            k: v for k, v in record_fields(record).items() if isinstance(v, (str, int, float))
        }
        fields = " ".join(f"{k}={v}" for k, v in scalars.items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line


#: the handler ``configure_logging`` installed, replaced on a second call
_installed: logging.Handler | None = None


def build_handler(
    settings: Settings, *, stream: IO[str] | None = None, logfile: str | None = None
) -> logging.Handler:
    """A handler with the settings' format and both filters."""
    handler: logging.Handler
    if logfile:
        handler = logging.FileHandler(logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log.format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(known_secrets(settings)))
    return handler


def configure_logging(
    settings: Settings | None = None,
    *,
    default_level: int | str = logging.INFO,
    stream: IO[str] | None = None,
    logfile: str | None = None,
) -> logging.Handler:
    """Send every record to one masked handler on the root logger; returns that handler.

    The level is ``settings.log.level`` when set, else ``default_level`` (for Celery, its
    ``--loglevel``).
    """
    global _installed
    settings = settings or get_settings()
    handler = build_handler(settings, stream=stream, logfile=logfile)
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    root.addHandler(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    level = settings.log.level or default_level
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _installed = handler
    return handler


# -- Celery ------------------------------------------------------------------------------------
def _on_setup_logging(loglevel: int | None = None, logfile: str | None = None, **_: Any) -> None:
    configure_logging(default_level=loglevel or logging.WARNING, logfile=logfile or None)


_task_tokens: dict[str, contextvars.Token[Mapping[str, Any]]] = {}


def _on_task_prerun(
    task_id: str | None = None, task: Any = None, args: Any = None, **_: Any
) -> None:
    name = getattr(task, "name", "")
    if name == tasknames.SEND_MESSAGE and args and task_id:
        _task_tokens[task_id] = _context.set({"message_id": str(args[0])})


def _on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # set in another context (a pool that moved the task)
            _context.set({})


def connect_celery_signals() -> None:
    """Configure Celery's logging through :func:`configure_logging` and give each
    ``send_message`` task's records its message id; idempotent (``dispatch_uid``)."""
    from celery import signals

    signals.setup_logging.connect(_on_setup_logging, dispatch_uid="postier.logs", weak=False)
    signals.task_prerun.connect(_on_task_prerun, dispatch_uid="postier.logs.prerun", weak=False)
    signals.task_postrun.connect(_on_task_postrun, dispatch_uid="postier.logs.postrun", weak=False)


__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "build_handler",
    "configure_logging",
    "connect_celery_signals",
    "current_context",
    "known_secrets",
    "log_context",
    "mask_text",
    "record_fields",
]
