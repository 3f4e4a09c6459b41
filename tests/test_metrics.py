"""Worker metrics: the dispatcher's counters, the scrape-time collectors, the exporter, and the
multiprocess mode a prefork pool uses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.backoff import NoBackoff
from redis.retry import Retry

from postier import metrics
from postier.config import MetricsSettings, Settings
from postier.dispatch.health import ProviderHealth
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import MessageStatus, messages_table
from postier.ledger.queries import insert_messages
from postier.providers.errors import AuthenticationError, RetryableError
from tests.ledger.conftest import message_row


def sample(name: str, **labels: str) -> float:
    return metrics.PROCESS_REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_dispatcher_call_sites_count_into_the_process_registry() -> None:
    before = {
        "sent": sample("postier_messages_total", provider="octopush", state="sent"),
        "scheduled": sample("postier_messages_total", provider="octopush", state="scheduled"),
        "retries": sample("postier_send_retries_total", provider="octopush"),
        "deferrals": sample("postier_rate_limit_deferrals_total", provider="octopush"),
        "none": sample("postier_messages_total", provider="none", state="failed"),
        "calls": sample("postier_send_duration_seconds_count", provider="octopush"),
        "waits": sample("postier_rate_limit_wait_seconds_count", provider="octopush"),
    }
    metrics.count_message("octopush", MessageStatus.SENT)
    metrics.count_message("octopush", None)  # the row had moved on: nothing counted
    metrics.count_message(None, "failed")
    metrics.count_retry("octopush")
    metrics.count_deferral("octopush")
    with pytest.raises(RuntimeError), metrics.time_send("octopush"):
        raise RuntimeError("a failed call is timed too")
    with metrics.time_rate_limit("octopush"):
        time.sleep(0.01)
    assert sample("postier_messages_total", provider="octopush", state="sent") == before["sent"] + 1
    # a retry and a deferral both move the message to scheduled
    assert (
        sample("postier_messages_total", provider="octopush", state="scheduled")
        == before["scheduled"] + 2
    )
    assert sample("postier_send_retries_total", provider="octopush") == before["retries"] + 1
    assert (
        sample("postier_rate_limit_deferrals_total", provider="octopush") == before["deferrals"] + 1
    )
    assert sample("postier_messages_total", provider="none", state="failed") == before["none"] + 1
    assert sample("postier_send_duration_seconds_count", provider="octopush") == before["calls"] + 1
    assert (
        sample("postier_rate_limit_wait_seconds_count", provider="octopush") == before["waits"] + 1
    )
    # the 10 ms wait falls in the buckets from 0.01 s up, not below 0.005 s
    assert sample("postier_rate_limit_wait_seconds_bucket", provider="octopush", le="2.5") > (
        sample("postier_rate_limit_wait_seconds_bucket", provider="octopush", le="0.005")
    )


def test_queue_depth_sums_every_priority_list(redis_client: redis.Redis) -> None:
    assert metrics.queue_keys("postier.send") == [
        "postier.send",
        "postier.send\x06\x163",
        "postier.send\x06\x166",
        "postier.send\x06\x169",
    ]
    redis_client.rpush("postier.send", "a", "b")
    redis_client.rpush("postier.send\x06\x169", "c")
    redis_client.rpush("postier.hooks\x06\x163", "d")
    redis_client.hset("unacked", mapping={"tag-1": "x", "tag-2": "y", "tag-3": "z"})
    registry = CollectorRegistry()
    registry.register(metrics.QueueDepthCollector(redis_client))
    get = registry.get_sample_value
    assert get("postier_queue_depth", {"queue": "postier.send"}) == 3
    assert get("postier_queue_depth", {"queue": "postier.scheduled"}) == 0
    assert get("postier_queue_depth", {"queue": "postier.hooks"}) == 1
    assert get("postier_queue_unacked") == 3


def test_queue_depth_is_left_out_when_redis_is_down() -> None:
    registry = CollectorRegistry()
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    registry.register(metrics.QueueDepthCollector(dead))
    assert registry.get_sample_value("postier_queue_depth", {"queue": "postier.send"}) is None


def test_provider_health_is_one_gauge_per_state_read_from_redis(
    redis_client: redis.Redis,
) -> None:
    settings = Settings(_env_file=None)
    health = ProviderHealth(redis_client, settings)
    for _ in range(settings.health.min_failures):
        health.record_failure("primotexto", RetryableError("503", provider="primotexto"))
    registry = CollectorRegistry()
    registry.register(metrics.HealthCollector(redis_client, settings))
    get = registry.get_sample_value
    assert get("postier_provider_health", {"provider": "primotexto", "state": "open"}) == 1
    assert get("postier_provider_health", {"provider": "primotexto", "state": "closed"}) == 0
    assert get("postier_provider_health", {"provider": "octopush", "state": "closed"}) == 1
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    silent = CollectorRegistry()
    silent.register(metrics.HealthCollector(dead, settings))
    assert (
        silent.get_sample_value(
            "postier_provider_health", {"provider": "octopush", "state": "closed"}
        )
        is None
    )


def test_health_changes_and_reroutes_are_counted(redis_client: redis.Redis) -> None:
    opened = sample("postier_provider_health_changes_total", provider="octopush", state="open")
    rerouted = sample("postier_reroutes_total", provider="octopush", fallback="primotexto")
    health = ProviderHealth(redis_client, Settings(_env_file=None))
    health.record_failure("octopush", AuthenticationError("bad key", provider="octopush"))
    metrics.count_reroute("octopush", "primotexto")
    assert (
        sample("postier_provider_health_changes_total", provider="octopush", state="open")
        == opened + 1
    )
    assert (
        sample("postier_reroutes_total", provider="octopush", fallback="primotexto") == rerouted + 1
    )


def test_ledger_counts_by_provider_and_state_are_cached(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    engine = make_engine(url)
    upgrade(engine)
    rows = [message_row(provider="octopush"), message_row(provider="octopush")]
    rows.append(
        message_row(
            provider="primotexto", status=MessageStatus.SCHEDULED, send_at=datetime.now(UTC)
        )
    )
    with session_scope(engine) as session:
        insert_messages(session, rows)
    collector = metrics.LedgerCollector(url, interval=60)
    registry = CollectorRegistry()
    registry.register(collector)
    get = registry.get_sample_value
    assert get("postier_ledger_messages", {"provider": "octopush", "state": "queued"}) == 2
    assert get("postier_ledger_messages", {"provider": "primotexto", "state": "scheduled"}) == 1
    with session_scope(engine) as session:
        insert_messages(session, [message_row(provider="octopush")])
    # within the interval, the cached counts
    assert get("postier_ledger_messages", {"provider": "octopush", "state": "queued"}) == 2
    collector.interval = 0
    assert get("postier_ledger_messages", {"provider": "octopush", "state": "queued"}) == 3
    # final rows are not counted (their totals are postier_messages_total's)
    with session_scope(engine) as session:
        (delivered,) = insert_messages(session, [message_row(provider="octopush")])
    with engine.begin() as connection:
        connection.execute(
            messages_table.update()
            .where(messages_table.c.id == delivered)
            .values(status=MessageStatus.DELIVERED)
        )
    assert get("postier_ledger_messages", {"provider": "octopush", "state": "queued"}) == 3
    assert get("postier_ledger_messages", {"provider": "octopush", "state": "delivered"}) is None
    engine.dispose()
    collector.engine.dispose()


def test_the_oldest_unknown_message_is_a_timestamp_gauge(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    engine = make_engine(url)
    upgrade(engine)
    collector = metrics.LedgerCollector(url, interval=0)
    registry = CollectorRegistry()
    registry.register(collector)
    name = "postier_ledger_oldest_unknown_timestamp_seconds"
    assert registry.get_sample_value(name) is None  # no unknown message: absent
    with session_scope(engine) as session:
        first, second = insert_messages(session, [message_row(), message_row()])
    old, recent = datetime(2026, 3, 2, 8, 0, tzinfo=UTC), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with engine.begin() as connection:
        for message_id, moment in ((first, recent), (second, old)):
            connection.execute(
                messages_table.update()
                .where(messages_table.c.id == message_id)
                .values(status=MessageStatus.UNKNOWN, updated_at=moment)
            )
    assert registry.get_sample_value(name) == old.timestamp()
    # cached like the counts within the interval
    collector.interval = 60
    assert registry.get_sample_value(name) == old.timestamp()
    with engine.begin() as connection:
        connection.execute(
            messages_table.update()
            .where(messages_table.c.id == second)
            .values(status=MessageStatus.SENT)
        )
    assert registry.get_sample_value(name) == old.timestamp()
    collector.interval = 0
    assert registry.get_sample_value(name) == recent.timestamp()
    engine.dispose()
    collector.engine.dispose()


def test_beat_heartbeat_and_balances_are_read_from_redis(redis_client: redis.Redis) -> None:
    from postier.dispatch.balances import BALANCES_KEY
    from postier.dispatch.heartbeat import BeatHeartbeat

    registry = CollectorRegistry()
    registry.register(metrics.BeatCollector(redis_client))
    registry.register(metrics.BalanceCollector(redis_client))
    get = registry.get_sample_value
    assert get("postier_beat_last_publish_timestamp_seconds") is None  # beat never ran
    assert get("postier_provider_balance", {"provider": "octopush", "unit": "euro"}) is None
    BeatHeartbeat(redis_client).beat(now=1_800_000_000.0)
    redis_client.hset(
        BALANCES_KEY,
        mapping={
            "octopush": "euro 42.5 1800000000.000",
            "primotexto": "credits 900 1800000001.000",
        },
    )
    assert get("postier_beat_last_publish_timestamp_seconds") == 1_800_000_000.0
    assert get("postier_provider_balance", {"provider": "octopush", "unit": "euro"}) == 42.5
    assert get("postier_provider_balance", {"provider": "primotexto", "unit": "credits"}) == 900
    assert (
        get("postier_provider_balance_timestamp_seconds", {"provider": "primotexto"})
        == 1_800_000_001.0
    )
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    silent = CollectorRegistry()
    silent.register(metrics.BeatCollector(dead))
    silent.register(metrics.BalanceCollector(dead))
    assert list(silent.collect()) == []


def test_finished_tasks_are_counted_by_the_queue_they_came_from() -> None:
    class Request:
        def __init__(self, info: object) -> None:
            self.delivery_info = info

    class Task:
        name = "postier.send_message"

        def __init__(self, info: object) -> None:
            self.request = Request(info)

    before = sample("postier_queue_consumed_total", queue="postier.send")
    metrics._on_task_postrun(task=Task({"routing_key": "postier.send"}), state="SUCCESS")
    metrics._on_task_postrun(task=Task({"routing_key": "postier.send"}), state="FAILURE")
    metrics._on_task_postrun(task=Task(None), state="SUCCESS")  # run eagerly: no queue
    assert sample("postier_queue_consumed_total", queue="postier.send") == before + 2
    assert metrics.task_queue(Task({})) is None


def test_the_exporter_serves_metrics_and_stops(redis_test_url: str, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        redis_url=redis_test_url,
        database_url=f"sqlite:///{tmp_path}/none.db",
        metrics=MetricsSettings(port=0, ledger_interval=0),
    )
    exporter = metrics.start_exporter(settings)
    assert exporter is not None
    try:
        metrics.count_message("afilnet", "sent")
        body = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).text
        assert 'postier_messages_total{provider="afilnet",state="sent"}' in body
        assert 'postier_queue_depth{queue="postier.send"}' in body
        assert "postier_ledger_messages" not in body  # ledger_interval = 0 turns it off
        # a second worker on the same port: logged, not raised, and nothing left registered
        taken = settings.model_copy(
            update={"metrics": MetricsSettings(port=exporter.port, ledger_interval=0)}
        )
        assert metrics.start_exporter(taken) is None
    finally:
        exporter.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=2)
    disabled = settings.model_copy(update={"metrics": MetricsSettings(enabled=False)})
    assert metrics.start_exporter(disabled) is None


def test_prefork_pools_are_detected() -> None:
    assert metrics._is_prefork("prefork")
    assert not metrics._is_prefork("threads")
    assert not metrics._is_prefork("solo")


def test_multiprocess_mode_adds_up_the_forked_children(redis_test_url: str, tmp_path: Path) -> None:
    """What a prefork worker does, in a fresh interpreter (the mode is process-wide): switch
    before forking, count in children, scrape the sum from the parent's exporter."""
    script = textwrap.dedent(
        f"""
        import multiprocessing, httpx
        from postier import metrics
        from postier.config import MetricsSettings, Settings

        settings = Settings(
            _env_file=None,
            redis_url={redis_test_url!r},
            metrics=MetricsSettings(port=0, ledger_interval=0, multiprocess_dir={str(tmp_path)!r}),
        )
        exporter = metrics.start_exporter(settings, multiprocess=True)

        def child(n):
            for _ in range(n):
                metrics.count_message("octopush", "sent")
            metrics.get_metrics().tasks.labels("postier.send_message", "SUCCESS").inc()

        context = multiprocessing.get_context("fork")
        children = [context.Process(target=child, args=(n,)) for n in (2, 3)]
        for process in children:
            process.start()
        for process in children:
            process.join()
        body = httpx.get(f"http://127.0.0.1:{{exporter.port}}/metrics").text
        print([l for l in body.splitlines() if l.startswith("postier_")])
        exporter.stop()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout
    assert 'postier_messages_total{provider="octopush",state="sent"} 5.0' in lines
    assert 'postier_tasks_total{state="SUCCESS",task="postier.send_message"} 2.0' in lines
    assert "postier_queue_depth" in lines
    assert list(tmp_path.glob("counter_*.db")), "the children wrote their own files"
