"""Delivering callback events: attempts over real HTTP, the attempt log, backoff, giving up,
task and function targets, beat's republish pass, and ``callback_url`` on the producers."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from pydantic import SecretStr
from sqlalchemy import Engine, select, update

from postier import tasknames
from postier.callbacks import SignatureMismatch, verify
from postier.config import CallbackSettings, Settings
from postier.dispatch.callbacks import (
    CallbackDelivery,
    Outcome,
    backoff_delay,
    list_events,
    next_attempt_at,
    republish_due_events,
)
from postier.dispatch.producer import Producer
from postier.ledger.db import session_scope
from postier.ledger.models import (
    CallbackEvent,
    InboundMessage,
    MessageStatus,
    callback_events_table,
)
from postier.ledger.queries import insert_messages, record_inbound
from postier.ledger.states import transition
from postier.rules.errors import RuleViolation
from tests.callback_receiver import HANG, Receiver, running_receiver
from tests.dispatch.conftest import queued_tasks

S = MessageStatus
SECRET = "callback-secret-for-tests-01"
#: what every test's hook function got
CALLED: list[dict[str, Any]] = []


def record_event(event: dict[str, Any]) -> None:
    """A ``module:function`` target (``tests.dispatch.test_callbacks:record_event``)."""
    CALLED.append(event)


def failing_hook(event: dict[str, Any]) -> None:
    raise RuntimeError("the application is down")


@pytest.fixture
def callback_settings(dispatch_settings: Settings) -> Settings:
    return dispatch_settings.model_copy(
        update={
            "callbacks": CallbackSettings(
                secret=SecretStr(SECRET),
                timeout=0.5,
                connect_timeout=0.5,
                backoff_base=1.0,
                backoff_max=4.0,
                max_age=60.0,
            )
        }
    )


@pytest.fixture
def delivery(callback_settings: Settings, engine: Engine) -> Iterator[CallbackDelivery]:
    found = CallbackDelivery(callback_settings, engine, rng=random.Random(7))
    yield found
    found.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as found:
        yield found


def sent_event(engine: Engine, target: str, *, key: str = "order-42") -> CallbackEvent:
    """A message moved ``sending → sent`` with ``target`` as its callback URL: its event."""
    row = {
        "channel": "sms",
        "kind": "sms",
        "provider": "octopush",
        "recipient": "+33612345678",
        "body": "code 123456",
        "status": S.QUEUED,
        "idempotency_key": key,
        "callback_url": target,
    }
    with session_scope(engine) as session:
        (message_id,) = insert_messages(session, [row])
        transition(session, message_id, S.QUEUED, S.SENDING)
        transition(session, message_id, S.SENDING, S.SENT, provider_status="OK")
    return only_event(engine)


def only_event(engine: Engine) -> CallbackEvent:
    with session_scope(engine) as session:
        (event,) = session.execute(select(CallbackEvent)).scalars().all()
        session.expunge(event)
    return event


def make_due(engine: Engine, event_id: int | None) -> None:
    table = callback_events_table
    with session_scope(engine) as session:
        session.execute(
            update(table)
            .where(table.c.id == event_id)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# -- backoff ---------------------------------------------------------------------------------
def test_backoff_doubles_with_jitter_within_half_to_full_step_and_caps() -> None:
    settings = CallbackSettings(backoff_base=10.0, backoff_max=3600.0)
    rng = random.Random(1)
    for attempt in range(1, 20):
        step = min(3600.0, 10.0 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = backoff_delay(attempt, settings, rng)
            assert step / 2 <= delay <= step


def test_the_schedule_spans_a_day_then_gives_up() -> None:
    settings = CallbackSettings()  # 10 s doubling, capped at 1 h, for 24 h
    rng = random.Random(3)
    created = now = datetime(2026, 1, 1, tzinfo=UTC)
    attempts = 0
    while True:
        attempts += 1
        due = next_attempt_at(created, attempts, now, settings, rng)
        if due is None:
            break
        assert due > now
        now = due
    assert timedelta(hours=23) <= now - created <= timedelta(hours=24)
    assert 25 <= attempts <= 60  # a few an hour once capped, not thousands


# -- HTTP targets ------------------------------------------------------------------------------
def test_a_200_delivers_a_signed_body_once(
    engine: Engine, delivery: CallbackDelivery, receiver: Receiver
) -> None:
    event = sent_event(engine, receiver.url)
    assert delivery.deliver(int(event.id or 0)) is Outcome.DELIVERED
    (request,) = receiver.received
    body = verify(request.body, request.headers, [SECRET])
    assert body["event_id"] == event.event_id == request.headers["Postier-Event-Id"]
    assert (body["type"], body["status"], body["previous_status"]) == (
        "message.status",
        "sent",
        "sending",
    )
    assert (body["idempotency_key"], body["sequence"], body["provider_status"]) == (
        "order-42",
        1,
        "OK",
    )
    assert "+33612345678" not in request.body.decode()  # no phone number in a status event
    with pytest.raises(SignatureMismatch):
        verify(request.body, request.headers, ["not-the-secret-at-all"])
    done = only_event(engine)
    assert done.delivered_at is not None and done.attempts == 1
    assert done.attempt_log[0]["status_code"] == 200
    # delivered: a second task for the same id does nothing
    assert delivery.deliver(int(event.id or 0)) is Outcome.SKIPPED
    assert len(receiver.received) == 1


def test_a_500_then_a_timeout_then_200_logs_each_attempt(
    engine: Engine, delivery: CallbackDelivery
) -> None:
    with running_receiver(script=[500, HANG, 200]) as receiver:
        event = sent_event(engine, receiver.url)
        event_id = int(event.id or 0)
        assert delivery.deliver(event_id) is Outcome.RETRIED
        retried = only_event(engine)
        assert retried.published_at is None  # beat's pass hands it over once due
        assert retried.next_attempt_at > datetime.now(UTC)
        assert delivery.deliver(event_id) is Outcome.SKIPPED  # not due yet
        make_due(engine, event_id)
        assert delivery.deliver(event_id) is Outcome.RETRIED  # the receiver hangs: timeout
        make_due(engine, event_id)
        assert delivery.deliver(event_id) is Outcome.DELIVERED
        bodies = {r.body for r in receiver.requests_of(event.event_id)}
    assert len(bodies) == 1  # the same body (and event id) on every attempt
    log = only_event(engine).attempt_log
    assert [entry.get("status_code") for entry in log] == [500, None, 200]
    assert log[1]["error"].startswith("timeout")
    assert all(entry["duration_ms"] >= 0 and entry["at"] for entry in log)


def test_past_max_age_it_is_given_up_and_listed(
    engine: Engine, callback_settings: Settings, delivery: CallbackDelivery
) -> None:
    with running_receiver(default=503) as receiver:
        event = sent_event(engine, receiver.url)
        table = callback_events_table
        with session_scope(engine) as session:
            session.execute(
                update(table).values(created_at=datetime.now(UTC) - timedelta(seconds=60))
            )
        assert delivery.deliver(int(event.id or 0)) is Outcome.GIVEN_UP
    given_up = list_events(engine, state="given_up")
    assert [e.event_id for e in given_up] == [event.event_id]
    assert given_up[0].attempt_log[0]["status_code"] == 503
    assert list_events(engine, state="pending") == []


def test_a_url_target_without_a_secret_is_never_sent_unsigned(
    engine: Engine, dispatch_settings: Settings, receiver: Receiver
) -> None:
    unsigned = CallbackDelivery(dispatch_settings, engine)
    try:
        event = sent_event(engine, receiver.url)
        assert unsigned.deliver(int(event.id or 0)) is Outcome.RETRIED
    finally:
        unsigned.close()
    assert receiver.received == []
    assert "no callbacks.secret" in only_event(engine).attempt_log[0]["error"]


def test_a_redirect_is_not_followed(engine: Engine, delivery: CallbackDelivery) -> None:
    with running_receiver(default=302) as receiver:
        event = sent_event(engine, receiver.url)
        assert delivery.deliver(int(event.id or 0)) is Outcome.RETRIED


# -- function and task targets ---------------------------------------------------------------------
def test_a_module_function_target_gets_the_body(engine: Engine, delivery: CallbackDelivery) -> None:
    CALLED.clear()
    event = sent_event(engine, "tests.dispatch.test_callbacks:record_event")
    assert delivery.deliver(int(event.id or 0)) is Outcome.DELIVERED
    (body,) = CALLED
    assert (body["event_id"], body["status"]) == (event.event_id, "sent")


def test_a_function_that_raises_is_retried(engine: Engine, delivery: CallbackDelivery) -> None:
    event = sent_event(engine, "tests.dispatch.test_callbacks:failing_hook")
    assert delivery.deliver(int(event.id or 0)) is Outcome.RETRIED
    assert "the application is down" in only_event(engine).attempt_log[0]["error"]


def test_a_task_target_gets_the_inbound_event_without_personal_data(
    engine: Engine,
    callback_settings: Settings,
    celery_app: Celery,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from postier.config import get_settings

    monkeypatch.setenv("POSTIER_CALLBACKS__INBOUND_TARGET", "myapp.tasks.on_inbound")
    get_settings.cache_clear()
    try:
        inbound = InboundMessage(
            provider="octopush", provider_message_id="mo-1", sender="+33698765432", text="STOP"
        )
        with session_scope(engine) as session:
            record_inbound(session, inbound)
    finally:
        monkeypatch.delenv("POSTIER_CALLBACKS__INBOUND_TARGET")
        get_settings.cache_clear()
    deliverer = CallbackDelivery(callback_settings, engine, celery_app)
    try:
        assert deliverer.deliver(int(only_event(engine).id or 0)) is Outcome.DELIVERED
    finally:
        deliverer.close()
    (task,) = queued_tasks(redis_client, "celery")
    assert task.name == "myapp.tasks.on_inbound"
    assert b"+33698765432" not in task.raw and b"STOP" not in task.raw
    message = json.loads(task.raw)
    import base64

    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert kwargs["event"]["inbound_id"] == inbound.id
    assert kwargs["event"]["type"] == "message.inbound"


def test_an_inbound_event_posted_carries_the_sender_and_text(
    engine: Engine,
    delivery: CallbackDelivery,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from postier.config import get_settings

    monkeypatch.setenv("POSTIER_CALLBACKS__TARGET", receiver.url)
    get_settings.cache_clear()
    try:
        with session_scope(engine) as session:
            record_inbound(
                session,
                InboundMessage(
                    provider="afilnet", provider_message_id="w1", sender="+33611", text="Oui"
                ),
            )
    finally:
        monkeypatch.delenv("POSTIER_CALLBACKS__TARGET")
        get_settings.cache_clear()
    assert delivery.deliver(int(only_event(engine).id or 0)) is Outcome.DELIVERED
    body = verify(receiver.received[0].body, receiver.received[0].headers, [SECRET])
    assert (body["type"], body["sender"], body["text"]) == ("message.inbound", "+33611", "Oui")


# -- beat's pass -------------------------------------------------------------------------------
def test_the_pass_publishes_due_unstamped_and_lost_events_only(
    engine: Engine,
    callback_settings: Settings,
    celery_app: Celery,
    redis_client: redis.Redis,
) -> None:
    event = sent_event(engine, "https://app.example/e")  # no notifier here: unstamped
    settings = callback_settings.callbacks
    assert republish_due_events(engine, celery_app, settings) == 1
    (task,) = queued_tasks(redis_client, tasknames.QUEUE_CALLBACKS)
    assert (task.name, task.args) == (tasknames.DELIVER_CALLBACK, [event.id])
    assert republish_due_events(engine, celery_app, settings) == 0  # stamped now
    table = callback_events_table
    with session_scope(engine) as session:  # handed over long ago, never delivered: lost
        session.execute(
            update(table).values(published_at=datetime.now(UTC) - timedelta(seconds=61))
        )
    assert republish_due_events(engine, celery_app, settings) == 1
    with session_scope(engine) as session:  # waiting for its retry: not yet
        session.execute(
            update(table).values(
                published_at=None, next_attempt_at=datetime.now(UTC) + timedelta(seconds=30)
            )
        )
    assert republish_due_events(engine, celery_app, settings) == 0


# -- producers -------------------------------------------------------------------------------------
def test_send_sms_stores_the_callback_url_and_refuses_a_bad_one(
    callback_settings: Settings, engine: Engine, celery_app: Celery, redis_client: redis.Redis
) -> None:
    producer = Producer(callback_settings, engine=engine, celery_app=celery_app)
    handle = producer.send_sms("0612345678", "Bonjour", callback_url="https://app.example/e")
    with session_scope(engine) as session:
        from postier.ledger.queries import get_message

        stored = get_message(session, handle.id)
        assert stored is not None and stored.callback_url == "https://app.example/e"
    with pytest.raises(RuleViolation) as caught:
        producer.send_whatsapp("0612345678", "Bonjour", callback_url="http://app.example/e")
    assert (caught.value.field, caught.value.rule) == ("callback_url", "callback_url.scheme")


# -- the CLI listing ------------------------------------------------------------------------
def test_postier_callbacks_lists_given_up_events_with_their_last_attempt(
    engine: Engine, delivery: CallbackDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from postier.cli import app
    from postier.config import get_settings

    with running_receiver(default=503) as receiver:
        event = sent_event(engine, receiver.url + "?token=app-own-secret")
        table = callback_events_table
        with session_scope(engine) as session:
            session.execute(
                update(table).values(created_at=datetime.now(UTC) - timedelta(seconds=60))
            )
        assert delivery.deliver(int(event.id or 0)) is Outcome.GIVEN_UP
    monkeypatch.setenv("POSTIER_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(app, ["callbacks"], env={"COLUMNS": "200"})
        refused = runner.invoke(app, ["callbacks", "--state", "lost"])
        pending = runner.invoke(app, ["callbacks", "--state", "pending"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    assert event.event_id[:12] in listed.output and "503" in listed.output
    assert "127.0.0.1" in listed.output and "app-own-secret" not in listed.output
    assert refused.exit_code == 2 and "state" in refused.output
    assert pending.exit_code == 0 and event.event_id[:12] not in pending.output


def test_a_short_callbacks_secret_is_refused_by_the_settings() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 16 characters"):
        CallbackSettings(secret=SecretStr("short"))
    assert CallbackSettings(secret=SecretStr("")).secret.get_secret_value() == ""
