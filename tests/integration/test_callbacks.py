"""Status callbacks end to end: a real worker of each role, real Redis, beat, the sandbox, and
real HTTP receivers in this process that fail, hang, then answer.

The stack here is the module's own (its settings name the receivers), started like
``postier up`` with the callbacks worker beside the send workers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from postier.callbacks import verify
from postier.config import CallbackSettings, Settings
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import CallbackEvent, DeliveryEvent, MessageStatus
from postier.sandbox import Sandbox, SandboxServer
from postier.stack import CALLBACK_WORKER, Stack, StackOptions
from producers.messages import Producer
from tests.callback_hooks import HOOK_FILE_VARIABLE
from tests.callback_receiver import HANG, Receiver, running_receiver
from tests.integration.conftest import integration_settings, wait_until

SECRET = "integration-callback-secret-1"
#: the receiver's answers to each event: a failure, a hang past the timeout, then success
SCRIPT: list[int | str] = [500, HANG, 200]
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver(script=SCRIPT) as found:
        yield found


@pytest.fixture(scope="module")
def hook_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("hook") / "events.jsonl"
    path.touch()
    os.environ[HOOK_FILE_VARIABLE] = str(path)
    yield path
    del os.environ[HOOK_FILE_VARIABLE]


@pytest.fixture(scope="module")
def callback_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(delivery_delay=0.3, seed=99)) as server:
        yield server


@pytest.fixture(scope="module")
def callback_stack(
    receiver: Receiver,
    hook_file: Path,
    callback_sandbox: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("callback-stack")
    settings: Settings = integration_settings().model_copy(
        update={
            "callbacks": CallbackSettings(
                target=receiver.url,
                inbound_target="tests.callback_hooks:record_event",
                secret=SecretStr(SECRET),
                timeout=TIMEOUT,
                connect_timeout=1.0,
                backoff_base=0.3,
                backoff_max=1.0,
                pass_interval=0.2,
                republish_after=10.0,
            )
        }
    )
    options = StackOptions(
        workdir=workdir,
        private_redis=True,
        sandbox_url=callback_sandbox.url,
        flower=False,
        worker_concurrency=4,
        callback_worker_concurrency=4,
        settings=settings,
        log_level="info",
    )
    with Stack(options) as running:
        if not running.wait_for_worker(timeout=60):
            raise RuntimeError(f"the workers did not answer; see {workdir}/*.log")
        assert CALLBACK_WORKER in running.processes
        yield running


@pytest.fixture(scope="module")
def callback_ledger(callback_stack: Stack) -> Engine:
    return make_engine(callback_stack.database_url)


@pytest.fixture(scope="module")
def producer(callback_stack: Stack) -> Producer:
    return Producer(callback_stack.settings)


def events_of(ledger: Engine, message_id: str) -> list[CallbackEvent]:
    with session_scope(ledger) as session:
        rows = list(
            session.execute(
                select(CallbackEvent).where(CallbackEvent.message_id == message_id)  # type: ignore[arg-type]
            ).scalars()
        )
        for row in rows:
            session.expunge(row)
    return sorted(rows, key=lambda row: row.sequence or 0)


def test_each_status_event_is_acknowledged_once_after_a_500_and_a_timeout(
    callback_stack: Stack, callback_ledger: Engine, producer: Producer, receiver: Receiver
) -> None:
    handle = producer.send_sms("0612345678", "Votre code : 482913", idempotency_key="cb-1")
    wait_until(
        lambda: (
            [e.status for e in events_of(callback_ledger, handle.id) if e.delivered_at]
            == [MessageStatus.SENT, MessageStatus.DELIVERED]
        ),
        "both status events acknowledged",
        timeout=60,
    )
    events = events_of(callback_ledger, handle.id)
    assert [e.sequence for e in events] == [1, 2]
    for event in events:
        requests = receiver.requests_of(event.event_id)
        assert [r.answer for r in requests] == SCRIPT  # exactly once acknowledged, after both
        for request in requests:
            body = verify(request.body, request.headers, [SECRET])
            assert body["message_id"] == handle.id and body["idempotency_key"] == "cb-1"
            assert body["status"] == str(event.status)
        # the attempt log on the row: the 500, the timeout, the 200
        log = event.attempt_log
        assert [entry.get("status_code") for entry in log] == [500, None, 200]
        assert log[1]["error"].startswith("timeout")
        assert log[1]["duration_ms"] >= TIMEOUT * 1000 * 0.9
        assert event.attempts == 3 and event.given_up_at is None
    # nothing else came for this message, and nothing more comes
    ours = {e.event_id for e in events}
    assert {r.headers["Postier-Event-Id"] for r in receiver.received} >= ours
    acknowledged = [r for r in receiver.acknowledged() if r.headers["Postier-Event-Id"] in ours]
    assert len(acknowledged) == 2


def test_a_hanging_receiver_does_not_delay_a_send(
    callback_stack: Stack, callback_ledger: Engine, producer: Producer
) -> None:
    with running_receiver(default=HANG) as hanging:
        # enough events to hold every callbacks thread on the hanging receiver
        for n in range(6):
            producer.send_sms("0612345600", f"Rappel {n}", callback_url=hanging.url)
        wait_until(lambda: len(hanging.received) >= 4, "the callback threads are hanging")
        started = time.time()
        handle = producer.send_sms("0612345699", "Votre code : 100200")

        def sent_at() -> datetime | None:
            with session_scope(callback_ledger) as session:
                return session.execute(
                    select(DeliveryEvent.at).where(
                        DeliveryEvent.message_id == handle.id,  # type: ignore[arg-type]
                        DeliveryEvent.to_status == MessageStatus.SENT,  # type: ignore[arg-type]
                    )
                ).scalar_one_or_none()

        wait_until(lambda: sent_at() is not None, "the code was sent", timeout=15)
        moment = sent_at()
        assert moment is not None
        sent = moment.timestamp()
        # while it was sent, a callback request was still held by the receiver
        hanging_then = [r for r in hanging.received if r.at <= sent < r.at + TIMEOUT]
        assert hanging_then, "no callback request was hanging while the code was sent"
        assert sent - started < TIMEOUT
        assert hanging.acknowledged() == []


def test_inbound_messages_reach_a_module_function_target(
    callback_stack: Stack,
    callback_sandbox: SandboxServer,
    callback_ledger: Engine,
    hook_file: Path,
) -> None:
    from postier.sandbox.afilnet.whatsapp import inject_inbound

    inject_inbound(callback_sandbox.sandbox.afilnet.state, "100", "33612345677", "Oui, merci")

    def hooked() -> list[dict[str, object]]:
        lines = hook_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    wait_until(lambda: len(hooked()) == 1, "the inbound event reached the function", timeout=30)
    (event,) = hooked()
    assert (event["type"], event["sender"], event["text"]) == (
        "message.inbound",
        "+33612345677",
        "Oui, merci",
    )
    with session_scope(callback_ledger) as session:
        row = session.execute(
            select(CallbackEvent).where(CallbackEvent.event_id == event["event_id"])  # type: ignore[arg-type]
        ).scalar_one()
        assert row.delivered_at is not None and row.attempts == 1
        # written by the worker's poll, published by its after-commit notifier (not by beat)
        assert row.published_at == row.created_at
