"""Redis fixtures: the configured Redis (or a private one) and a client on a test-only DB.

Wire them in tests/conftest.py with
``from tests.redis_fixtures import redis_client, redis_server, redis_test_url  # noqa: F401``.
Tests use DB 15 only, flushed around each test; DB 0 (the broker's default) is never flushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from postier.config import Settings
from postier.redis_server import RedisHandle, ensure_redis

TEST_DB = 15


def with_db(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db`` (redis-py lets the URL win)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisHandle]:
    """The Redis at settings' ``redis_url`` if it answers, else a private one for the session."""
    url = Settings(_env_file=None).redis_url
    with ensure_redis(url) as handle:
        yield handle


@pytest.fixture(scope="session")
def redis_test_url(redis_server: RedisHandle) -> str:
    """The URL of the test-only database (15) of the session's Redis."""
    return with_db(redis_server.url, TEST_DB)


@pytest.fixture
def redis_client(redis_test_url: str) -> Iterator[redis.Redis]:
    """A client on DB 15, flushed before and after the test."""
    client = redis.Redis.from_url(redis_test_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
