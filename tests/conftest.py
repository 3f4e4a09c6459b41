"""Fixtures shared by every test: the sandbox over real HTTP and settings pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postier.config import HttpSettings, Settings
from postier.ledger import outbox
from postier.sandbox import Sandbox, SandboxServer
from tests.http_pool import http_pool  # noqa: F401
from tests.redis_fixtures import redis_client, redis_server, redis_test_url  # noqa: F401


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox HTTP server for the whole session, on a free port of 127.0.0.1."""
    with SandboxServer(Sandbox(delivery_delay=0.5, seed=1234)) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Sandbox:
    """The sandbox, emptied of messages, contacts and faults before the test."""
    sandbox_server.sandbox.reset()
    return sandbox_server.sandbox


@pytest.fixture
def settings(sandbox_server: SandboxServer, sandbox: Sandbox) -> Settings:
    """Settings whose providers point at the sandbox, with short timeouts for fast tests."""
    base = Settings(_env_file=None)  # type: ignore[call-arg]
    base = base.model_copy(
        update={
            "http": HttpSettings(
                connect_timeout=1.0,
                read_timeout=2.0,
                pool_timeout=1.0,
                short_retry_attempts=3,
                max_inline_wait=1.0,
            )
        }
    )
    return base.pointed_at_sandbox(sandbox_server.url)


@pytest.fixture(autouse=True)
def no_callback_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process is no worker: importing ``worker`` (as the deploy tests do) installs
    its after-commit publisher of callback events, which must not reach other tests."""
    monkeypatch.setattr(outbox, "_notifier", None)
