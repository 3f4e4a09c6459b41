"""``postier``'s own commands as a reader sees them: help texts, and listings in 80 columns.

The commands run beside a stack are driven in tests/deploy/test_newcomer.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from typer.testing import CliRunner

from postier.cli import app, messages_table_view
from postier.ledger.models import Channel, Message, MessageKind, MessageStatus

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


def every_help() -> Iterator[tuple[str, str]]:
    """Each command and group of ``postier`` with what ``--help`` prints for it."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    runner = CliRunner()
    for path in walk(typer.main.get_command(app), ()):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        yield " ".join(("postier", *path)), result.output


def test_no_help_text_cites_documents_the_user_does_not_have() -> None:
    """A user reads the provider's name, not an internal note or a file outside the repository."""
    internal = re.compile(r"seed 0\d\d|PROVIDERS\.md|\.\./shared|ARCHITECTURE\.md", re.I)
    helps = dict(every_help())
    for path, text in helps.items():
        assert not internal.search(text), f"`{path} --help` cites {internal.search(text)}"
    assert len(helps) > 40  # every command of every group was rendered
    assert "Afilnet groups API" in helps["postier contacts"]
    assert "first characters" in helps["postier status"]
    assert "first characters" in helps["postier campaign pause"]


def a_message(index: int, **fields: object) -> Message:
    values: dict[str, object] = {
        "id": f"{index:x}" * 32,
        "channel": Channel.SMS,
        "kind": MessageKind.SMS,
        "provider": "primotexto",
        "recipient": "+33612345678",
        "status": MessageStatus.DELIVERED,
        "attempts": 1,
        "updated_at": NOW - timedelta(minutes=index),
        **fields,
    }
    return Message(**values)


def test_the_list_fits_80_columns_with_whole_short_ids_and_provider_names() -> None:
    messages = [
        a_message(1),
        a_message(2, provider="octopush", status=MessageStatus.UNDELIVERED, attempts=12),
        a_message(
            3,
            channel=Channel.WHATSAPP,
            kind=MessageKind.WHATSAPP_TEMPLATE,
            provider="afilnet",
            status=MessageStatus.SCHEDULED,
        ),
        a_message(4, provider="afilnet", updated_at=NOW - timedelta(days=3)),
    ]
    console = Console(width=80, record=True, color_system=None)
    console.print(messages_table_view(messages, "Europe/Paris", NOW))
    shown = console.export_text()
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    assert "…" not in shown, shown
    for message in messages:
        assert message.id[:12] in shown and message.id[:13] not in shown
    for cell in ("primotexto", "octopush", "whatsapp", "afilnet", "undelivered", "scheduled"):
        assert cell in shown, cell
    assert "+336******78" in shown and "+33612345678" not in shown
    # today's rows show the time (Paris), older ones the day
    assert "16:29:00" in shown and "11-19 16:30" in shown
