"""The webhook receiver over real HTTP: uvicorn in a thread, a fresh SQLite ledger per test.

Receipt bodies come from the sandbox's own Octopush account (what it would push) or are
written in the v1 callback shape (docs/PROVIDERS.md, "Octopush").
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select

from postier.config import Settings
from postier.dispatch.redelivery import resend_id
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import Channel, InboundMessage, MessageKind, MessageStatus
from postier.ledger.queries import claim_for_sending, events_for, get_message, insert_messages
from postier.ledger.states import transition
from postier.providers.base import OutgoingSms
from postier.providers.octopush import OctopushClient
from postier.sandbox import Sandbox
from postier.webhooks import METRICS_PATH, create_app, inbound_path, receipts_path
from tests.http_pool import RecordingPool

S = MessageStatus
SECRET = "test-callback-secret-0123456789"
OLD_SECRET = "old-callback-secret-9876543210"
RECEIPTS_PATH = receipts_path(SECRET)
INBOUND_PATH = inbound_path(SECRET)


def with_webhooks(settings: Settings, **values: Any) -> Settings:
    """``settings`` with these webhook values (the test secret unless given)."""
    values.setdefault("secret", SecretStr(SECRET))
    return settings.model_copy(update={"webhooks": settings.webhooks.model_copy(update=values)})


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
    webhook_server.app = create_app(with_webhooks(settings), engine)
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
    http_pool: RecordingPool,
) -> None:
    octopush = OctopushClient(settings.octopush, settings.http, http_pool)
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


def test_a_temporary_failure_receipt_is_resent_once_through_the_fallback(
    webhook: httpx.Client, engine: Engine
) -> None:
    message_id = sent_octopush_row(engine, "+33612345811", "api811")
    body = receipt("api811", "+33612345811", "NOT_DELIVERED")

    assert webhook.post(RECEIPTS_PATH, json=body).json() == {"applied": True}
    assert webhook.post(RECEIPTS_PATH, json=body).json() == {"applied": False}

    assert status_of(engine, message_id) == S.UNDELIVERED
    assert status_of(engine, resend_id(message_id)) == S.SCHEDULED
    with session_scope(engine) as session:
        resend = get_message(session, resend_id(message_id))
        assert resend is not None and resend.provider == "primotexto"
        assert "resend through primotexto" in (events_for(session, message_id)[-1].detail or "")


def test_a_permanent_failure_receipt_is_not_resent(webhook: httpx.Client, engine: Engine) -> None:
    message_id = sent_octopush_row(engine, "+33612345812", "api812")

    webhook.post(RECEIPTS_PATH, json=receipt("api812", "+33612345812", "BAD_DESTINATION"))

    assert status_of(engine, message_id) == S.UNDELIVERED
    with session_scope(engine) as session:
        assert get_message(session, resend_id(message_id)) is None


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/octopush/receipts",  # the old, open URL
        receipts_path("wrong-callback-secret-000000"),
        receipts_path(SECRET[:-1]),
        receipts_path(SECRET + "x"),
        receipts_path(OLD_SECRET),  # rotated out
        receipts_path(""),
    ],
    ids=["no secret", "wrong", "a prefix", "longer", "old secret", "empty"],
)
def test_a_forged_receipt_is_refused_and_changes_nothing(
    webhook: httpx.Client, engine: Engine, path: str
) -> None:
    message_id = sent_octopush_row(engine, "+33612345811", "api110000000051")

    answer = webhook.post(path, json=receipt("api110000000051", "+33612345811", "NOT_DELIVERED"))

    assert answer.status_code == 404
    assert status_of(engine, message_id) == S.SENT


def test_a_forged_number_only_receipt_does_not_settle_an_unknown_send(
    webhook: httpx.Client, engine: Engine
) -> None:
    message_id = sent_octopush_row(engine, "+33612345812", "api110000000052")
    with session_scope(engine) as session:
        assert transition(session, message_id, S.SENT, S.UNKNOWN)
    forged = {"message_id": "x", "number": "+33612345812", "status": "DELIVERED"}

    answer = webhook.post("/webhooks/octopush/receipts", json=forged)

    assert answer.status_code == 404
    assert status_of(engine, message_id) == S.UNKNOWN


def test_a_forged_inbound_stop_is_not_stored(webhook: httpx.Client, engine: Engine) -> None:
    body = {"message_id": "in_forged", "number": "+33612345813", "text": "STOP"}

    answer = webhook.post(inbound_path("guessed-secret-guessed-secret"), json=body)

    assert answer.status_code == 404
    assert inbound_rows(engine) == []


def test_during_a_rotation_both_secrets_are_taken(
    webhook_server: WebhookServer, settings: Settings, engine: Engine
) -> None:
    rotating = with_webhooks(
        settings, secret=SecretStr(SECRET), previous_secret=SecretStr(OLD_SECRET)
    )
    webhook_server.app = create_app(rotating, engine)
    first = sent_octopush_row(engine, "+33612345814", "api110000000053")
    second = sent_octopush_row(engine, "+33612345815", "api110000000054")
    with httpx.Client(base_url=webhook_server.url, timeout=5.0) as client:
        new = client.post(
            receipts_path(SECRET), json=receipt("api110000000053", "+33612345814", "DELIVERED")
        )
        old = client.post(
            receipts_path(OLD_SECRET),
            json=receipt("api110000000054", "+33612345815", "DELIVERED"),
        )
    webhook_server.app = None

    assert (new.status_code, old.status_code) == (200, 200)
    assert (status_of(engine, first), status_of(engine, second)) == (S.DELIVERED, S.DELIVERED)


@pytest.mark.parametrize(
    "values",
    [
        {"secret": SecretStr("")},
        {"secret": SecretStr("short")},
        {"secret": SecretStr("has a space in it, sixteen+")},
        {"previous_secret": SecretStr("short")},
        {"allowed_networks": ["not-a-network"]},
    ],
    ids=["none", "short", "not url-safe", "short previous", "bad network"],
)
def test_the_receiver_refuses_to_start_without_a_usable_secret(
    settings: Settings, engine: Engine, values: dict[str, Any]
) -> None:
    from postier.webhooks import WebhookConfigError

    with pytest.raises(WebhookConfigError):
        create_app(with_webhooks(settings, **values), engine)


def test_postier_webhooks_refuses_to_start_without_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from postier.cli import app
    from postier.config import get_settings

    monkeypatch.setenv("POSTIER_WEBHOOKS__SECRET", "")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["webhooks"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 2
    assert "POSTIER_WEBHOOKS__SECRET" in result.output
    assert "Traceback" not in result.output


def test_a_source_outside_the_allowed_networks_is_refused(
    webhook_server: WebhookServer, settings: Settings, engine: Engine
) -> None:
    message_id = sent_octopush_row(engine, "+33612345816", "api110000000055")
    body = receipt("api110000000055", "+33612345816", "DELIVERED")
    with httpx.Client(base_url=webhook_server.url, timeout=5.0) as client:
        webhook_server.app = create_app(
            with_webhooks(settings, allowed_networks=["203.0.113.0/24"]), engine
        )
        outside = client.post(RECEIPTS_PATH, json=body)
        webhook_server.app = create_app(
            with_webhooks(settings, allowed_networks=["127.0.0.0/8", "::1/128"]), engine
        )
        inside = client.post(RECEIPTS_PATH, json=body)
    webhook_server.app = None

    assert outside.status_code == 403
    assert inside.status_code == 200
    assert status_of(engine, message_id) == S.DELIVERED


# -- hard edges --------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_unread(webhook: httpx.Client, engine: Engine) -> None:
    body = {"message_id": "in_big", "number": "+33612345817", "text": "x" * 20_000_000}

    answer = webhook.post(INBOUND_PATH, json=body)

    assert answer.status_code == 413
    assert inbound_rows(engine) == []


def test_a_body_over_the_cap_without_a_length_is_refused(
    webhook: httpx.Client, engine: Engine
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"message_id": "in_big", "number": "+33612345817", "text": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    answer = webhook.post(
        INBOUND_PATH, content=chunks(), headers={"content-type": "application/json"}
    )

    assert answer.status_code == 413
    assert inbound_rows(engine) == []


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (
            RECEIPTS_PATH,
            b'{"message_id": "a:1", "status": "DELIVERED", "delivery_date": "' + b"9" * 20 + b'"}',
        ),
        (RECEIPTS_PATH, b'{"message_id": "a:\\ud800", "status": "DELIVERED"}'),
        (RECEIPTS_PATH, b'{"message_id": "a:1\\u0000", "status": "DELIVERED"}'),
        (RECEIPTS_PATH, b'{"message_id": {"a": 1}, "status": "DELIVERED"}'),
        (RECEIPTS_PATH, b'{"message_id": "' + b"a" * 5000 + b'", "status": "DELIVERED"}'),
        (RECEIPTS_PATH, b'{"message_id": 1' + b"0" * 5000 + b', "status": "DELIVERED"}'),
        (INBOUND_PATH, b'{"message_id": "in_1", "number": "+33612345818", "text": "\\udfff"}'),
        (INBOUND_PATH, b'{"message_id": "in_1", "number": "+33612345818", "text": "a\\u0000"}'),
        (INBOUND_PATH, b'{"message_id": "in_1", "number": "+33612345818", "text": ["STOP"]}'),
        (
            INBOUND_PATH,
            b'{"message_id": "in_1", "number": "+33612345818", "text": "' + b"y" * 3000 + b'"}',
        ),
        (
            INBOUND_PATH,
            b'{"message_id": "in_1", "number": "+33612345818", "reception_date": "'
            + b"9" * 20
            + b'"}',
        ),
    ],
    ids=[
        "20-digit date",
        "lone surrogate id",
        "NUL id",
        "object id",
        "long id",
        "huge number id",
        "lone surrogate text",
        "NUL text",
        "list text",
        "long text",
        "20-digit reception date",
    ],
)
def test_a_malformed_callback_is_a_4xx_never_a_500(
    webhook: httpx.Client, path: str, content: bytes
) -> None:
    answer = webhook.post(path, content=content, headers={"content-type": "application/json"})

    assert 200 <= answer.status_code < 500, answer.text


def test_a_deeply_nested_body_is_a_400(webhook: httpx.Client) -> None:
    content = b"[" * 8000 + b"]" * 8000

    answer = webhook.post(
        RECEIPTS_PATH, content=content, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 400


def test_a_form_of_too_many_fields_is_a_400(webhook: httpx.Client) -> None:
    content = "&".join(f"f{i}=x" for i in range(100)).encode()

    answer = webhook.post(
        RECEIPTS_PATH,
        content=content,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert answer.status_code == 400


def test_a_slow_ledger_write_does_not_stall_other_requests(
    webhook_server: WebhookServer, settings: Settings, engine: Engine
) -> None:
    """The ledger work runs in a thread: a stuck write leaves the event loop free."""
    import postier.webhooks as module

    release = threading.Event()
    entered = threading.Event()
    original = module.apply_receipt

    def stuck(*args: Any) -> bool:
        entered.set()
        release.wait(10)
        return original(*args)

    webhook_server.app = create_app(with_webhooks(settings), engine)
    module.apply_receipt = stuck  # type: ignore[assignment]
    try:
        with httpx.Client(base_url=webhook_server.url, timeout=5.0) as slow_client:
            slow = threading.Thread(
                target=slow_client.post,
                args=(RECEIPTS_PATH,),
                kwargs={"json": receipt("api1", "+33612345819", "DELIVERED")},
            )
            slow.start()
            assert entered.wait(5)
            with httpx.Client(base_url=webhook_server.url, timeout=1.0) as client:
                started = time.monotonic()
                answer = client.post(INBOUND_PATH, json={"message_id": "in_9", "text": "x"})
                waited = time.monotonic() - started
            release.set()
            slow.join(10)
    finally:
        module.apply_receipt = original
        release.set()
        webhook_server.app = None

    assert answer.status_code == 400  # answered, while the other request was still writing
    assert waited < 1.0


@pytest.fixture(scope="module")
def fuzz_client(
    webhook_server: WebhookServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The module's server with one receiver over a throwaway ledger, for hypothesis (which
    runs many examples per test: function-scoped fixtures would not be reset between them)."""
    ledger = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/l.db")
    upgrade(ledger)
    receiver = create_app(with_webhooks(Settings(_env_file=None)), ledger)  # type: ignore[call-arg]
    with httpx.Client(base_url=webhook_server.url, timeout=5.0) as client:
        webhook_server.app = receiver
        yield client
        webhook_server.app = None
    ledger.dispose()


FUZZ = settings_hypothesis(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    body=st.dictionaries(
        st.text(max_size=20),
        st.one_of(
            st.text(max_size=50),
            st.integers(),
            st.floats(allow_nan=True),
            st.none(),
            st.booleans(),
            st.lists(st.text(max_size=5), max_size=2),
        ),
        max_size=6,
    ),
    inbound=st.booleans(),
)
def test_any_json_body_gets_a_4xx_or_a_200(
    fuzz_client: httpx.Client, body: dict[str, Any], inbound: bool
) -> None:
    """Hypothesis over the receiver's input: no 5xx, whatever the fields hold."""
    answer = fuzz_client.post(
        INBOUND_PATH if inbound else RECEIPTS_PATH,
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code < 500


@FUZZ
@given(content=st.binary(max_size=300), form=st.booleans())
def test_any_bytes_get_a_4xx_or_a_200(
    fuzz_client: httpx.Client, content: bytes, form: bool
) -> None:
    answer = fuzz_client.post(
        RECEIPTS_PATH,
        content=content,
        headers={
            "content-type": "application/x-www-form-urlencoded" if form else "application/json"
        },
    )
    assert answer.status_code < 500
