"""The migrations job of every deployment, ``postier db upgrade``, on an empty PostgreSQL.

Run as the containers run it: a separate process configured by POSTIER_DATABASE_URL alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from postier.ledger.db import alembic_config
from tests.deploy.conftest import RunCli
from tests.ledger.conftest import fresh_pg_database, pg_admin  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_pg(pg_admin: Engine) -> Iterator[str]:  # noqa: F811 - the imported fixture
    with fresh_pg_database(pg_admin) as url:
        yield url


def db_upgrade(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTIER_")}
    return subprocess.run(
        [sys.executable, "-m", "postier.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "POSTIER_DATABASE_URL": url, "COLUMNS": "200"},
    )


def test_db_upgrade_builds_the_ledger_on_an_empty_postgresql(
    empty_pg: str, run_cli: RunCli
) -> None:
    # trust auth ignores the password: it is there to show it never reaches the job's output
    url = make_url(empty_pg).set(password="pw-not-printed").render_as_string(hide_password=False)
    engine = create_engine(empty_pg)
    try:
        assert inspect(engine).get_table_names() == []
        first = db_upgrade(url)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "is up to date" in first.stdout
        assert "pw-not-printed" not in first.stdout + first.stderr
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == head
        tables = set(inspect(engine).get_table_names())
        assert {"messages", "delivery_events", "inbound_messages"} <= tables
        # the job runs on every deploy: a second run changes nothing and succeeds
        again = run_cli("db", "upgrade", env={"POSTIER_DATABASE_URL": url})
        assert again.exit_code == 0, again.output
    finally:
        engine.dispose()


def test_db_upgrade_fails_loudly_on_an_unreachable_database(run_cli: RunCli) -> None:
    url = "postgresql+psycopg://postier:pw-not-shown@127.0.0.1:1/postier"
    result = run_cli("db", "upgrade", env={"POSTIER_DATABASE_URL": url})
    # one line saying why, no traceback (postier.terminal.ErrorsOnOneLine)
    assert result.exit_code == 2
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert "pw-not-shown" not in result.output
