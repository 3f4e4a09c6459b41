"""Dispatcher fixtures: a fresh SQLite ledger per test, the sandbox over HTTP, no Celery worker.

The domain functions of ``postier.dispatch`` are called directly. Publishing uses a real
Celery app on the test Redis database (15), whose ``postier.send`` list is read with LLEN.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from celery import Celery
from sqlalchemy import update
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.celery_app import create_celery_app
from postier.config import DispatchSettings, Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.publishing import Publisher
from postier.dispatch.rows import RowBuilder
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import (
    Channel,
    DeliveryEvent,
    Message,
    MessageKind,
    MessageStatus,
    messages_table,
)
from postier.ledger.queries import events_for, get_message, insert_messages
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from producers.messages import Producer, SmsRequest

#: a small retry budget with short delays, so a test walks every attempt in milliseconds
SMALL_DISPATCH = DispatchSettings(
    max_attempts=3,
    backoff_base=0.2,
    backoff_max=1.0,
    rate_limit_max_block=0.2,
    republish_after=60.0,
    poll_delivery_interval=5.0,
    stuck_after=60.0,
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite ledger of this test only."""
    ledger = make_engine(f"sqlite:///{tmp_path}/l.db")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


@pytest.fixture
def dispatch_settings(settings: Settings) -> Settings:
    """The root settings (providers at the sandbox) with the small retry budget."""
    return settings.model_copy(update={"dispatch": SMALL_DISPATCH})


@pytest.fixture
def clients(dispatch_settings: Settings) -> Iterator[ProviderClients]:
    built = ProviderClients(dispatch_settings)
    yield built
    built.close()


@pytest.fixture
def dispatcher(dispatch_settings: Settings, engine: Engine, clients: ProviderClients) -> Dispatcher:
    """A dispatcher without rate limiter; ``rng`` 1.0 makes every backoff its ceiling."""
    return Dispatcher(dispatch_settings, engine, clients, None, rng=lambda: 1.0)


@pytest.fixture
def make_dispatcher(
    engine: Engine,
) -> Iterator[Callable[..., Dispatcher]]:
    """Dispatchers on other settings (a wrong key, another policy), closed after the test."""
    made: list[ProviderClients] = []

    def make(settings: Settings, limiter: Any = None) -> Dispatcher:
        built = ProviderClients(settings)
        made.append(built)
        return Dispatcher(settings, engine, built, limiter, rng=lambda: 1.0)

    yield make
    for built in made:
        built.close()


@pytest.fixture
def celery_app(dispatch_settings: Settings, redis_test_url: str) -> Iterator[Celery]:
    """A real Celery app whose broker is the test Redis database; no worker consumes it."""
    app = create_celery_app(
        dispatch_settings.model_copy(update={"redis_url": redis_test_url}), main="dispatch-tests"
    )
    yield app
    app.close()


@pytest.fixture
def publisher(celery_app: Celery, engine: Engine, redis_client: redis.Redis) -> Publisher:
    """Publishes to the test Redis (flushed by ``redis_client`` before and after the test)."""
    return Publisher(celery_app, engine)


@pytest.fixture
def queue_length(redis_client: redis.Redis) -> Callable[[], int]:
    """How many tasks wait in the send queue (kombu's Redis transport: one list per queue)."""

    def length() -> int:
        return int(redis_client.llen(tasknames.QUEUE_SEND))

    return length


def ago(seconds: float) -> datetime:
    """The wall-clock time ``seconds`` ago, as the ledger stores times."""
    return datetime.now(UTC) - timedelta(seconds=seconds)


@dataclass(frozen=True)
class QueuedTask:
    """One task waiting in a Redis queue, as kombu's Redis transport stores it."""

    name: str
    args: list[Any]
    #: the whole stored message, to check what crosses the broker
    raw: bytes


def queued_tasks(client: redis.Redis, queue: str = tasknames.QUEUE_SEND) -> list[QueuedTask]:
    """The tasks in ``queue``, oldest first (kombu LPUSHes and consumers BRPOP)."""
    tasks = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        message = json.loads(raw)
        assert message["properties"]["body_encoding"] == "base64"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        stored = raw if isinstance(raw, bytes) else raw.encode()
        tasks.append(QueuedTask(message["headers"]["task"], args, stored))
    return tasks


@pytest.fixture
def producer(dispatch_settings: Settings, engine: Engine) -> Producer:
    """Builds rows as application code would (``build_sms``); ``Ledger`` stores them.

    Its own Celery app is never used: nothing is published through it.
    """
    return Producer(dispatch_settings, engine=engine)


#: a past instant when French marketing may go out (a Tuesday, 10:00 Paris): marketing rows
#: built "for" it are queued at once, whatever time the tests run at
WEEKDAY_10AM = datetime(2026, 11, 17, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@dataclass
class Ledger:
    """Test helpers over one engine: store rows built by the producer, read them back."""

    engine: Engine
    producer: Producer

    def add_sms(
        self,
        to: str,
        text: str = "Votre code : 123456",
        *,
        provider: str | None = None,
        category: str = "notification",
        send_at: datetime | None = None,
        **columns: Any,
    ) -> str:
        """An SMS row as ``Producer.send_sms`` stores it (unpublished); extra ``columns``
        override the built row (``attempts``, ``status`` …)."""
        request = SmsRequest(to, text, category=category, provider=provider, send_at=send_at)  # type: ignore[arg-type]
        if send_at is None or send_at > datetime.now(UTC):
            row = self.producer.build_sms(request)
        else:
            # a past instant (WEEKDAY_10AM) is taken as "now" by the rules' send_at window
            row = RowBuilder(self.producer.settings, clock=lambda: send_at).sms(request)
            row["created_at"] = row["updated_at"] = datetime.now(UTC)
        return self.add(row, **columns)

    def add_whatsapp(self, to: str, text: str, **columns: Any) -> str:
        """A WhatsApp text row with the columns ``Producer.send_whatsapp`` stores."""
        row: dict[str, Any] = {
            "channel": Channel.WHATSAPP,
            "kind": MessageKind.WHATSAPP_TEXT,
            "provider": "afilnet",
            "recipient": to,
            "body": text,
            "payload": {"platform_id": SANDBOX_ACCOUNTS.afilnet_platform_id},
            **columns,
        }
        with session_scope(self.engine) as session:
            (message_id,) = insert_messages(session, [row])
        return message_id

    def add(self, row: Message | Mapping[str, Any], **columns: Any) -> str:
        """Store ``row`` (a ``Message`` or its columns) with ``columns`` overriding it."""
        if isinstance(row, Message):
            values = {key: getattr(row, key) for key in messages_table.c.keys()}  # noqa: SIM118 (Columns)
        else:
            values = dict(row)
        values.update(columns)
        with session_scope(self.engine) as session:
            (message_id,) = insert_messages(session, [values])
        return message_id

    def get(self, message_id: str) -> Message:
        with session_scope(self.engine) as session:
            message = get_message(session, message_id)
            assert message is not None
            return message

    def events(self, message_id: str) -> list[DeliveryEvent]:
        with session_scope(self.engine) as session:
            return events_for(session, message_id)

    def force(self, message_id: str, **values: Any) -> None:
        """Set columns directly, bypassing the state machine (test set-up only)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(messages_table).where(messages_table.c.id == message_id).values(**values)
            )

    def status(self, message_id: str) -> MessageStatus:
        return self.get(message_id).status


@pytest.fixture
def ledger(engine: Engine, producer: Producer) -> Ledger:
    return Ledger(engine, producer)
