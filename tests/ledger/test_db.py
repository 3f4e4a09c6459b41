"""Engines, sessions and migrations (postier.ledger.db)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import ops
from sqlalchemy import Engine, inspect, select, text
from sqlmodel import SQLModel

from postier.config import Settings
from postier.ledger.db import downgrade, make_engine, optimize, session_scope, upgrade
from postier.ledger.migrations.rendering import render_plain_type
from postier.ledger.models import IX_LIVE, Campaign, Message, campaigns_table, messages_table
from postier.ledger.plans import pinned
from postier.ledger.queries import insert_messages
from tests.ledger.conftest import message_row

LEDGER_TABLES = {
    "callback_events",
    "messages",
    "delivery_events",
    "inbound_messages",
    "campaigns",
    "campaign_audiences",
    "campaign_chunks",
    "campaign_rejections",
    "opt_outs",
    "api_keys",
    "api_idempotency",
    "message_counts",
    "message_count_deltas",
}
#: the newest migration
HEAD = "0009"


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _head(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_from_empty_creates_every_table_and_matches_the_models(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == LEDGER_TABLES | {"alembic_version"}
        assert _head(engine) == HEAD
        # what `alembic check` does: the models and the migrated schema agree
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_downgrading_the_recipient_hash_keeps_the_count_triggers(tmp_path: Path) -> None:
    # 0009's downgrade must not rebuild ``messages`` on SQLite: a rebuild drops 0008's triggers
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        upgrade(engine)
        downgrade(engine, "0008")
        with engine.connect() as connection:
            triggers = set(
                connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                ).scalars()
            )
        assert {
            "messages_counted_insert",
            "messages_counted_update",
            "messages_counted_delete",
        } <= triggers
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless_and_downgrade_to_base_removes_the_tables(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url)  # from a URL: the engine is made and disposed inside
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        assert _head(engine) == HEAD
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert _head(engine) is None
        upgrade(engine)
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_autogenerate_renders_plain_types_only() -> None:
    """A revision written from the models must not import the models' Python types."""
    code = render_python_code(
        ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(messages_table)]),
        render_item=render_plain_type,
    )
    assert "postier" not in code
    assert "sqlmodel" not in code
    assert "sa.DateTime(timezone=True)" in code
    assert "sa.String(16)" in code
    assert 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")' in code


def test_sqlite_engine_settings_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    engine = make_engine(f"sqlite:///{path}", sqlite_busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
        assert path.parent.is_dir()
        assert pragma == {
            "journal_mode": "wal",
            "busy_timeout": 1234,
            "foreign_keys": 1,
            "synchronous": 1,  # NORMAL
        }
    finally:
        engine.dispose()


def test_sqlite_statistics_after_migrations_and_from_the_optimize_pass(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/stats.db")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            tables = {
                str(name)
                for (name,) in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        assert "sqlite_stat1" in tables  # ANALYZE ran after the migrations
        with session_scope(engine) as session:
            insert_messages(session, [message_row() for _ in range(50)])
        assert 'ANALYZE "main"."messages"' in optimize(engine)
        with engine.connect() as connection:
            analyzed = connection.exec_driver_sql(
                "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'messages'"
            ).scalar()
        assert analyzed
        # current: not analyzed again until the table grows a lot
        assert 'ANALYZE "main"."messages"' not in optimize(engine)
    finally:
        engine.dispose()


def test_optimize_leaves_postgresql_to_autovacuum(backend: str, engine: Engine) -> None:
    if backend == "postgresql":
        assert optimize(engine) == []


def test_a_pinned_index_is_named_on_sqlite_only(engine: Engine) -> None:
    query = pinned(select(messages_table.c.id).where(messages_table.c.status == "sent"), IX_LIVE)
    sql = str(query.compile(dialect=engine.dialect))
    if engine.dialect.name == "sqlite":
        assert "FROM messages INDEXED BY ix_messages_live" in sql
    else:
        assert "INDEXED BY" not in sql


def test_postgresql_urls_mean_psycopg_with_pre_ping() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        engine = make_engine(url)
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.pool._pre_ping
        engine.dispose()


def test_default_database_url_is_a_sqlite_file_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTIER_DATABASE_URL", raising=False)
    assert Settings(_env_file=None).database_url == "sqlite:///var/postier.db"


def test_session_scope_commits_and_rolls_back(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Campaign(id="c" * 32, name="soldes"))
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Campaign(id="d" * 32, name="rolled back"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        names = session.execute(select(campaigns_table.c.name)).scalars().all()
    assert names == ["soldes"]


def test_objects_stay_readable_after_the_scope(engine: Engine) -> None:
    row = message_row()
    with session_scope(engine) as session:
        session.add(Message(**row))
    with session_scope(engine) as session:
        message = session.get(Message, row["id"])
    assert message is not None
    assert message.recipient == "+33612345678"


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO delivery_events (message_id, to_status, at) "
                "VALUES ('nope', 'queued', '2026-01-01 00:00:00')"
            )
        )


def test_migrations_ship_inside_the_package() -> None:
    migrations = resources.files("postier.ledger") / "migrations"
    for name in ("env.py", "script.py.mako", "alembic.ini", "versions/0001_initial.py"):
        assert (migrations / name).is_file(), name
