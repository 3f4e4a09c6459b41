"""``postier health``'s checks on their own (the stack test runs the command end to end)."""

from __future__ import annotations

from pathlib import Path

from postier.config import Settings
from postier.health import check_ledger, check_redis, run_checks
from postier.ledger.db import make_engine, upgrade


def test_a_missing_sqlite_ledger_fails_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    settings = Settings(_env_file=None, database_url=f"sqlite:///{path}")
    result = check_ledger(settings, timeout=1)
    assert not result.ok and "postier db upgrade" in result.detail
    assert not path.exists()


def test_checks_pass_on_a_ledger_and_redis_that_answer(redis_test_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    upgrade(make_engine(url))
    settings = Settings(_env_file=None, database_url=url, redis_url=redis_test_url)
    results = run_checks(settings, timeout=2)
    assert [(r.name, r.ok, r.detail) for r in results] == [
        ("redis", True, "PONG"),
        ("ledger", True, "sqlite"),
    ]
    assert all(r.seconds < 2 for r in results)


def test_an_unreachable_redis_fails_within_the_timeout() -> None:
    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:1/0")
    result = check_redis(settings, timeout=0.5)
    assert not result.ok and "ConnectionError" in result.detail
