"""The stack record (postier/stack_record.py) and how settings read it: below the environment,
above ``.env``, and never once the process that wrote it is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from postier.config import Settings
from postier.stack_record import (
    RECORD_PATH,
    StackRecord,
    read_record,
    remove_record,
    write_record,
)


def a_record(pid: int | None = None, **fields: str) -> StackRecord:
    values = {
        "workdir": "/srv/postier/var",
        "redis_url": "redis://127.0.0.1:6390/0",
        "database_url": "sqlite:////srv/postier/var/postier.db",
        "sandbox_url": "http://127.0.0.1:8099",
        **fields,
    }
    return StackRecord(pid=os.getpid() if pid is None else pid, command="up", **values)


def a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own, and no POSTIER_* variable in the environment."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("POSTIER_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_a_written_record_is_read_back_from_its_directory(here: Path) -> None:
    record = a_record()
    path = write_record(record)
    assert path == here / RECORD_PATH
    assert read_record() == record
    assert read_record(here / "elsewhere") is None


def test_a_record_whose_process_is_gone_is_ignored(here: Path) -> None:
    write_record(a_record(pid=a_dead_pid()))
    assert read_record() is None
    assert Settings().redis_url == "redis://127.0.0.1:6379/0"


def test_an_unreadable_record_is_ignored(here: Path) -> None:
    (here / RECORD_PATH).parent.mkdir(parents=True)
    (here / RECORD_PATH).write_text("{not json", encoding="utf-8")
    assert read_record() is None
    (here / RECORD_PATH).write_text('{"pid": 1}', encoding="utf-8")
    assert read_record() is None


def test_only_the_writer_removes_the_record(here: Path) -> None:
    write_record(a_record())
    remove_record(os.getpid() + 1)
    assert read_record() is not None
    remove_record(os.getpid())
    assert not (here / RECORD_PATH).exists()
    remove_record(os.getpid())  # already gone: nothing to do


def test_settings_read_the_record_and_point_at_its_sandbox(here: Path) -> None:
    write_record(a_record())
    settings = Settings()
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.database_url == "sqlite:////srv/postier/var/postier.db"
    assert settings.sandbox_url == "http://127.0.0.1:8099"


def test_the_environment_wins_over_the_record_and_the_record_over_dotenv(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (here / ".env").write_text(
        "POSTIER_DATABASE_URL=postgresql+psycopg://db/postier\nPOSTIER_DEFAULT_REGION=BE\n",
        encoding="utf-8",
    )
    write_record(a_record())
    monkeypatch.setenv("POSTIER_REDIS_URL", "redis://elsewhere:6379/1")
    settings = Settings()
    assert settings.redis_url == "redis://elsewhere:6379/1"  # the environment
    assert settings.database_url == "sqlite:////srv/postier/var/postier.db"  # the record
    assert settings.default_region == "BE"  # .env, for what the record does not say


def test_no_record_is_read_when_no_file_is(here: Path) -> None:
    write_record(a_record())
    assert Settings(_env_file=None).redis_url == "redis://127.0.0.1:6379/0"  # type: ignore[call-arg]


def test_a_real_stack_records_no_sandbox(here: Path) -> None:
    write_record(a_record(sandbox_url=""))
    assert Settings().sandbox_url is None
    assert "POSTIER_SANDBOX_URL" not in a_record(sandbox_url="").environment()


def test_export_lines_are_quoted_for_a_shell() -> None:
    record = a_record(database_url="sqlite:////home/jeanne/mes projets/var/postier.db")
    lines = record.export_lines()
    assert lines[0] == "export POSTIER_REDIS_URL=redis://127.0.0.1:6390/0"
    assert (
        "export POSTIER_DATABASE_URL='sqlite:////home/jeanne/mes projets/var/postier.db'" in lines
    )
    assert lines[-1] == "export POSTIER_SANDBOX_URL=http://127.0.0.1:8099"
    script = "; ".join([*lines, 'printf %s "$POSTIER_DATABASE_URL"'])
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout == record.database_url
