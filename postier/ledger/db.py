"""Engines, sessions and schema migrations for the ledger.

SQLite is the embedded default for one host, PostgreSQL the choice for several
(docs/ARCHITECTURE.md, "Decisions, and why"). On SQLite every connection runs in WAL mode (readers
never block the writer), waits ``busy_timeout`` ms for the write lock instead of failing at once,
enforces foreign keys and keeps temporary tables in memory. The transition and queue queries rely on
``UPDATE … RETURNING``, hence SQLite 3.35 or newer.

Transactions on SQLite start at the first write of a session (the driver's default), so a
session that reads and then writes holds no stale snapshot and waits for the lock like any other
writer; keep write transactions short, as every writer of the file queues behind them.

SQLite's planner chooses between indexes from the statistics ``ANALYZE`` gathers, and without
them from fixed guesses: a ledger that grew without statistics can take a plan that walks
thousands of rows under the write lock, and one new index can flip a lookup from milliseconds
to seconds. So statistics are gathered after every migration (``upgrade``) and kept current by
beat's ``optimize`` pass (``PRAGMA optimize``), and the queries beat runs all day name their
index (``INDEXED BY``, rendered by ``_SQLiteCompiler``), so no statistic can turn them into a
scan (``postier.ledger.queries``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.sql.selectable import FromClause
from sqlmodel import Session

if TYPE_CHECKING:
    # imported where migrations run: alembic and mako are about 70 modules that a worker,
    # a producer or the API never uses
    from alembic.config import Config

_T = TypeVar("_T")

#: UPDATE … RETURNING and INSERT … ON CONFLICT … RETURNING appeared in SQLite 3.35
MIN_SQLITE = (3, 35, 0)
#: an arbitrary constant key: two processes upgrading one PostgreSQL database take turns
_MIGRATION_LOCK_KEY = 7_345_112_901
#: rows per index ``ANALYZE`` samples in beat's pass (SQLite's advice for PRAGMA optimize): a
#: few milliseconds under the write lock at any ledger size, instead of seconds for a full one
ANALYSIS_LIMIT = 1000
#: per table, a lookup on a non-unique index matching nothing: before SQLite 3.46, ``PRAGMA
#: optimize`` only analyzes the tables whose index statistics the connection has consulted
_OPTIMIZE_PROBES = (
    "SELECT 1 FROM messages WHERE status = '' LIMIT 1",
    "SELECT 1 FROM delivery_events WHERE message_id = '' LIMIT 1",
    "SELECT 1 FROM inbound_messages WHERE provider = '' LIMIT 1",
    "SELECT 1 FROM campaign_rejections WHERE campaign_id = '' LIMIT 1",
)


class _SQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy's SQLite compiler, rendering table hints (``INDEXED BY …``) it otherwise drops.

    ``statement.with_hint(table, "INDEXED BY ix", dialect_name="sqlite")`` then pins the index
    of that table in a SELECT or an UPDATE; other backends ignore the hint.
    """

    def get_from_hint_text(self, table: FromClause, text: str | None) -> str | None:
        return text


def _normalise_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the only PostgreSQL driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, sqlite_busy_timeout_ms: int = 5000, **kwargs: Any) -> Engine:
    """An engine for the ledger at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://…``).

    For a SQLite file the parent directory is created, so the default ``sqlite:///var/postier.db``
    works from a fresh checkout. Extra ``kwargs`` go to ``create_engine``.
    """
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} is too old: the ledger needs 3.35+ (RETURNING)"
            )
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        engine.dialect.statement_compiler = _SQLiteCompiler
        _install_sqlite_pragmas(engine, sqlite_busy_timeout_ms)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _install_sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # bulk inserts stage rows in a temporary table (ledger.bulk): keep it in memory
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    Objects stay readable after the block (``expire_on_commit=False``), so a claimed message
    can be used once its transaction is committed.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: rows one write transaction of a periodic pass changes (``in_short_transactions``)
SHORT_WRITE = 100


def in_short_transactions(
    engine: Engine,
    items: Sequence[_T],
    write: Callable[[Session, Sequence[_T]], object],
    size: int = SHORT_WRITE,
) -> None:
    """``write`` each slice of ``size`` items in a transaction of its own.

    For a pass's writes that need not be atomic together (stamps, each row's own move): on
    SQLite every writer of the file waits while a transaction is open, so a 500-row write that
    holds the lock for tens of milliseconds becomes five that each hold it a few.
    """
    for start in range(0, len(items), size):
        with session_scope(engine) as session:
            write(session, items[start : start + size])


def alembic_config() -> Config:
    """Alembic's configuration for the migrations shipped inside the package."""
    from alembic.config import Config

    script_location = resources.files("postier.ledger") / "migrations"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Run the ledger's migrations up to ``revision`` (default: the newest).

    On SQLite, when a migration ran, ``ANALYZE`` follows in the same transaction: new indexes
    get statistics before any query plans with them. It reads every index once (seconds on a
    ledger of millions, under the write lock the migration already holds).
    """
    from alembic import command

    _run_migration(engine_or_url, lambda config: command.upgrade(config, revision))


def optimize(engine: Engine) -> list[str]:
    """Keep the planner's statistics current (beat's periodic ``optimize`` pass).

    On SQLite: ``PRAGMA optimize`` with ``analysis_limit``, which re-analyzes a table only when
    it has no statistics or grew a lot since, sampling ``ANALYSIS_LIMIT`` rows per index; the
    statements it ran are returned. What would run is asked first, by a read; only then does
    it take the write lock (``BEGIN IMMEDIATE``, waiting like any writer: a read turned into a
    write would fail at once if another writer had committed meanwhile). PostgreSQL's
    autovacuum does this itself: nothing to do.
    """
    if engine.dialect.name != "sqlite":
        return []
    with engine.connect() as connection:
        connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        for probe in _OPTIMIZE_PROBES:
            connection.exec_driver_sql(probe).all()
        # bit 0x10000 (SQLite 3.46+: every table, not only those consulted) is ignored
        # before; 0x1 only lists what would run, a read: most passes find nothing to do and
        # never take the write lock
        planned = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA optimize(0x10003)")]
        if not planned:
            connection.rollback()
            return []
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            connection.exec_driver_sql("PRAGMA optimize(0x10002)")
            _stat_empty_partial_indexes(connection)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
    return planned


#: a statistics row ("about one entry") for each partial index ANALYZE left without one: it
#: writes none for an index with no entries, and ``PRAGMA optimize`` re-analyzes every table
#: with an index lacking statistics on every pass. ``ix_messages_batch_unsettled`` is empty
#: most of the time. The row count is followed by a 1 per column of the index.
_STAT_EMPTY_PARTIAL_INDEXES = """
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT m.tbl_name, m.name,
       '1' || replace(hex(zeroblob((SELECT count(*) FROM pragma_index_info(m.name)))), '00', ' 1')
FROM sqlite_master AS m
WHERE m.type = 'index' AND m.sql LIKE '% WHERE %'
  AND EXISTS (SELECT 1 FROM sqlite_stat1 AS t WHERE t.tbl = m.tbl_name)
  AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 AS s WHERE s.idx = m.name)
"""


def _stat_empty_partial_indexes(connection: Connection) -> None:
    """See ``_STAT_EMPTY_PARTIAL_INDEXES``; the connection's planner reloads the statistics."""
    if connection.exec_driver_sql(_STAT_EMPTY_PARTIAL_INDEXES).rowcount:
        connection.exec_driver_sql("ANALYZE sqlite_schema")


def downgrade(engine_or_url: Engine | str, revision: str) -> None:
    """Undo migrations down to ``revision`` (``"base"`` drops every ledger table)."""
    from alembic import command

    _run_migration(engine_or_url, lambda config: command.downgrade(config, revision))


def _run_migration(engine_or_url: Engine | str, run: Callable[[Config], None]) -> None:
    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            before = _revision(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            run(config)
            if connection.dialect.name == "sqlite" and _revision(connection) != before:
                connection.exec_driver_sql("ANALYZE")
                _stat_empty_partial_indexes(connection)
    finally:
        if owned:
            engine.dispose()


def _revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
