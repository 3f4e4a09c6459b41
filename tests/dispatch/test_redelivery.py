"""A failed delivery: resent once through the fallback when its cause is temporary, never when
it is permanent (receipts from the sandbox, applied as the poller and the webhook apply them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from postier.config import Settings
from postier.dispatch.polling import apply_receipt, apply_report, poll_delivery_states
from postier.dispatch.redelivery import resend_id
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus, messages_table
from postier.ledger.queries import get_message, release_due
from postier.providers.afilnet.sms import FAILURES as AFILNET_FAILURES
from postier.providers.octopush import parse_receipt
from postier.providers.primotexto import FAILURES as PRIMOTEXTO_FAILURES
from postier.providers.primotexto import STATES as PRIMOTEXTO_STATES
from postier.providers.results import DeliveryFailure, DeliveryState, Provider, StatusReport
from postier.sandbox import Sandbox
from tests.dispatch.conftest import Ledger

S = MessageStatus
#: the sandbox does not deliver to numbers ending in 9999
UNDELIVERABLE = "0612349999"


def octopush_receipt(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox, status: str
) -> tuple[str, dict[str, str]]:
    """An Octopush message sent to the sandbox, and its final receipt with ``status``."""
    message_id = ledger.add_sms(UNDELIVERABLE, provider="octopush")
    assert dispatcher.send(message_id).status is S.SENT
    ticket = ledger.get(message_id).provider_message_id
    assert ticket is not None
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    body = sandbox.octopush.account.receipts(ticket)[-1]
    assert body["status"] == "NOT_DELIVERED"
    return message_id, {**body, "status": status}


def exists(ledger: Ledger, message_id: str) -> bool:
    with session_scope(ledger.engine) as session:
        return get_message(session, message_id) is not None


def message_count(ledger: Ledger) -> int:
    with session_scope(ledger.engine) as session:
        return int(session.execute(select(func.count()).select_from(messages_table)).scalar_one())


def release_all(ledger: Ledger) -> list[str]:
    with session_scope(ledger.engine) as session:
        return release_due(session, datetime.now(UTC) + timedelta(seconds=1))


def test_a_temporary_failure_is_resent_once_through_the_fallback(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id, body = octopush_receipt(dispatcher, ledger, sandbox, "NOT_DELIVERED")
    settings = dispatcher.settings

    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"], settings)
    assert not apply_receipt(ledger.engine, parse_receipt(body), body["number"], settings)

    assert ledger.status(message_id) == S.UNDELIVERED
    resend = ledger.get(resend_id(message_id))
    assert (resend.status, resend.provider, resend.attempts) == (S.SCHEDULED, "primotexto", 0)
    assert (resend.recipient, resend.body) == (
        ledger.get(message_id).recipient,
        "Votre code : 123456",
    )
    assert resend.payload["resend_of"] == message_id
    assert resend.payload["tried_providers"] == ["octopush"]
    last = ledger.events(message_id)[-1]
    assert last.detail is not None
    assert f"resend through primotexto as {resend.id}" in last.detail
    assert last.provider_status == "NOT_DELIVERED"
    assert release_all(ledger) == [resend.id]  # beat's next pass: queued and published
    assert dispatcher.send(resend.id).status is S.SENT
    assert [r["recipient"] for r in sandbox.records("primotexto")] == ["+33612349999"]


def test_a_resend_that_fails_again_is_not_resent(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id, body = octopush_receipt(dispatcher, ledger, sandbox, "NOT_DELIVERED")
    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"], dispatcher.settings)
    resend = resend_id(message_id)
    release_all(ledger)
    assert dispatcher.send(resend).status is S.SENT
    # Primotexto reports a temporary failure too: still no second resend
    report = StatusReport(
        Provider.PRIMOTEXTO,
        "x",
        DeliveryState.UNDELIVERED,
        "error",
        failure=DeliveryFailure.TEMPORARY,
    )

    assert apply_report(ledger.engine, ledger.get(resend), report, dispatcher.settings)

    assert ledger.status(resend) == S.UNDELIVERED
    assert not exists(ledger, resend_id(resend))
    assert message_count(ledger) == 2


@pytest.mark.parametrize("status", ["BAD_DESTINATION", "BLACKLISTED_NUMBER", "NOT_ALLOWED"])
def test_a_permanent_failure_is_never_resent(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox, status: str
) -> None:
    message_id, body = octopush_receipt(dispatcher, ledger, sandbox, status)

    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"], dispatcher.settings)

    assert ledger.status(message_id) == S.UNDELIVERED
    assert not exists(ledger, resend_id(message_id))


def test_the_switch_turns_the_resend_off(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id, body = octopush_receipt(dispatcher, ledger, sandbox, "NOT_DELIVERED")
    off = dispatcher.settings.model_copy(
        update={
            "routing": dispatcher.settings.routing.model_copy(update={"resend_undelivered": False})
        }
    )
    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"], off)
    assert not exists(ledger, resend_id(message_id))


def test_a_polled_bounce_is_permanent_and_not_resent(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms(UNDELIVERABLE, provider="primotexto")
    assert dispatcher.send(message_id).status is S.SENT
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    ledger.force(message_id, status_checked_at=None)

    assert poll_delivery_states(dispatcher) == 1

    assert ledger.status(message_id) == S.UNDELIVERED
    assert ledger.events(message_id)[-1].provider_status == "bounced"
    assert not exists(ledger, resend_id(message_id))


def test_a_polled_temporary_failure_is_resent(
    make_dispatcher: object, dispatch_settings: Settings, ledger: Ledger, sandbox: Sandbox
) -> None:
    """Afilnet SMS (polled) answers NOT_DELIVERED; with a fallback for Afilnet it is resent."""
    routing = dispatch_settings.routing.model_copy(
        update={"sms_fallback": {**dispatch_settings.routing.sms_fallback, "afilnet": "octopush"}}
    )
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"routing": routing}))  # type: ignore[operator]
    message_id = ledger.add_sms(UNDELIVERABLE, provider="afilnet")
    assert dispatcher.send(message_id).status is S.SENT
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    ledger.force(message_id, status_checked_at=None)

    assert poll_delivery_states(dispatcher) == 1

    assert ledger.events(message_id)[-1].provider_status == "NOT_DELIVERED"
    assert ledger.get(resend_id(message_id)).provider == "octopush"


# -- each provider classifies its own statuses ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        ("NOT_DELIVERED", DeliveryFailure.TEMPORARY),
        ("BAD_DESTINATION", DeliveryFailure.PERMANENT),
        ("BLACKLISTED_NUMBER", DeliveryFailure.PERMANENT),
        ("NOT_ALLOWED", DeliveryFailure.PERMANENT),
        ("DELIVERED", None),
    ],
)
def test_octopush_receipts_say_why(status: str, failure: DeliveryFailure | None) -> None:
    report = parse_receipt({"message_id": "t:+33612345678", "status": status})
    assert report.failure is failure


def test_every_undelivered_status_of_primotexto_and_afilnet_is_classified() -> None:
    undelivered = {k for k, v in PRIMOTEXTO_STATES.items() if v is DeliveryState.UNDELIVERED}
    assert set(PRIMOTEXTO_FAILURES) == undelivered
    assert PRIMOTEXTO_FAILURES["bounced"] is DeliveryFailure.PERMANENT
    assert PRIMOTEXTO_FAILURES["unsubscribed"] is DeliveryFailure.PERMANENT
    from postier.providers.afilnet.sms import STATUS_STATES

    afilnet = {k for k, v in STATUS_STATES.items() if v is DeliveryState.UNDELIVERED}
    assert set(AFILNET_FAILURES) == afilnet
