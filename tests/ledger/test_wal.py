"""SQLite's write-ahead log: no writer checkpoints below the ceiling, beat's pass copies and
resets the log, and without the pass the log stays bounded (``postier.ledger.wal``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from postier.config import DispatchSettings
from postier.ledger.db import make_engine
from postier.ledger.wal import RESTART_PAGES, WAL_CEILING_PAGES, Checkpoint, checkpoint

PAGE = 4096


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "wal.db"


@pytest.fixture
def wal_engine(database: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE scratch (b BLOB)")
    yield engine
    engine.dispose()


def write_pages(engine: Engine, pages: int) -> None:
    """One transaction writing about ``pages`` pages (one 4,000-byte blob fills one)."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO scratch SELECT randomblob(4000) FROM n",
            (pages,),
        )


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def wal(database: Path) -> Path:
    return database.with_name(f"{database.name}-wal")


def test_every_connection_leaves_checkpoints_below_the_ceiling_to_the_pass(
    wal_engine: Engine,
) -> None:
    with wal_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
            WAL_CEILING_PAGES
        )
        # no writer truncates the log file in its commit
        assert connection.exec_driver_sql("PRAGMA journal_size_limit").scalar() == -1
    # SQLite's default (1,000 pages) would have run a checkpoint inside some writer's COMMIT
    assert WAL_CEILING_PAGES > 1000


def test_a_commit_past_sqlites_default_threshold_copies_nothing(
    wal_engine: Engine, database: Path
) -> None:
    before = size(database)
    write_pages(wal_engine, 1500)
    # the pages are all in the log; the database file was not touched by the commit
    assert size(database) == before
    assert size(wal(database)) > 1500 * PAGE


def test_the_pass_copies_the_log_and_the_next_writer_starts_it_over(
    wal_engine: Engine, database: Path
) -> None:
    write_pages(wal_engine, 1500)
    done = checkpoint(wal_engine)
    assert done is not None
    assert not done.busy
    assert done.log_pages > 1500
    assert done.copied_pages == done.log_pages
    assert size(database) > 1500 * PAGE
    write_pages(wal_engine, 1)
    again = checkpoint(wal_engine)
    assert again is not None
    assert again.copied_pages == again.log_pages
    assert again.log_pages < 10  # the log restarted from its beginning


def test_the_pass_never_waits_for_a_reader(wal_engine: Engine, database: Path) -> None:
    write_pages(wal_engine, 20)
    reader = sqlite3.connect(database)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM scratch").fetchone()  # holds its snapshot
        write_pages(wal_engine, 200)
        held = checkpoint(wal_engine)
        assert held is not None
        # what the reader's snapshot does not need is copied; the pages after it wait
        assert 20 <= held.copied_pages < held.log_pages
    finally:
        reader.close()
    done = checkpoint(wal_engine)
    assert done is not None
    assert done.copied_pages == done.log_pages


def log_pages(engine: Engine) -> int:
    """Pages in the log now (a PASSIVE checkpoint's count: it also copies them)."""
    done = checkpoint(engine, tries=1)
    assert done is not None
    return done.log_pages


def test_a_large_copied_log_starts_over_at_the_next_write(wal_engine: Engine) -> None:
    write_pages(wal_engine, RESTART_PAGES + 100)
    done = checkpoint(wal_engine)
    assert done is not None
    assert done.restarted
    write_pages(wal_engine, 1)
    assert log_pages(wal_engine) < 10


def test_the_restart_gives_up_at_once_while_a_reader_is_on_the_log(
    wal_engine: Engine, database: Path
) -> None:
    write_pages(wal_engine, RESTART_PAGES + 100)
    reader = sqlite3.connect(database)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM scratch").fetchone()  # reads the log's pages
        done = checkpoint(wal_engine)
        assert done is not None
        assert done.copied_pages == done.log_pages  # the reader needs no older page
        assert not done.restarted  # it would have to wait for the reader
    finally:
        reader.close()
    with wal_engine.connect() as connection:  # the pooled connection waits as before
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    again = checkpoint(wal_engine)
    assert again is not None
    assert again.restarted


def test_without_the_pass_the_log_stays_bounded_by_the_ceiling(database: Path) -> None:
    ceiling = 300
    engine = make_engine(f"sqlite:///{database}", sqlite_wal_ceiling_pages=ceiling)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE scratch (b BLOB)")
        for _ in range(40):  # 4,000 pages written, 13 times the ceiling
            write_pages(engine, 100)
        # the writer crossing the ceiling checkpointed; the log starts over after it
        assert size(wal(database)) <= (ceiling + 2 * 100) * PAGE
        assert size(database) > 3000 * PAGE
    finally:
        engine.dispose()


def test_postgresql_checkpoints_on_its_own(backend: str, engine: Engine) -> None:
    if backend == "postgresql":
        assert checkpoint(engine) is None
    else:
        assert isinstance(checkpoint(engine), Checkpoint)


def test_beat_runs_the_checkpoint_pass_every_second_on_the_scheduled_queue() -> None:
    from postier import tasknames
    from postier.celery_app import create_celery_app
    from scheduler.schedule import beat_schedule

    entry = beat_schedule(DispatchSettings())["checkpoint-ledger"]
    assert entry["task"] == tasknames.CHECKPOINT_LEDGER
    assert entry["schedule"] == DispatchSettings().checkpoint_interval == 1.0
    assert entry["options"]["queue"] == tasknames.QUEUE_SCHEDULED
    routes = create_celery_app(main="test").conf.task_routes
    assert routes[tasknames.CHECKPOINT_LEDGER] == {"queue": tasknames.QUEUE_SCHEDULED}
