"""The record of the local stack ``postier up`` or ``postier demo`` started, for other shells.

A newcomer runs ``make run`` in one terminal and ``postier …`` in a second one. Without a
record, the second terminal knows nothing of the stack's Redis, ledger or sandbox: its
commands miss the ledger the worker writes, or reach a real provider with empty credentials.
So the command that starts a stack writes ``var/stack.json`` under the directory it runs in,
and every ``postier`` command run from that directory reads it (``postier.config``): below
the environment, which always wins, and above ``.env``, which may name servers the stack did
not use. The record is removed when the stack stops, and ignored once the process that wrote
it is gone (a stack killed with SIGKILL leaves it behind).

Only the standard library here: ``postier.config`` reads the record while building settings.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: where the record lives, relative to the directory ``postier up`` runs in
RECORD_PATH = Path("var") / "stack.json"


@dataclass(frozen=True, slots=True)
class StackRecord:
    """What a running local stack is made of: its addresses, and the process that owns it."""

    #: the ``postier up`` / ``postier demo`` process; the record is void once it is gone
    pid: int
    #: "up" or "demo"
    command: str
    #: where the stack's logs and SQLite ledger are
    workdir: str
    redis_url: str
    database_url: str
    #: None: ``up --real``, the providers are the real ones from the settings
    sandbox_url: str | None = None
    webhooks_url: str | None = None
    api_url: str | None = None
    flower_url: str | None = None
    metrics_url: str | None = None

    def settings(self) -> dict[str, Any]:
        """The settings the record gives the commands run beside the stack."""
        values: dict[str, Any] = {"redis_url": self.redis_url, "database_url": self.database_url}
        if self.sandbox_url:
            values["sandbox_url"] = self.sandbox_url
        return values

    def environment(self) -> dict[str, str]:
        """The same settings as ``POSTIER_*`` variables, for a shell outside this directory."""
        return {f"POSTIER_{name.upper()}": str(value) for name, value in self.settings().items()}

    def export_lines(self) -> list[str]:
        """``export POSTIER_…=…`` lines, quoted for a POSIX shell."""
        return [f"export {key}={shlex.quote(value)}" for key, value in self.environment().items()]


def record_path(directory: Path | None = None) -> Path:
    """The record's file for commands run in ``directory`` (default: the current one)."""
    return (directory or Path.cwd()) / RECORD_PATH


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def read_record(directory: Path | None = None) -> StackRecord | None:
    """The record of the stack running from ``directory``; None when there is none.

    A file that cannot be read, or whose process has exited, counts as none: a stale record
    must not send commands to a Redis or a sandbox that is gone.
    """
    path = record_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = StackRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if _alive(record.pid) else None


def write_record(record: StackRecord, directory: Path | None = None) -> Path:
    """Write the record (atomically: a command reading it meanwhile sees the old or the new)."""
    path = record_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{record.pid}")
    partial.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def remove_record(pid: int, directory: Path | None = None) -> None:
    """Remove the record if ``pid`` wrote it (a newer stack's record stays)."""
    path = record_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == pid:
        path.unlink(missing_ok=True)


__all__ = [
    "RECORD_PATH",
    "StackRecord",
    "read_record",
    "record_path",
    "remove_record",
    "write_record",
]
