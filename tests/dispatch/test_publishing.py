"""``Publisher``: a real Celery app on the test Redis; the queue is read back, no worker runs."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from hypothesis import given
from hypothesis import strategies as st

from postier import tasknames
from postier.celery_app import create_celery_app
from postier.config import Settings
from postier.dispatch.polling import republish_unpublished
from postier.dispatch.publishing import (
    MAX_BULK_CHUNK,
    MAX_CHUNK,
    RELEASE_TASKS,
    SINGLE_TASK_LIMIT,
    Publisher,
    plan_tasks,
)
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import Channel, Lane, MessageKind, MessageStatus
from postier.ledger.queries import insert_messages
from tests.dispatch.conftest import Ledger, ago, queued_tasks

S = MessageStatus


def test_publish_queues_one_send_task_per_id_in_order_and_stamps_published_at(
    publisher: Publisher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    ids = [ledger.add_sms(f"061234570{n}") for n in range(3)]

    assert publisher.publish(ids) == 3

    tasks = queued_tasks(redis_client)
    assert [(t.name, t.args) for t in tasks] == [(tasknames.SEND_MESSAGE, [i]) for i in ids]
    for message_id in ids:
        assert ledger.get(message_id).published_at is not None


def test_only_the_message_id_crosses_the_broker(
    publisher: Publisher, ledger: Ledger, redis_client: redis.Redis, dispatch_settings: Settings
) -> None:
    message_id = ledger.add_sms("06 12 34 57 10", "Votre code secret : 987654")

    publisher.publish([message_id])

    (task,) = queued_tasks(redis_client)
    assert task.args == [message_id]
    for private in (
        b"612345710",
        b"987654",
        dispatch_settings.primotexto.api_key.get_secret_value().encode(),
        dispatch_settings.octopush.api_key.get_secret_value().encode(),
    ):
        assert private not in task.raw


def test_published_at_is_stamped_on_queued_rows_only(
    publisher: Publisher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    queued = ledger.add_sms("0612345711")
    cancelled = ledger.add_sms("0612345712")
    ledger.force(cancelled, status=S.CANCELLED)

    # both reach the broker; the worker's claim ignores the cancelled one
    assert publisher.publish([queued, cancelled]) == 2

    assert ledger.get(queued).published_at is not None
    assert ledger.get(cancelled).published_at is None
    assert len(queued_tasks(redis_client)) == 2


def test_publishing_no_id_queues_nothing(publisher: Publisher, redis_client: redis.Redis) -> None:
    assert publisher.publish([]) == 0
    assert queued_tasks(redis_client) == []


@pytest.fixture
def dead_broker_app(dispatch_settings: Settings) -> Iterator[Celery]:
    """A Celery app whose broker is a closed port of this machine."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    app = create_celery_app(
        dispatch_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/15"}),
        main="dead-broker",
    )
    yield app
    app.close()


def test_broker_down_publishes_nothing_and_beat_republishes_later(
    dead_broker_app: Celery,
    publisher: Publisher,
    dispatcher: Dispatcher,
    ledger: Ledger,
    redis_client: redis.Redis,
) -> None:
    ids = [ledger.add_sms("0612345713"), ledger.add_sms("0612345714")]

    assert Publisher(dead_broker_app, ledger.engine).publish(ids) == 0

    for message_id in ids:
        assert ledger.get(message_id).published_at is None
        assert ledger.status(message_id) == S.QUEUED
    # once republish_after (60 s) has passed, beat finds them and publishes them
    for message_id in ids:
        ledger.force(message_id, updated_at=ago(120))
    assert republish_unpublished(dispatcher, publisher) == 2
    assert sorted(t.args[0] for t in queued_tasks(redis_client)) == sorted(ids)


def test_a_large_publish_goes_out_in_chunks_holding_every_id_once_in_order(
    publisher: Publisher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    count = 3 * SINGLE_TASK_LIMIT + 5
    with session_scope(ledger.engine) as session:
        ids = insert_messages(
            session,
            [
                {
                    "channel": Channel.SMS,
                    "kind": MessageKind.SMS,
                    "provider": "primotexto",
                    "recipient": f"+336123{n:05d}",
                    "body": "Soldes",
                }
                for n in range(count)
            ],
        )

    assert publisher.publish(ids) == count

    tasks = queued_tasks(redis_client)
    assert SINGLE_TASK_LIMIT <= len(tasks) < count
    # a chunk of one goes out as an ordinary send_message task
    chunks = [t.args[0] if t.name == tasknames.SEND_MESSAGES else t.args for t in tasks]
    assert all(1 <= len(chunk) <= MAX_CHUNK for chunk in chunks)
    assert [i for chunk in chunks for i in chunk] == ids
    assert tasks[0].name == tasknames.SEND_MESSAGES
    assert all(ledger.get(i).published_at is not None for i in (ids[0], ids[-1]))


def test_a_large_bulk_publish_goes_out_in_chunks_of_at_most_the_bulk_size(
    publisher: Publisher, redis_client: redis.Redis
) -> None:
    """A bulk chunk's argsrepr (what Flower shows) names its ends and its size, not the ids."""
    # past RELEASE_TASKS full chunks (smaller sends are spread over that many tasks)
    ids = [f"{n:032x}" for n in range(RELEASE_TASKS * MAX_BULK_CHUNK + 7)]  # none stored

    assert publisher.publish(ids, lane=Lane.BULK, stamped=True) == len(ids)

    tasks = queued_tasks(redis_client, tasknames.QUEUE_BULK)
    assert {t.name for t in tasks} == {tasknames.SEND_MESSAGES}
    chunks = [t.args[0] for t in tasks]
    assert [len(chunk) for chunk in chunks] == [MAX_BULK_CHUNK] * RELEASE_TASKS + [7]
    assert [i for chunk in chunks for i in chunk] == ids
    shown = json.loads(tasks[0].raw)["headers"]["argsrepr"]
    assert shown == f"[['{ids[0]}', … {MAX_BULK_CHUNK} ids … '{ids[MAX_BULK_CHUNK - 1]}']]"


def test_up_to_the_single_task_limit_each_id_is_its_own_task(
    publisher: Publisher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    ids = [f"{n:032x}" for n in range(SINGLE_TASK_LIMIT)]  # not stored: nothing to stamp

    assert publisher.publish(ids) == SINGLE_TASK_LIMIT

    tasks = queued_tasks(redis_client)
    assert [(t.name, t.args) for t in tasks] == [(tasknames.SEND_MESSAGE, [i]) for i in ids]


@given(count=st.integers(min_value=0, max_value=20_000))
def test_plan_tasks_keeps_every_id_once_in_order_in_enough_small_chunks(count: int) -> None:
    ids = [str(n) for n in range(count)]

    chunks = plan_tasks(ids)

    assert [i for chunk in chunks for i in chunk] == ids
    assert all(1 <= len(chunk) <= MAX_CHUNK for chunk in chunks)
    # enough tasks to keep every worker thread busy, as the docstring promises
    assert len(chunks) >= min(count, SINGLE_TASK_LIMIT)


def test_a_producer_stamps_published_at_and_clears_it_when_the_broker_is_down(
    dead_broker_app: Celery,
    celery_app: Celery,
    dispatch_settings: Settings,
    ledger: Ledger,
    redis_client: redis.Redis,
) -> None:
    """Rows are stored already stamped (no UPDATE after the publish); an id the broker did not
    take has its stamp cleared, so beat's republish pass finds it at once."""
    from producers.messages import Producer

    down = Producer(dispatch_settings, engine=ledger.engine, celery_app=dead_broker_app)
    lost = down.send_sms("0612345720", "Votre code : 1").id
    assert ledger.get(lost).published_at is None
    assert ledger.status(lost) == S.QUEUED

    up = Producer(dispatch_settings, engine=ledger.engine, celery_app=celery_app)
    sent = up.send_sms("0612345721", "Votre code : 2").id
    assert ledger.get(sent).published_at is not None
    assert [t.args for t in queued_tasks(redis_client)] == [[sent]]
