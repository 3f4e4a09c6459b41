"""The provider clients' connection pool in tests: the real one, observed.

Provider clients take the process's pool (``transport.build_http_transport``); tests give them
this wrapper to see each request exactly as it went to the sandbox, retries included.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from postier.config import Settings


class RecordingPool(httpx.BaseTransport):
    """The real connection pool, keeping every request it sends (observed, not altered)."""

    def __init__(self, pool: httpx.BaseTransport) -> None:
        self.pool = pool
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.pool.handle_request(request)

    def close(self) -> None:
        self.pool.close()


@pytest.fixture
def http_pool(settings: Settings) -> Iterator[RecordingPool]:
    """A pool as the provider clients of a process share it, recording what it sends."""
    from postier.providers.transport import build_http_transport

    pool = RecordingPool(build_http_transport(settings.http))
    yield pool
    pool.close()
