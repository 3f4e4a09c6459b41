"""A fresh PostgreSQL database for one measure or scenario, dropped afterwards.

The server is the local one (127.0.0.1:5432, trust auth in development); a database named
``postier_bench_<hex>`` is created from its maintenance database and dropped with its
connections at the end, so a run never touches data it did not make.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError


def admin_engine(server_url: str) -> Engine:
    """An autocommit engine on the server's maintenance database (CREATE/DROP DATABASE)."""
    return create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )


def server_answers(server_url: str) -> str | None:
    """None when the server answers, else why not (for the report)."""
    engine = admin_engine(server_url)
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return f"PostgreSQL not reachable: {exc.orig}"
    finally:
        engine.dispose()


def terminate_connections(admin: Engine, database: str) -> int:
    """End every other session on ``database`` (``pg_terminate_backend``); how many."""
    with admin.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).scalar_one()
    return int(ended or 0)


@contextmanager
def fresh_database(server_url: str, prefix: str = "postier_bench") -> Iterator[str]:
    """The URL of a new, empty database on the server at ``server_url``; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = admin_engine(server_url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            terminate_connections(admin, name)
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()
