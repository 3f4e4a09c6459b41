"""``postier health``'s checks on their own (the stack test runs the command end to end)."""

from __future__ import annotations

from pathlib import Path

import redis
from pydantic import SecretStr

from postier.config import Settings
from postier.dispatch.health import HealthState, ProviderHealth
from postier.health import check_ledger, check_provider, check_redis, provider_health, run_checks
from postier.ledger.db import make_engine, upgrade
from postier.providers.errors import RetryableError
from tests.deploy.conftest import RunCli


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


def test_an_unreachable_redis_fails_within_the_timeout() -> None:
    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:1/0")
    result = check_redis(settings, timeout=0.5)
    assert not result.ok and "ConnectionError" in result.detail


def test_each_provider_with_credentials_shows_its_balance(settings: Settings) -> None:
    results = {r.name: r for r in run_checks(settings, timeout=2, providers=True)}
    for name in ("afilnet", "primotexto", "octopush"):
        result = results[name]
        assert result.ok and not result.skipped, result
        assert result.balance and "credentials accepted" in result.detail, result
        assert "(sandbox)" not in result.detail  # these settings name the sandbox's URLs only
    assert set(results["primotexto"].balance or {}) == {"credits"}
    assert results["octopush"].as_json()["balance"] == results["octopush"].balance


def test_refused_or_missing_credentials_are_named(settings: Settings) -> None:
    wrong = settings.model_copy(
        update={"octopush": settings.octopush.model_copy(update={"api_key": SecretStr("nope")})}
    )
    refused = check_provider(wrong, "octopush", timeout=2)
    assert not refused.ok and "AuthenticationError" in refused.detail, refused
    keyless = settings.model_copy(
        update={"primotexto": settings.primotexto.model_copy(update={"api_key": SecretStr("")})}
    )
    missing = check_provider(keyless, "primotexto", timeout=2)
    assert missing.ok and missing.skipped and "POSTIER_PRIMOTEXTO__API_KEY" in missing.detail
    half = settings.model_copy(
        update={"afilnet": settings.afilnet.model_copy(update={"password": SecretStr("")})}
    )
    incomplete = check_provider(half, "afilnet", timeout=2)
    assert not incomplete.ok and incomplete.detail == (
        "incomplete credentials: set POSTIER_AFILNET__PASSWORD"
    )


def test_an_unreachable_provider_fails_within_the_timeout(settings: Settings) -> None:
    away = settings.model_copy(
        update={
            "primotexto": settings.primotexto.model_copy(
                update={"base_url": "http://127.0.0.1:1/v2/"}
            )
        }
    )
    result = check_provider(away, "primotexto", timeout=0.5)
    assert not result.ok and "RetryableError" in result.detail and result.seconds < 2


def test_postier_health_shows_each_provider_state_without_failing_for_it(
    run_cli: RunCli, redis_test_url: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    upgrade(make_engine(url))
    env = {"POSTIER_DATABASE_URL": url, "POSTIER_REDIS_URL": redis_test_url}
    settings = Settings(_env_file=None, database_url=url, redis_url=redis_test_url)
    client = redis.Redis.from_url(redis_test_url)
    health = ProviderHealth(client, settings)
    try:
        for _ in range(settings.health.min_failures):
            health.record_failure("primotexto", RetryableError("503", provider="primotexto"))

        result = run_cli("health", env=env)

        assert result.exit_code == 0, result.output
        assert "provider primotexto: open until" in result.output
        assert "provider octopush: closed" in result.output
        assert [s.state for s in provider_health(settings, 1.0)] == [
            HealthState.OPEN,
            HealthState.CLOSED,
            HealthState.CLOSED,
        ]
    finally:
        client.delete(*client.keys("postier:health:*"))
        client.close()
