"""``postier retry --status failed``: many failed messages queued again at once, each once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postier.cli import app
from postier.config import get_settings
from postier.dispatch.producer import default_producer
from postier.dispatch.replaying import REPLAY_DETAIL, ReplayFilter, replay_failed
from postier.ledger.db import make_engine, upgrade
from postier.ledger.models import MessageStatus
from tests.dispatch.conftest import Ledger, queued_tasks

S = MessageStatus


def failed(ledger: Ledger, number: str, provider: str, reason: str, ago: float = 0.0) -> str:
    at = datetime.now(UTC) - timedelta(seconds=ago)
    message_id = ledger.add_sms(number, provider=provider)
    ledger.force(message_id, status=S.FAILED, last_error=reason, updated_at=at, attempts=5)
    return message_id


@pytest.fixture
def outage(ledger: Ledger) -> dict[str, str]:
    """Failed messages of an outage, and others."""
    return {
        "old": failed(ledger, "0612345701", "primotexto", "gave up: 503", ago=7200),
        "p503": failed(ledger, "0612345702", "primotexto", "gave up after 5 attempts: [503]"),
        "o503": failed(ledger, "0612345703", "octopush", "gave up after 5 attempts: [503]"),
        "bad": failed(ledger, "0612345704", "primotexto", "invalid number"),
        "queued": ledger.add_sms("0612345705"),
    }


def test_every_failed_message_matching_is_queued_again_once(
    ledger: Ledger, outage: dict[str, str]
) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    wanted = ReplayFilter(since=since, provider="primotexto", reason="503")

    replay = replay_failed(ledger.engine, wanted)

    assert replay.matched == replay.queued == [outage["p503"]]
    message = ledger.get(outage["p503"])
    assert (message.status, message.attempts, message.published_at) == (S.QUEUED, 0, None)
    assert ledger.events(outage["p503"])[-1].detail == REPLAY_DETAIL
    for other in ("old", "o503", "bad"):
        assert ledger.status(outage[other]) == S.FAILED
    # a second replay finds nothing left to queue
    assert replay_failed(ledger.engine, wanted).matched == []


def test_without_filters_every_failed_message_is_replayed(
    ledger: Ledger, outage: dict[str, str]
) -> None:
    replay = replay_failed(ledger.engine, ReplayFilter())
    assert set(replay.queued) == {outage[k] for k in ("old", "p503", "o503", "bad")}
    assert replay.queued[0] == outage["old"]  # the oldest failure first


def test_the_reason_is_matched_without_case_and_as_text(
    ledger: Ledger, outage: dict[str, str]
) -> None:
    assert replay_failed(ledger.engine, ReplayFilter(reason="INVALID"), dry_run=True).matched == [
        outage["bad"]
    ]
    assert replay_failed(ledger.engine, ReplayFilter(reason="%"), dry_run=True).matched == []


def test_a_dry_run_queues_nothing(ledger: Ledger, outage: dict[str, str]) -> None:
    replay = replay_failed(ledger.engine, ReplayFilter(provider="octopush"), dry_run=True)
    assert (replay.matched, replay.queued) == ([outage["o503"]], [])
    assert ledger.status(outage["o503"]) == S.FAILED


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    tmp_path: Path, redis_test_url: str, redis_client: redis.Redis
) -> Iterator[tuple[Engine, dict[str, str]]]:
    url = f"sqlite:///{tmp_path}/cli.db"
    engine = make_engine(url)
    upgrade(engine)
    env = {"POSTIER_DATABASE_URL": url, "POSTIER_REDIS_URL": redis_test_url}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        default_producer.cache_clear()
        yield engine, env
    get_settings.cache_clear()
    default_producer.cache_clear()
    engine.dispose()


def test_the_command_replays_and_publishes_each_once(
    cli_env: tuple[Engine, dict[str, str]], producer: object, redis_client: redis.Redis
) -> None:
    engine, _ = cli_env
    from producers.messages import Producer

    ledger = Ledger(engine, Producer(get_settings(), engine=engine))
    ids = [failed(ledger, f"06123457{i:02d}", "primotexto", "[503] down") for i in range(3)]
    keep = failed(ledger, "0612345799", "primotexto", "invalid number")
    runner = CliRunner()

    dry = runner.invoke(app, ["retry", "--status", "failed", "--reason", "503", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 failed messages would be queued again (dry run)" in dry.output
    assert queued_tasks(redis_client) == []

    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    args = ["retry", "--status", "failed", "--since", since, "--provider", "primotexto"]
    done = runner.invoke(app, [*args, "--reason", "503"])
    assert done.exit_code == 0, done.output
    assert "3 of 3 failed messages queued again" in done.output
    published = [
        i
        for task in queued_tasks(redis_client)
        for i in (task.args[0] if isinstance(task.args[0], list) else task.args)
    ]
    assert sorted(published) == sorted(ids)
    assert all(ledger.status(i) == S.QUEUED for i in ids)
    assert ledger.status(keep) == S.FAILED

    again = runner.invoke(app, [*args, "--reason", "503"])
    assert "0 of 0 failed messages queued again" in again.output


def test_the_command_wants_an_id_or_the_failed_status(
    cli_env: tuple[Engine, dict[str, str]],
) -> None:
    result = CliRunner().invoke(app, ["retry", "--status", "sent"])
    assert result.exit_code == 2
