"""End to end: producers → Redis → a real Celery worker → the sandbox over HTTP → the ledger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage, MessageStatus
from postier.ledger.queries import events_for, get_message
from postier.sandbox import Sandbox
from producers.messages import Producer
from tests.integration.conftest import Settle, WaitFor, wait_until

pytestmark = pytest.mark.integration

DONE = (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED)


def sandbox_sends(sandbox: Sandbox, provider: str | None = None) -> list[dict[str, object]]:
    return sandbox.records(provider)


def test_every_producer_call_reaches_delivered(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    handles = {
        "sms primotexto": producer.send_sms("0612345601", "Votre code : 1234"),
        "sms octopush": producer.send_sms(
            "0612345602", "Votre colis est parti", provider="octopush"
        ),
        "sms afilnet": producer.send_sms("0612345603", "Bonjour", provider="afilnet"),
        "whatsapp text": producer.send_whatsapp("+33612345604", "Bonjour 👋"),
        "whatsapp template": producer.send_whatsapp_template(
            "+33612345606", "1", params={"name": "Jeanne", "orderid": "42"}
        ),
    }
    # a file goes into an open chat only (Afilnet WhatsApp API docs: sendfile answers CHAT_NOT_FOUND
    # otherwise)
    wait_for(handles["whatsapp text"].id, MessageStatus.SENT, MessageStatus.DELIVERED)
    handles["whatsapp file"] = producer.send_whatsapp_file(
        "+33612345604", "https://example.com/facture.pdf", caption="Votre facture"
    )
    for what, handle in handles.items():
        status = wait_for(handle.id, *DONE)
        assert status == MessageStatus.DELIVERED, what
    with session_scope(ledger) as session:
        for handle in handles.values():
            trail = [e.to_status for e in events_for(session, handle.id)]
            assert trail[-3:] == [
                MessageStatus.SENDING,
                MessageStatus.SENT,
                MessageStatus.DELIVERED,
            ]
    recipients = sorted(str(r["recipient"]) for r in sandbox_sends(live_sandbox))
    assert len(recipients) == len(handles)


def test_same_idempotency_key_sends_once(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, settle: Settle
) -> None:
    first = producer.send_sms("0612345610", "Une seule fois", idempotency_key="order-77")
    second = producer.send_sms("0612345610", "Une seule fois", idempotency_key="order-77")
    assert second.id == first.id and second.duplicate
    wait_for(first.id, MessageStatus.SENT, MessageStatus.DELIVERED)
    settle()  # every task published so far has run
    assert len(sandbox_sends(live_sandbox)) == 1


def test_a_task_delivered_twice_sends_once(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, settle: Settle
) -> None:
    live_sandbox.set_faults("primotexto", latency=0.3)
    handle = producer.send_sms("0612345611", "Doublon de tache")
    producer.publisher.publish([handle.id, handle.id, handle.id])
    wait_for(handle.id, MessageStatus.SENT, MessageStatus.DELIVERED)
    settle()  # the two other deliveries of the task have run too
    assert len(sandbox_sends(live_sandbox, "primotexto")) == 1


def _retries(ledger: Engine, message_id: str) -> int:
    with session_scope(ledger) as session:
        return sum(
            1
            for e in events_for(session, message_id)
            if e.from_status == MessageStatus.SENDING and e.to_status == MessageStatus.SCHEDULED
        )


def _wait_retries(ledger: Engine, message_id: str, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _retries(ledger, message_id) < count:
        assert time.monotonic() < deadline, f"no retry #{count} of {message_id}"
        time.sleep(0.05)


def test_retry_on_503_and_429_then_success(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    # the provider refuses every request (503, then 429) until each retry is seen in the ledger;
    # Retry-After 1 s leaves time to switch faults before the next attempt
    live_sandbox.set_faults("primotexto", rate_503=1.0, retry_after=1.0)
    handle = producer.send_sms("0612345612", "Apres la tempete")
    _wait_retries(ledger, handle.id, 1)
    live_sandbox.set_faults("primotexto", rate_429=1.0, retry_after=1.0)
    _wait_retries(ledger, handle.id, 2)
    live_sandbox.set_faults("primotexto")
    assert wait_for(handle.id, *DONE) == MessageStatus.DELIVERED
    with session_scope(ledger) as session:
        message = get_message(session, handle.id)
        assert message is not None and message.attempts == 3
        events = events_for(session, handle.id)
    assert _retries(ledger, handle.id) == 2
    codes = [e.provider_status for e in events if e.to_status == MessageStatus.SCHEDULED]
    assert codes[-2:] == ["503", "429"]
    assert len(sandbox_sends(live_sandbox, "primotexto")) == 1


def test_permanent_error_fails_without_retry(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    live_sandbox.primotexto.blacklist("unsubscribers").add("+33612345613")
    handle = producer.send_sms("0612345613", "Vous etes desinscrit")
    assert wait_for(handle.id, *DONE) == MessageStatus.FAILED
    with session_scope(ledger) as session:
        message = get_message(session, handle.id)
        assert message is not None
        assert message.attempts == 1
        assert message.last_error and "12" in message.last_error
    assert sandbox_sends(live_sandbox) == []


def test_failover_to_the_fallback_provider(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    live_sandbox.set_faults("primotexto", rate_503=1.0, retry_after=0.05)
    handle = producer.send_sms("0612345614", "Par un autre chemin")
    assert wait_for(handle.id, *DONE, timeout=30) == MessageStatus.DELIVERED
    with session_scope(ledger) as session:
        message = get_message(session, handle.id)
        assert message is not None and message.provider == "octopush"
        details = " ".join(e.detail or "" for e in events_for(session, handle.id))
        assert "failover primotexto -> octopush" in details
    assert [r["provider"] for r in sandbox_sends(live_sandbox)] == ["octopush"]


def test_deferred_send_released_on_time_and_not_before(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=2.5)
    handle = producer.send_sms("0612345615", "Plus tard", send_at=send_at)
    assert handle.status == MessageStatus.SCHEDULED
    # watch until it goes out: before send_at, nothing reaches the provider and the row waits
    polls_before = 0

    def gone_out() -> bool:
        nonlocal polls_before
        early = time.time() < send_at.timestamp() - 0.1
        with session_scope(ledger) as session:
            message = get_message(session, handle.id)
            assert message is not None
            status = message.status
        if early:
            polls_before += 1
            assert status == MessageStatus.SCHEDULED and sandbox_sends(live_sandbox) == []
        return status in (MessageStatus.SENT, MessageStatus.DELIVERED)

    wait_until(gone_out, f"{handle.id} sent", timeout=10)
    assert polls_before > 0
    (record,) = sandbox_sends(live_sandbox)
    accepted = float(str(record["accepted_at"]))
    lateness = accepted - send_at.timestamp()
    assert 0 <= lateness < 1.5


def stored_texts(ledger: Engine, sender: str) -> list[str]:
    with session_scope(ledger) as session:
        rows = session.exec(select(InboundMessage).where(InboundMessage.sender == sender)).all()
        return [row.text for row in rows]


def test_inbound_whatsapp_stored_once(live_sandbox: Sandbox, stack: object, ledger: Engine) -> None:
    from postier.sandbox.afilnet.whatsapp import inject_inbound

    inject_inbound(live_sandbox.afilnet.state, "100", "33612345616", "Oui, merci !")
    deadline = time.monotonic() + 10
    rows: list[InboundMessage] = []
    while time.monotonic() < deadline and not rows:
        with session_scope(ledger) as session:
            rows = list(
                session.exec(
                    select(InboundMessage).where(InboundMessage.sender == "+33612345616")
                ).all()
            )
        time.sleep(0.2)
    assert len(rows) == 1 and rows[0].text == "Oui, merci !"
    # three more polls of the chat: each later message is read by a poll after the one before
    for n in range(3):
        inject_inbound(live_sandbox.afilnet.state, "100", "33612345616", f"Encore {n}")
        wait_until(
            lambda n=n: stored_texts(ledger, "+33612345616").count(f"Encore {n}") == 1,
            f"inbound message {n} stored",
            timeout=10,
        )
    assert stored_texts(ledger, "+33612345616").count("Oui, merci !") == 1
