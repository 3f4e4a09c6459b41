"""What the ``postier`` command prints: text from outside escaped, errors on one line.

Inbound texts, campaign names and provider answers come from people we do not control: a
terminal escape sequence in one could rewrite the operator's screen, and Rich would read
``[bold]``-like text as markup. ``shown`` makes any such text inert. ``ErrorsOnOneLine`` is the
command group that turns a refused input or an unreachable database into one clear line
(``error: …``, exit 2) instead of a traceback.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

#: C0 and C1 control characters (tab kept), DEL, and the bidirectional overrides that reorder
#: what a terminal shows (U+202A..U+202E, U+2066..U+2069)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: Any) -> str:
    """``value`` as text safe for a terminal and for Rich: controls escaped, markup inert."""
    text = str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return escape(_CONTROL.sub(_escaped, text))


def one_line(error: BaseException) -> str:
    """An error's message on one line (a database error's first line, without its SQL)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` on stderr and leave with ``code``."""
    err_console.print(f"[red]error:[/] {shown(message)}")
    raise typer.Exit(code=code)


class ErrorsOnOneLine(TyperGroup):
    """A command group whose commands end in one line, not a traceback, for expected errors.

    Expected: bad input (``ValueError``, ``RuleViolation`` among them), a file that cannot be
    read (``OSError``), a database that cannot be reached (``SQLAlchemyError``).
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context
        try:
            return super().invoke(ctx)
        except (ValueError, OSError, SQLAlchemyError) as exc:
            from postier.logs import mask_text

            err_console.print(f"[red]error:[/] {shown(mask_text(one_line(exc)))}")
            raise typer.Exit(code=2) from None
