"""The newcomer's path: ``postier`` commands typed in a second terminal beside a running stack.

Each command is a process of its own, started in the directory where the stack was recorded,
with no ``POSTIER_*`` variable and 80 columns: exactly what a user who ran ``make run`` in
one terminal has in the next one. ``test_up_…`` starts ``postier up`` itself; the others use
the package's stack, recorded as ``postier up`` records it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from postier.ledger.bulk import insert_messages
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Channel, MessageKind, MessageStatus
from postier.ledger.queries import get_message
from postier.stack import Stack
from postier.stack_record import RECORD_PATH, remove_record, write_record

pytestmark = pytest.mark.integration


def user_environment(**extra: str) -> dict[str, str]:
    """A shell's environment with no Postier setting in it, 80 columns wide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTIER_", "FLOWER_"))}
    return {**env, "COLUMNS": "80", **extra}


def postier(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``postier <args>`` typed in a terminal whose working directory is ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "postier.cli", *args],
        cwd=cwd,
        env=user_environment(**extra_env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def ledger(deploy_stack: Stack) -> Engine:
    return make_engine(deploy_stack.database_url)


@pytest.fixture
def beside(deploy_stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """A directory where the package's stack is recorded as ``postier up`` records it."""
    write_record(deploy_stack.record("up"), tmp_path)
    yield tmp_path
    remove_record(os.getpid(), tmp_path)


def wait_for_status(engine: Engine, message_id: str, wanted: MessageStatus) -> None:
    deadline = time.monotonic() + 30
    current = None
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            message = get_message(session, message_id)
            current = message.status if message else None
        if current == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{message_id} stayed {current}, wanted {wanted}")


def test_a_second_terminal_uses_the_recorded_stack(beside: Path, ledger: Engine) -> None:
    # the first stumble: the Afilnet groups were out of reach without exports
    group = ok(postier(beside, "contacts", "create-group", "clients", "--field", "mobile")).strip()
    assert group
    ok(postier(beside, "contacts", "add", group, "mobile=33612345601"))
    assert "1 contacts" in ok(postier(beside, "contacts", "list", group))

    message_id = ok(postier(beside, "send", "0612345678", "Bonjour")).split()[0]
    wait_for_status(ledger, message_id, MessageStatus.DELIVERED)

    listing = ok(postier(beside, "list", "--limit", "5"))
    assert max(len(line) for line in listing.splitlines()) <= 80, listing
    row = next(line for line in listing.splitlines() if line.startswith(message_id[:12]))
    assert "primotexto" in row and "delivered" in row and "…" not in listing

    # the id as the listing shows it is enough
    status = ok(postier(beside, "status", message_id[:12]))
    assert message_id in status and "delivered" in status

    health = json.loads(ok(postier(beside, "health", "--providers", "--json", "--worker")))
    checks = {check["name"]: check for check in health["checks"]}
    assert health["ok"] and checks["worker"]["ok"], health
    for provider in ("afilnet", "primotexto", "octopush"):
        assert checks[provider]["ok"] and checks[provider]["balance"], checks[provider]
        assert "(sandbox)" in checks[provider]["detail"]


def test_an_ambiguous_prefix_lists_the_candidates(beside: Path, ledger: Engine) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    rows = [
        {
            "id": f"dec0de{n}{0:025x}",
            "channel": Channel.SMS,
            "kind": MessageKind.SMS,
            "provider": "primotexto",
            "recipient": "+33612345678",
            "body": "Rappel",
            "status": MessageStatus.SCHEDULED,
            "send_at": later,
        }
        for n in (1, 2)
    ]
    with session_scope(ledger) as session:
        first, second = insert_messages(session, rows)

    ambiguous = postier(beside, "cancel", "dec0de")
    assert ambiguous.returncode == 1
    assert "dec0de is ambiguous" in ambiguous.stdout
    assert first in ambiguous.stdout and second in ambiguous.stdout
    assert ok(postier(beside, "cancel", first[:7])).split() == [first, "cancelled"]
    assert "no message 0000dec0de" in postier(beside, "status", "0000dec0de").stdout


def test_without_a_stack_the_missing_credentials_are_named(
    beside: Path, deploy_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    expected = (
        "Afilnet has no credentials: set POSTIER_AFILNET__USER and POSTIER_AFILNET__PASSWORD,"
        " or run `postier up` in this directory to use the sandbox"
    )
    elsewhere = tmp_path_factory.mktemp("no-stack")
    nothing = postier(elsewhere, "contacts", "create-group", "clients", "--field", "mobile")
    assert nothing.returncode == 2
    assert nothing.stdout.strip() == expected and not nothing.stderr

    # a record whose stack was killed (its process is gone) is not followed
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = dataclasses.replace(deploy_stack.record("up"), pid=gone.pid)
    write_record(stale, elsewhere)
    again = postier(elsewhere, "contacts", "columns", "1")
    assert again.returncode == 2 and again.stdout.strip() == expected

    # beside the stack, the environment still wins over the record
    overridden = postier(beside, "contacts", "columns", "1", POSTIER_SANDBOX_URL="")
    assert overridden.returncode == 2 and overridden.stdout.strip() == expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_records_its_stack_prints_the_exports_and_removes_the_record(tmp_path: Path) -> None:
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postier.cli",
            "up",
            "--private-redis",
            "--flower-port",
            str(_free_port()),
        ],
        cwd=tmp_path,
        env=user_environment(
            POSTIER_SANDBOX__PORT=str(_free_port()),
            POSTIER_METRICS__PORT="0",
            POSTIER_FLOWER__PASSWORD="newcomer-test",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    record = tmp_path / RECORD_PATH
    try:
        deadline = time.monotonic() + 120
        while not record.exists():
            assert up.poll() is None, up.communicate()[0]
            assert time.monotonic() < deadline, "postier up wrote no record"
            time.sleep(0.2)
        written = json.loads(record.read_text())
        assert written["pid"] == up.pid and written["sandbox_url"]

        health = postier(tmp_path, "health", "--worker", "--json")
        assert json.loads(ok(health))["ok"], health.stdout
        second = postier(tmp_path, "up", "--private-redis")
        assert second.returncode == 1 and "already running" in second.stdout
    finally:
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert not record.exists()
    exports = [line for line in output.splitlines() if line.startswith("export ")]
    assert exports == [
        f"export POSTIER_REDIS_URL={written['redis_url']}",
        f"export POSTIER_DATABASE_URL={written['database_url']}",
        f"export POSTIER_SANDBOX_URL={written['sandbox_url']}",
    ]
    assert "var/stack.json" in output
