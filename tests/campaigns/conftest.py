"""Campaign fixtures: a fresh SQLite ledger per test, the sandbox over HTTP, the test Redis.

Tasks are published for real (Celery app on Redis database 15) and run in this process by
``Drain``, which pops them from the queue as a worker would and calls the same functions the
worker's tasks call. Beat's passes are called directly (``lifecycle.tick``), on a clock the
test moves.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.campaigns import batch, fanout
from postier.campaigns.context import CampaignContext
from postier.campaigns.lifecycle import CampaignReport, report
from postier.campaigns.quiet_hours import QuietHours
from postier.campaigns.rows import LedgerRowFactory
from postier.campaigns.tasks import CampaignTasks
from postier.celery_app import create_celery_app
from postier.config import CampaignSettings, DispatchSettings, Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import make_engine, upgrade
from postier.redis_server import RedisHandle, start_private_redis
from producers.campaigns import CampaignProducer
from producers.messages import Producer

#: an ordinary Tuesday morning in Paris: marketing is allowed (10:00 CET)
TUESDAY_10H = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)

SMALL_CAMPAIGNS = CampaignSettings(chunk_size=50, batch_size=500, republish_after=30.0)
SMALL_DISPATCH = DispatchSettings(
    max_attempts=3, backoff_base=0.2, backoff_max=1.0, rate_limit_max_block=0.2, stuck_after=60.0
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    ledger = make_engine(f"sqlite:///{tmp_path}/campaigns.db")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


@pytest.fixture(scope="session")
def campaign_redis() -> Iterator[RedisHandle]:
    """A Redis of these tests only: other test runs on the machine flush the shared test
    database, which would drop the tasks ``Drain`` is about to run."""
    with start_private_redis() as handle:
        yield handle


@pytest.fixture
def redis_client(campaign_redis: RedisHandle) -> Iterator[redis.Redis]:
    """A client on the private Redis, emptied before and after the test."""
    client = redis.Redis.from_url(campaign_redis.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_test_url(campaign_redis: RedisHandle) -> str:
    return campaign_redis.url


@pytest.fixture
def campaign_settings(settings: Settings, redis_test_url: str) -> Settings:
    """Sandbox providers, the private Redis, chunks of 50."""
    return settings.model_copy(
        update={
            "redis_url": redis_test_url,
            "campaigns": SMALL_CAMPAIGNS,
            "dispatch": SMALL_DISPATCH,
        }
    )


@pytest.fixture
def celery_app(campaign_settings: Settings, redis_client: redis.Redis) -> Iterator[Celery]:
    app = create_celery_app(campaign_settings, main="campaign-tests")
    yield app
    app.close()


@pytest.fixture
def clients(campaign_settings: Settings) -> Iterator[ProviderClients]:
    built = ProviderClients(campaign_settings)
    yield built
    built.close()


@dataclass
class Clock:
    """The time the campaign rules are applied at: the wall clock until a test sets it."""

    now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


def allowed_morning(after: datetime | None = None) -> datetime:
    """10:00 Paris on the first day after ``after`` (default: now) when marketing may go."""
    start = (after or datetime.now(UTC)) + timedelta(days=1)
    return QuietHours().next_allowed(start.replace(hour=23)) + timedelta(hours=2)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(
    campaign_settings: Settings,
    engine: Engine,
    clients: ProviderClients,
    celery_app: Celery,
    clock: Clock,
) -> CampaignContext:
    producer = Producer(campaign_settings, engine=engine, celery_app=celery_app)
    return CampaignContext(
        settings=campaign_settings,
        engine=engine,
        clients=clients,
        factory=LedgerRowFactory(producer.rows),
        publisher=Publisher(celery_app, engine),
        tasks=CampaignTasks(celery_app),
        limiter=None,
        clock=clock,
    )


@pytest.fixture
def campaigns(campaign_settings: Settings, engine: Engine, celery_app: Celery) -> CampaignProducer:
    return CampaignProducer(campaign_settings, engine=engine, celery_app=celery_app)


@dataclass
class Drain:
    """Runs the tasks waiting in the send queues (both lanes), in this process, until none is
    left; the bulk lane, where campaigns go, is drained first."""

    ctx: CampaignContext
    client: redis.Redis
    dispatcher: Dispatcher
    #: every task run, with its arguments (what crossed the broker)
    seen: list[tuple[str, list[Any]]] = field(default_factory=list)

    def pending(self) -> list[tuple[str, list[Any]]]:
        tasks = []
        raws = [
            raw
            for queue in (tasknames.QUEUE_BULK, tasknames.QUEUE_SEND)
            for raw in reversed(self.client.lrange(queue, 0, -1))
        ]
        for raw in raws:
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            tasks.append((message["headers"]["task"], args))
        return tasks

    def run(
        self, *, only: Callable[[str], bool] = lambda name: True, max_tasks: int = 100_000
    ) -> Counter[str]:
        """Pop and run tasks until the queue is empty or ``max_tasks`` ran; tasks ``only``
        refuses are popped and dropped (a worker that lost them). Counts by name."""
        ran: Counter[str] = Counter()
        while sum(ran.values()) < max_tasks:
            raw = self.client.rpop(tasknames.QUEUE_BULK) or self.client.rpop(tasknames.QUEUE_SEND)
            if raw is None:
                break
            assert isinstance(raw, bytes | str)
            message = json.loads(raw)
            name = message["headers"]["task"]
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            self.seen.append((name, args))
            if not only(name):
                continue
            ran[name] += 1
            self._run(name, args)
        return ran

    def _run(self, name: str, args: list[Any]) -> None:
        if name == tasknames.PLAN_CAMPAIGN:
            fanout.plan_campaign(self.ctx, *args)
        elif name == tasknames.FAN_OUT_CAMPAIGN_CHUNK:
            fanout.fan_out_chunk(self.ctx, *args)
        elif name == tasknames.SEND_CAMPAIGN_BATCH:
            batch.send_campaign_batch(self.ctx, *args)
        elif name == tasknames.SEND_MESSAGE:
            self._send([args[0]])
        elif name == tasknames.SEND_MESSAGES:
            self._send(args[0])
        else:
            raise AssertionError(f"unexpected task {name}")

    def _send(self, ids: list[str]) -> None:
        for message_id in ids:
            outcome = self.dispatcher.send(message_id)
            if outcome.republish:
                self.ctx.publisher.publish([message_id])


@pytest.fixture
def drain(ctx: CampaignContext, redis_client: redis.Redis, clients: ProviderClients) -> Drain:
    dispatcher = Dispatcher(ctx.settings, ctx.engine, clients, None, rng=lambda: 1.0)
    return Drain(ctx, redis_client, dispatcher)


@pytest.fixture
def status(engine: Engine) -> Callable[[str], CampaignReport]:
    def read(campaign_id: str) -> CampaignReport:
        found = report(engine, campaign_id, rejections=1000)
        assert found is not None
        return found

    return read


def numbers(count: int, start: int = 0) -> list[str]:
    """``count`` distinct valid French mobile numbers in national form."""
    return [f"0612{n:06d}" for n in range(start, start + count)]
