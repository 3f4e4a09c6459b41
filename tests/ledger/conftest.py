"""Ledger fixtures: every test runs on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL is reached at ``POSTIER_TEST_PG_URL`` (default: the local server with trust auth,
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); a fresh ``postier_test_<hex>``
database is created for the session and dropped at the end. When the server is unreachable the
PostgreSQL cases are skipped with the reason, unless ``POSTIER_TEST_REQUIRE_PG`` is set (as in
CI), which turns that into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import (
    Channel,
    MessageKind,
    MessageStatus,
    messages_table,
    new_message_id,
)
from postier.ledger.queries import insert_messages

PG_URL = os.environ.get(
    "POSTIER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = bool(os.environ.get("POSTIER_TEST_REQUIRE_PG"))
BACKENDS = ["sqlite", "postgresql"]
#: a fixed instant for tests that pass ``now`` themselves
T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
_TABLES = ("callback_events", "delivery_events", "messages", "inbound_messages", "campaigns")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the server's maintenance database, to create test databases."""
    engine = create_engine(
        make_url(PG_URL), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        where = make_url(PG_URL).render_as_string(hide_password=True)
        reason = f"PostgreSQL not reachable at {where}: {exc.orig}"
        if REQUIRE_PG:
            pytest.fail(f"{reason} (POSTIER_TEST_REQUIRE_PG is set)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@contextmanager
def fresh_pg_database(admin: Engine) -> Iterator[str]:
    """A new, empty PostgreSQL database for the block; its URL."""
    name = f"postier_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgresql_ledger(pg_admin: Engine) -> Iterator[Engine]:
    """A migrated PostgreSQL ledger for the session."""
    with fresh_pg_database(pg_admin) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated SQLite ledger for the session."""
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest) -> Engine:
    """The backend's migrated ledger, emptied before the test."""
    ledger: Engine = request.getfixturevalue(f"{backend}_ledger")
    with ledger.begin() as connection:
        for table in _TABLES:
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (our table names)
    return ledger


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> Iterator[str]:
    """A URL to a database with nothing in it (not even the migrations)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/dir/empty.db"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    with fresh_pg_database(admin) as url:
        yield url


def message_row(**overrides: Any) -> dict[str, Any]:
    """The columns of a new SMS message, as ``insert_messages`` takes them."""
    row: dict[str, Any] = {
        "id": new_message_id(),
        "channel": Channel.SMS,
        "kind": MessageKind.SMS,
        "provider": "octopush",
        "recipient": "+33612345678",
        "body": "Votre code : 123456",
        "payload": {"sender": "Postier"},
        "category": "notification",
        "status": MessageStatus.QUEUED,
    }
    row.update(overrides)
    return row


@dataclass
class Ledger:
    """Test helpers on one engine: store messages, force a status for a test's set-up."""

    engine: Engine

    def add(self, status: MessageStatus = MessageStatus.QUEUED, **fields: Any) -> str:
        """A stored message, in ``status`` (set directly when it is not an initial status)."""
        initial = status if status in (MessageStatus.QUEUED, MessageStatus.SCHEDULED) else None
        row = message_row(status=initial or MessageStatus.QUEUED, **fields)
        if row["status"] is MessageStatus.SCHEDULED and row.get("send_at") is None:
            row["send_at"] = T0
        with session_scope(self.engine) as session:
            (message_id,) = insert_messages(session, [row])
        if initial is None:
            self.force(message_id, status)
        return message_id

    def force(self, message_id: str, status: MessageStatus, **fields: Any) -> None:
        """Set columns directly, bypassing the state machine (test set-up only)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(messages_table)
                .where(messages_table.c.id == message_id)
                .values(status=status, **fields)
            )


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    return Ledger(engine)
