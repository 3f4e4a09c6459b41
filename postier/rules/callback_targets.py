"""Where status callbacks may go: an https URL, or plain http on a loopback host only.

An event carries message ids and states, and is signed but not encrypted: over plain http on
a network it could be read and its timing observed, so http is refused unless the host is
this machine's loopback or ``callbacks.allow_http`` says otherwise. Credentials in a URL
(``user:pass@``) are refused: they would end up in logs. Celery task names and
``module:function`` targets are the global setting's only (``target_kind``).
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from postier.rules.errors import RuleViolation
from postier.rules.inputs import check_string

#: the longest callback URL (the ledger column)
MAX_CALLBACK_URL_CHARS: Final = 2048
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
#: a dotted Python path and a function name, e.g. ``myapp.hooks:on_status``
_MODULE_FUNCTION: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: a Celery task name, e.g. ``myapp.tasks.on_status``
_TASK_NAME: Final = re.compile(r"^[A-Za-z_][\w.\-]*$")


class TargetKind(StrEnum):
    """How an event reaches the application."""

    URL = "url"
    TASK = "task"
    FUNCTION = "function"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_callback_url(url: str, *, field: str = "callback_url", allow_http: bool = False) -> str:
    """``url`` when events may be POSTed to it; else ``RuleViolation`` naming ``field``.

    Rules: ``<field>.scheme`` (not https, or http off loopback without ``allow_http``),
    ``<field>.host`` (no host), ``<field>.credentials`` (``user:pass@`` in it), plus the
    string rules (type, length, NUL).
    """
    check_string(url, field=field, max_chars=MAX_CALLBACK_URL_CHARS, required=True)
    if any(char.isspace() for char in url):
        raise RuleViolation(field, f"{field}.syntax", "a URL holds no spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as exc:
        raise RuleViolation(field, f"{field}.syntax", f"not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise RuleViolation(field, f"{field}.scheme", "must be an https:// URL")
    if not host:
        raise RuleViolation(field, f"{field}.host", "names no host")
    if parts.username is not None or parts.password is not None:
        raise RuleViolation(
            field,
            f"{field}.credentials",
            "must not hold credentials (user:password@): requests are signed instead",
        )
    if scheme == "http" and not allow_http and not _is_loopback(host):
        raise RuleViolation(
            field,
            f"{field}.scheme",
            "must be https:// (plain http only to a loopback host, or with"
            " POSTIER_CALLBACKS__ALLOW_HTTP=true)",
        )
    return url


def target_kind(target: str) -> TargetKind:
    """What kind of target a ``callbacks.target`` value is; ``RuleViolation`` when none."""
    if target.lower().startswith(("http://", "https://")):
        return TargetKind.URL
    if _MODULE_FUNCTION.match(target):
        return TargetKind.FUNCTION
    if _TASK_NAME.match(target):
        return TargetKind.TASK
    raise RuleViolation(
        "callbacks.target",
        "callbacks.target.kind",
        "an https:// URL, a Celery task name or module:function",
    )


def check_target(target: str, *, field: str, allow_http: bool = False) -> TargetKind:
    """The kind of ``target`` once it is valid (a URL is checked like ``callback_url``)."""
    check_string(target, field=field, max_chars=MAX_CALLBACK_URL_CHARS, required=True)
    kind = target_kind(target)
    if kind is TargetKind.URL:
        check_callback_url(target, field=field, allow_http=allow_http)
    return kind
