"""Provider balances for the metrics: read from the sandbox over HTTP, kept in Redis."""

from __future__ import annotations

import time
from decimal import Decimal

import redis
from pydantic import SecretStr

from postier.config import Settings
from postier.dispatch.balances import (
    BALANCES_KEY,
    configured_providers,
    refresh_balances,
    stored_balances,
)
from postier.sandbox.app import Sandbox


def test_each_configured_account_is_read_and_stored(
    settings: Settings, sandbox: Sandbox, redis_client: redis.Redis
) -> None:
    sandbox.primotexto.set_credits(1234)
    before = time.time()
    read = refresh_balances(settings, redis_client)
    assert {b.provider: b.unit for b in read} == {
        "afilnet": "credits",
        "primotexto": "credits",
        "octopush": "euro",
    }
    stored = {b.provider: b for b in stored_balances(redis_client)}
    assert stored["primotexto"].amount == Decimal(1234)
    assert stored["octopush"].amount > 0 and stored["afilnet"].amount > 0
    assert all(before <= b.read_at <= time.time() for b in stored.values())
    sandbox.primotexto.set_credits(17)
    refresh_balances(settings, redis_client)
    assert {b.provider: b.amount for b in stored_balances(redis_client)}["primotexto"] == 17


def test_an_account_without_credentials_is_not_read(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keyless = settings.model_copy(
        update={"primotexto": settings.primotexto.model_copy(update={"api_key": SecretStr("")})}
    )
    assert "primotexto" not in configured_providers(keyless)
    read = refresh_balances(keyless, redis_client)
    assert {b.provider for b in read} == {"afilnet", "octopush"}
    assert "primotexto" not in {b.provider for b in stored_balances(redis_client)}


def test_a_failed_reading_keeps_the_previous_one(
    settings: Settings, redis_client: redis.Redis
) -> None:
    refresh_balances(settings, redis_client)
    (first,) = [b for b in stored_balances(redis_client) if b.provider == "octopush"]
    wrong = settings.model_copy(
        update={"octopush": settings.octopush.model_copy(update={"api_key": SecretStr("nope")})}
    )
    read = refresh_balances(wrong, redis_client)
    assert "octopush" not in {b.provider for b in read}
    (kept,) = [b for b in stored_balances(redis_client) if b.provider == "octopush"]
    assert kept == first


def test_unreadable_entries_are_ignored(redis_client: redis.Redis) -> None:
    redis_client.hset(
        BALANCES_KEY,
        mapping={"afilnet": "credits 12.5 1700000000.000", "octopush": "garbage", "x": "a b c"},
    )
    (only,) = stored_balances(redis_client)
    assert (only.provider, only.unit, only.amount, only.read_at) == (
        "afilnet",
        "credits",
        Decimal("12.5"),
        1_700_000_000.0,
    )


def test_beat_runs_the_pass_at_its_interval_and_not_at_zero() -> None:
    from postier import tasknames
    from postier.celery_app import create_celery_app
    from postier.config import DispatchSettings, MetricsSettings
    from scheduler.schedule import beat_schedule

    entries = beat_schedule(DispatchSettings(), metrics=MetricsSettings(balance_interval=600))
    entry = entries["refresh-provider-balances"]
    assert (entry["task"], entry["schedule"]) == (tasknames.REFRESH_PROVIDER_BALANCES, 600)
    assert entry["options"]["queue"] == tasknames.QUEUE_SCHEDULED
    off = beat_schedule(DispatchSettings(), metrics=MetricsSettings(balance_interval=0))
    assert "refresh-provider-balances" not in off
    assert MetricsSettings().balance_interval == 900
    app = create_celery_app(Settings(_env_file=None), main="routes")
    route = app.amqp.router.route({}, tasknames.REFRESH_PROVIDER_BALANCES)
    assert route["queue"].name == tasknames.QUEUE_SCHEDULED
