"""The webhook receiver over real HTTP: uvicorn in a thread, a fresh SQLite ledger per test.

Receipt bodies come from the sandbox's own Octopush account (what it would push) or are
written in the v1 callback shape (PROVIDERS.md, "Octopush").
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import select

from postier.config import Settings
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import Channel, InboundMessage, MessageKind, MessageStatus
from postier.ledger.queries import claim_for_sending, events_for, get_message, insert_messages
from postier.ledger.states import transition
from postier.providers.base import OutgoingSms
from postier.providers.octopush import OctopushClient
from postier.sandbox import Sandbox
from postier.webhooks import INBOUND_PATH, METRICS_PATH, RECEIPTS_PATH, create_app

S = MessageStatus


class WebhookServer:
    """uvicorn on a free port of 127.0.0.1, serving whichever receiver app a test sets."""

    def __init__(self) -> None:
        self.app: Any = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            self._asgi, interface="asgi3", log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[WebhookServer]:
    """One server for the module; each test gives it a receiver on its own ledger."""
    with WebhookServer() as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    ledger = make_engine(f"sqlite:///{tmp_path}/l.db")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


@pytest.fixture
def webhook(
    webhook_server: WebhookServer, settings: Settings, engine: Engine
) -> Iterator[httpx.Client]:
    """An HTTP client on the receiver (``create_app``) of this test's ledger."""
    webhook_server.app = create_app(settings, engine)
    with httpx.Client(base_url=webhook_server.url, timeout=5.0) as client:
        yield client
    webhook_server.app = None


def sent_octopush_row(engine: Engine, number: str, ticket: str) -> str:
    """An Octopush message the worker sent: ``sent`` with the request's ticket."""
    with session_scope(engine) as session:
        (message_id,) = insert_messages(
            session,
            [
                {
                    "channel": Channel.SMS,
                    "kind": MessageKind.SMS,
                    "provider": "octopush",
                    "recipient": number,
                    "body": "Votre code : 123456",
                }
            ],
        )
        assert claim_for_sending(session, message_id) is not None
        assert transition(session, message_id, S.SENDING, S.SENT, provider_message_id=ticket)
    return message_id


def status_of(engine: Engine, message_id: str) -> MessageStatus:
    with session_scope(engine) as session:
        message = get_message(session, message_id)
        assert message is not None
        return message.status


def inbound_rows(engine: Engine) -> list[InboundMessage]:
    with session_scope(engine) as session:
        return list(session.exec(select(InboundMessage)).all())


def receipt(ticket: str, number: str, status: str) -> dict[str, str]:
    return {
        "message_id": f"{ticket}:{number}",
        "number": number,
        "status": status,
        "delivery_date": "2026-03-02T08:30:00+00:00",
    }


# -- receipts ----------------------------------------------------------------------------


def test_a_receipt_from_octopush_moves_the_message_to_delivered(
    webhook: httpx.Client,
    engine: Engine,
    settings: Settings,
    sandbox: Sandbox,
    http_client: httpx.Client,
) -> None:
    octopush = OctopushClient(settings.octopush, settings.http, http_client)
    sent = octopush.send_sms(OutgoingSms(recipients=("+33612345801",), text="Votre code : 1"))
    assert sent.message_id is not None
    message_id = sent_octopush_row(engine, "+33612345801", sent.message_id)
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    (body,) = sandbox.octopush.account.receipts(sent.message_id)

    answer = webhook.post(RECEIPTS_PATH, json=body)

    assert answer.status_code == 200
    assert answer.json() == {"applied": True}
    assert status_of(engine, message_id) == S.DELIVERED
    with session_scope(engine) as session:
        last = events_for(session, message_id)[-1]
    assert (last.from_status, last.provider_status) == (S.SENT, "DELIVERED")
    assert last.raw == body


def test_a_form_encoded_receipt_is_applied_too(webhook: httpx.Client, engine: Engine) -> None:
    message_id = sent_octopush_row(engine, "+33612345802", "api110000000042")

    answer = webhook.post(
        RECEIPTS_PATH, data=receipt("api110000000042", "+33612345802", "NOT_DELIVERED")
    )

    assert answer.status_code == 200
    assert answer.json() == {"applied": True}
    assert status_of(engine, message_id) == S.UNDELIVERED


def test_the_final_states_receipts_settle_are_counted_on_metrics(
    webhook: httpx.Client, engine: Engine
) -> None:
    def undelivered() -> float:
        body = webhook.get(METRICS_PATH)
        assert body.status_code == 200
        for line in body.text.splitlines():
            if line.startswith('postier_messages_total{provider="octopush",state="undelivered"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = undelivered()
    sent_octopush_row(engine, "+33612345809", "api110000000049")
    webhook.post(RECEIPTS_PATH, json=receipt("api110000000049", "+33612345809", "NOT_DELIVERED"))
    # the gauge of the ledger counts live rows only: final totals are these counters
    assert undelivered() == before + 1


def test_a_receipt_that_is_not_final_is_acknowledged_and_changes_nothing(
    webhook: httpx.Client, engine: Engine
) -> None:
    message_id = sent_octopush_row(engine, "+33612345803", "api110000000043")

    answer = webhook.post(RECEIPTS_PATH, json=receipt("api110000000043", "+33612345803", "ACK"))

    assert (answer.status_code, answer.json()) == (200, {"applied": False})
    assert status_of(engine, message_id) == S.SENT


@pytest.mark.parametrize(
    "body",
    [
        receipt("api110000000999", "+33612345804", "DELIVERED"),  # no such ticket
        receipt("api110000000044", "+33612345899", "DELIVERED"),  # the ticket, another number
    ],
    ids=["unknown ticket", "other recipient"],
)
def test_a_receipt_for_no_known_message_is_acknowledged_not_applied(
    webhook: httpx.Client, engine: Engine, body: dict[str, str]
) -> None:
    message_id = sent_octopush_row(engine, "+33612345804", "api110000000044")

    answer = webhook.post(RECEIPTS_PATH, json=body)

    # 200, so that Octopush stops pushing it
    assert (answer.status_code, answer.json()) == (200, {"applied": False})
    assert status_of(engine, message_id) == S.SENT


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"number": "+33612345805", "status": "DELIVERED"}', "application/json"),
        (b'{"message_id": "api1:+33612345805"}', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"{not json", "application/json"),
        (b"\xff\xfe{\x00", "application/json"),
        (b"", "application/json"),
        (b"status=DELIVERED", "application/x-www-form-urlencoded"),
        (b"", "application/x-www-form-urlencoded"),
    ],
    ids=[
        "no id",
        "no status",
        "a list",
        "not json",
        "not utf-8",
        "empty json",
        "form no id",
        "empty form",
    ],
)
def test_a_body_that_is_not_a_receipt_is_refused(
    webhook: httpx.Client, content: bytes, content_type: str
) -> None:
    answer = webhook.post(RECEIPTS_PATH, content=content, headers={"content-type": content_type})

    assert answer.status_code == 400
    assert "error" in answer.json()


def test_receipts_take_post_only(webhook: httpx.Client) -> None:
    assert webhook.get(RECEIPTS_PATH).status_code == 405


# -- inbound SMS -------------------------------------------------------------------------


def test_an_inbound_sms_is_stored_once(webhook: httpx.Client, engine: Engine) -> None:
    body = {
        "message_id": "in_000000000000000000000001",
        "number": "+33612345806",
        "text": "STOP",
        "reception_date": "2026-03-02T08:31:00+00:00",
    }

    first = webhook.post(INBOUND_PATH, json=body)
    again = webhook.post(INBOUND_PATH, data=body)  # Octopush pushing it again, as a form

    assert (first.status_code, first.json()) == (200, {"stored": True})
    assert (again.status_code, again.json()) == (200, {"stored": False})
    (row,) = inbound_rows(engine)
    assert (row.provider, row.provider_message_id) == ("octopush", body["message_id"])
    assert (row.sender, row.text, row.channel) == ("+33612345806", "STOP", "sms")
    assert row.received_at.isoformat() == "2026-03-02T08:31:00+00:00"


def test_an_inbound_sms_from_the_sandbox_is_stored(
    webhook: httpx.Client, engine: Engine, sandbox: Sandbox
) -> None:
    with sandbox.core.lock:
        body = sandbox.octopush.account.add_inbound("+33612345807", "Oui")

    assert webhook.post(INBOUND_PATH, json=body).json() == {"stored": True}
    (row,) = inbound_rows(engine)
    assert (row.sender, row.text) == ("+33612345807", "Oui")


@pytest.mark.parametrize(
    "body",
    [{"number": "+33612345808", "text": "x"}, {"message_id": "in_1", "text": "x"}, {}],
    ids=["no id", "no number", "empty"],
)
def test_a_body_that_is_not_an_inbound_sms_is_refused(
    webhook: httpx.Client, engine: Engine, body: dict[str, str]
) -> None:
    answer = webhook.post(INBOUND_PATH, json=body)

    assert answer.status_code == 400
    assert inbound_rows(engine) == []
