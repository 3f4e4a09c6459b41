"""API fixtures: a migrated SQLite ledger, the API served by uvicorn on a free port over real
HTTP, keys made as ``postier api-key create`` makes them, and no worker (messages stay queued;
tests/integration sends one through a real worker)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier.api.app import Services, create_app
from postier.api.keys import create_key
from postier.config import ApiSettings, Settings
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import SQLModel


class ApiServer:
    """The API app under uvicorn in a daemon thread, on its own port of 127.0.0.1."""

    def __init__(self, app: object) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture
def api_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/api.db")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def api_settings(settings: Settings, redis_test_url: str, redis_client: object, tmp_path: Path):
    """The root settings (providers at the sandbox), the test Redis, a roomy rate limit."""
    return settings.model_copy(
        update={
            "redis_url": redis_test_url,
            "database_url": f"sqlite:///{tmp_path}/api.db",
            "api": ApiSettings(rate=1000, burst=1000),
        }
    )


@pytest.fixture
def serve(api_settings: Settings, api_engine: Engine) -> Iterator[Callable[..., ApiServer]]:
    """Start the API on ``api_settings`` (``api=`` overrides its ApiSettings)."""
    running: list[tuple[ApiServer, Services]] = []

    def start(api: ApiSettings | None = None) -> ApiServer:
        chosen = api_settings if api is None else api_settings.model_copy(update={"api": api})
        services = Services.build(chosen)
        server = ApiServer(create_app(chosen, services)).__enter__()
        running.append((server, services))
        return server

    yield start
    for server, services in running:
        server.__exit__()
        services.close()


@pytest.fixture
def api(serve: Callable[..., ApiServer]) -> ApiServer:
    return serve()


@pytest.fixture
def make_key(api_engine: Engine) -> Callable[..., str]:
    """A token with ``scopes`` (default: every scope but numbers)."""

    def make(*scopes: str, name: str = "test") -> str:
        return create_key(api_engine, name, scopes or ("send", "read", "campaigns")).token

    return make


@pytest.fixture
def client(api: ApiServer, make_key: Callable[..., str]) -> Iterator[httpx.Client]:
    """An HTTP client of the API with a key of the default scopes."""
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {make_key()}"}, timeout=10
    ) as http:
        yield http


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in every ledger table: what a refused request must leave as it was."""
    counts = {}
    with session_scope(engine) as session:
        for name, table in SQLModel.metadata.tables.items():
            counts[name] = session.execute(select(func.count()).select_from(table)).scalar_one()
    return counts


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to show a refused request wrote nothing at all."""
    rows = {}
    with session_scope(engine) as session:
        for name, table in SQLModel.metadata.tables.items():
            rows[name] = [tuple(r) for r in session.execute(select(table)).all()]
    return rows


def ledger_snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """``snapshot`` without the keys' table (a valid key's use is recorded there)."""
    return {name: rows for name, rows in snapshot(engine).items() if name != "api_keys"}
