"""What beat runs, called directly: release, republish, reap, delivery polls, the WhatsApp inbox.

Delivery states move with the sandbox clock (``sandbox.core.clock.advance``): a message is
``sent`` for the sandbox's delivery delay, then ``delivered`` (``undelivered`` for numbers
ending in 9999).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from celery import Celery
from sqlmodel import select

from postier import tasknames
from postier.config import Settings
from postier.dispatch.polling import (
    apply_receipt,
    poll_delivery_states,
    poll_whatsapp_inbox,
    reap_stuck_sends,
    release_due_messages,
    republish_unpublished,
)
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage, MessageStatus, inbound_messages_table
from postier.ledger.queries import awaiting_delivery, claim_for_sending
from postier.metrics import PROCESS_REGISTRY
from postier.providers.base import OutgoingSms
from postier.providers.octopush import parse_receipt
from postier.sandbox import Sandbox
from postier.sandbox.afilnet.whatsapp import inject_inbound
from tests.dispatch.conftest import Ledger, ago, queued_tasks

S = MessageStatus
MakeDispatcher = Callable[..., Dispatcher]
QueueLength = Callable[[], int]

#: inbound ids the hook below was called with, in order (the hook is imported by name)
HOOK_CALLS: list[int] = []


def record_inbound_hook(inbound_id: int) -> None:
    """The application's inbound hook, as ``dispatch.inbound_hook`` names it."""
    HOOK_CALLS.append(inbound_id)


# -- release and republish ---------------------------------------------------------------


def test_release_publishes_due_scheduled_rows_and_not_future_ones(
    dispatcher: Dispatcher,
    publisher: Publisher,
    ledger: Ledger,
    queue_length: QueueLength,
    redis_client: redis.Redis,
) -> None:
    due = [
        ledger.add_sms(f"061234565{n}", status=S.SCHEDULED, send_at=ago(10 - n)) for n in range(2)
    ]
    future = ledger.add_sms("0612345659", send_at=datetime.now(UTC) + timedelta(minutes=5))

    assert release_due_messages(dispatcher, publisher) == 2

    tasks = queued_tasks(redis_client)
    assert [(t.name, t.args) for t in tasks] == [(tasknames.SEND_MESSAGE, [i]) for i in due]
    for message_id in due:
        message = ledger.get(message_id)
        assert message.status == S.QUEUED
        assert message.published_at is not None
        assert [e.detail for e in ledger.events(message_id)][-1] == "due"
    assert ledger.status(future) == S.SCHEDULED
    assert ledger.get(future).published_at is None
    assert release_due_messages(dispatcher, publisher) == 0
    assert queue_length() == 2


def test_release_drains_more_due_rows_than_one_batch(
    dispatcher: Dispatcher, publisher: Publisher, ledger: Ledger, queue_length: QueueLength
) -> None:
    for n in range(5):
        ledger.add_sms(f"061234566{n}", status=S.SCHEDULED, send_at=ago(1))

    assert release_due_messages(dispatcher, publisher, limit=2) == 5
    assert queue_length() == 5


def test_republish_publishes_old_unpublished_rows_only(
    dispatcher: Dispatcher, publisher: Publisher, ledger: Ledger, queue_length: QueueLength
) -> None:
    # republish_after is 60 s in these settings
    lost = ledger.add_sms("0612345670", updated_at=ago(120))
    lost_task = ledger.add_sms("0612345671", updated_at=ago(120), published_at=ago(100))
    fresh = ledger.add_sms("0612345672")  # its producer publishes it right after the commit
    waiting = ledger.add_sms("0612345673", updated_at=ago(120), published_at=ago(5))
    sent = ledger.add_sms("0612345674", updated_at=ago(120))
    ledger.force(sent, status=S.SENT)

    assert republish_unpublished(dispatcher, publisher) == 2

    assert queue_length() == 2
    for message_id in (lost, lost_task):
        published = ledger.get(message_id).published_at
        assert published is not None and published > ago(5)
    assert ledger.get(fresh).published_at is None
    assert ledger.get(waiting).published_at is not None
    assert ledger.get(sent).published_at is None


# -- reaping -----------------------------------------------------------------------------


def stuck(ledger: Ledger, message_id: str, seconds: float) -> None:
    """A worker claimed the row ``seconds`` ago and died during the provider call."""
    with session_scope(ledger.engine) as session:
        assert claim_for_sending(session, message_id, now=ago(seconds)) is not None


def test_reap_moves_a_stale_sending_row_to_unknown_and_resolves_it_as_sent(
    dispatcher: Dispatcher, publisher: Publisher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345675")
    stuck(ledger, message_id, 300)
    # the dead worker's request had reached Primotexto
    receipt = dispatcher.clients.primotexto.send_sms(
        OutgoingSms(recipients=("+33612345675",), text="Votre code : 123456")
    )

    assert reap_stuck_sends(dispatcher, publisher) == 1

    message = ledger.get(message_id)
    assert message.status == S.SENT
    assert message.provider_message_id == receipt.message_id
    trail = [(e.from_status, e.to_status) for e in ledger.events(message_id)]
    assert trail[-2:] == [(S.SENDING, S.UNKNOWN), (S.UNKNOWN, S.SENT)]
    assert len(sandbox.records()) == 1


def test_reap_queues_and_publishes_a_stuck_send_that_never_arrived(
    dispatcher: Dispatcher,
    publisher: Publisher,
    ledger: Ledger,
    sandbox: Sandbox,
    queue_length: QueueLength,
) -> None:
    message_id = ledger.add_sms("0612345676")
    stuck(ledger, message_id, 300)

    assert reap_stuck_sends(dispatcher, publisher) == 1

    assert ledger.status(message_id) == S.QUEUED
    assert ledger.get(message_id).published_at is not None
    assert queue_length() == 1
    assert sandbox.records() == []


def test_reap_leaves_a_recent_send_and_an_octopush_one_is_settled_by_request_id(
    dispatcher: Dispatcher, publisher: Publisher, ledger: Ledger, sandbox: Sandbox
) -> None:
    recent = ledger.add_sms("0612345677")
    stuck(ledger, recent, 1)
    octopush = ledger.add_sms("0612345678", provider="octopush")
    stuck(ledger, octopush, 300)
    # the dead worker's request had reached Octopush, with the message id as request_id
    dispatcher.call_provider(ledger.get(octopush))

    assert reap_stuck_sends(dispatcher, publisher) == 1

    assert ledger.status(recent) == S.SENDING
    assert ledger.status(octopush) == S.SENT
    assert len(sandbox.records("octopush")) == 1


# -- delivery polls ----------------------------------------------------------------------


def test_poll_moves_sent_rows_to_delivered_or_undelivered(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    expected = {
        ledger.add_sms("0612345680"): (S.DELIVERED, "delivered"),
        ledger.add_sms("0612349999"): (S.UNDELIVERED, "bounced"),
        ledger.add_sms("0612345681", provider="afilnet"): (S.DELIVERED, "DELIVERED"),
        ledger.add_sms("0612349999", provider="afilnet"): (S.UNDELIVERED, "NOT_DELIVERED"),
        ledger.add_whatsapp("+33612345682", "Bonjour"): (S.DELIVERED, "read"),
    }
    for message_id in expected:
        assert dispatcher.send(message_id).status == S.SENT
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)

    assert poll_delivery_states(dispatcher) == len(expected)

    for message_id, (status, provider_status) in expected.items():
        message = ledger.get(message_id)
        assert message.status == status
        assert message.status_checked_at is not None
        last = ledger.events(message_id)[-1]
        assert (last.from_status, last.provider_status) == (S.SENT, provider_status)
        assert last.raw  # the provider's status answer, kept for audits


def test_poll_touches_status_checked_at_of_rows_not_final_and_waits_before_asking_again(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345683")
    assert dispatcher.send(message_id).status == S.SENT
    before = datetime.now(UTC)

    assert poll_delivery_states(dispatcher) == 0

    message = ledger.get(message_id)
    assert message.status == S.SENT
    assert message.status_checked_at is not None and message.status_checked_at >= before
    asked = sandbox.core.request_counts["primotexto"]
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    # poll_delivery_interval (5 s) has not passed: the row is not asked again
    assert poll_delivery_states(dispatcher) == 0
    assert sandbox.core.request_counts["primotexto"] == asked
    assert ledger.status(message_id) == S.SENT


def test_poll_asks_again_once_the_interval_has_passed(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345684")
    assert dispatcher.send(message_id).status == S.SENT
    assert poll_delivery_states(dispatcher) == 0
    ledger.force(message_id, status_checked_at=ago(10))
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)

    assert poll_delivery_states(dispatcher) == 1
    assert ledger.status(message_id) == S.DELIVERED


def test_poll_failure_of_one_provider_leaves_its_rows_sent_and_settles_the_others(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    primotexto = ledger.add_sms("0612345685")
    afilnet = ledger.add_sms("0612345686", provider="afilnet")
    for message_id in (primotexto, afilnet):
        assert dispatcher.send(message_id).status == S.SENT
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)

    assert poll_delivery_states(dispatcher) == 1

    assert ledger.status(primotexto) == S.SENT
    assert ledger.get(primotexto).status_checked_at is not None
    assert ledger.status(afilnet) == S.DELIVERED


def test_a_provider_refusing_requests_is_asked_once_per_pass(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sent = [ledger.add_sms(f"06123457{i:02d}") for i in range(5)]
    for message_id in sent:
        assert dispatcher.send(message_id).status == S.SENT
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    asked = sandbox.core.request_counts["primotexto"]

    assert poll_delivery_states(dispatcher) == 0

    # one lookup (with its in-process retries), not one per row: an outage costs one request
    # per pass instead of tying a worker thread up for every row
    in_process = dispatcher.settings.http.short_retry_attempts
    assert sandbox.core.request_counts["primotexto"] - asked == in_process
    assert all(ledger.status(m) == S.SENT for m in sent)


def test_octopush_rows_are_skipped_by_polling_and_settled_by_their_receipt(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345687", provider="octopush")
    assert dispatcher.send(message_id).status == S.SENT
    ticket = ledger.get(message_id).provider_message_id
    assert ticket is not None
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    asked = sandbox.core.request_counts["octopush"]

    assert poll_delivery_states(dispatcher) == 0

    # Octopush has no status API: nothing was asked, the row waits for its receipt
    assert sandbox.core.request_counts["octopush"] == asked
    assert ledger.status(message_id) == S.SENT
    assert ledger.get(message_id).status_checked_at is not None
    (body,) = sandbox.octopush.account.receipts(ticket)
    assert body["status"] == "DELIVERED"
    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"])
    assert ledger.status(message_id) == S.DELIVERED
    assert ledger.events(message_id)[-1].provider_status == "DELIVERED"


def test_a_receipt_that_is_not_final_or_not_for_this_recipient_changes_nothing(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345688", provider="octopush")
    assert dispatcher.send(message_id).status == S.SENT
    ticket = ledger.get(message_id).provider_message_id
    assert ticket is not None
    (ack,) = sandbox.octopush.account.receipts(ticket)
    assert ack["status"] == "ACK"

    assert not apply_receipt(ledger.engine, parse_receipt(ack), ack["number"])
    delivered = {**ack, "status": "DELIVERED"}
    assert not apply_receipt(ledger.engine, parse_receipt(delivered), "+33612345699")
    unknown_ticket = {**delivered, "message_id": "api999:+33612345688"}
    assert not apply_receipt(ledger.engine, parse_receipt(unknown_ticket), ack["number"])
    assert ledger.status(message_id) == S.SENT


# -- receipt window ------------------------------------------------------------------------


def _sent_count(provider: str, state: str) -> float:
    value = PROCESS_REGISTRY.get_sample_value(
        "postier_messages_total", {"provider": provider, "state": state}
    )
    return value or 0.0


def test_a_sent_row_past_its_receipt_window_expires_without_being_asked(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    overdue = ledger.add_sms("0612345690")
    recent = ledger.add_sms("0612345691")
    for message_id in (overdue, recent):
        assert dispatcher.send(message_id).status == S.SENT
    window = dispatcher.settings.dispatch.receipt_window
    ledger.force(overdue, sending_started_at=ago(window + 60))
    expired_before = _sent_count("primotexto", "expired")
    asked = sandbox.core.request_counts["primotexto"]

    assert poll_delivery_states(dispatcher) == 1

    assert ledger.status(overdue) == S.EXPIRED
    last = ledger.events(overdue)[-1]
    assert (last.from_status, last.to_status) == (S.SENT, S.EXPIRED)
    assert last.detail == "no delivery state within 72 h"
    # only the recent row was looked up; the expired one leaves the poll's set for good
    assert sandbox.core.request_counts["primotexto"] - asked == 1
    assert ledger.status(recent) == S.SENT
    assert _sent_count("primotexto", "expired") == expired_before + 1
    ledger.force(recent, status_checked_at=ago(3600))
    with session_scope(ledger.engine) as session:
        still_polled = {row.id for row in awaiting_delivery(session, datetime.now(UTC), 500)}
    assert still_polled == {recent}


def test_a_provider_s_own_receipt_window_overrides_the_default(
    dispatch_settings: Settings, make_dispatcher: MakeDispatcher, ledger: Ledger
) -> None:
    dispatch = dispatch_settings.dispatch.model_copy(update={"receipt_windows": {"afilnet": 600}})
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"dispatch": dispatch}))
    afilnet = ledger.add_sms("0612345692", provider="afilnet")
    primotexto = ledger.add_sms("0612345693")
    for message_id in (afilnet, primotexto):
        assert dispatcher.send(message_id).status == S.SENT
        ledger.force(message_id, sending_started_at=ago(3600))

    poll_delivery_states(dispatcher)

    assert ledger.status(afilnet) == S.EXPIRED
    assert ledger.events(afilnet)[-1].detail == "no delivery state within 10 min"
    assert ledger.status(primotexto) != S.EXPIRED  # 1 hour is within the default 72 hours


def test_a_late_receipt_still_settles_an_expired_message(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345694", provider="octopush")
    assert dispatcher.send(message_id).status == S.SENT
    ticket = ledger.get(message_id).provider_message_id
    assert ticket is not None
    window = dispatcher.settings.dispatch.receipt_window
    ledger.force(message_id, sending_started_at=ago(window + 1))
    assert poll_delivery_states(dispatcher) == 1
    assert ledger.status(message_id) == S.EXPIRED
    delivered_before = _sent_count("octopush", "delivered")
    sandbox.core.clock.advance(5 * sandbox.core.delivery_delay)
    (body,) = sandbox.octopush.account.receipts(ticket)
    assert body["status"] == "DELIVERED"

    assert apply_receipt(ledger.engine, parse_receipt(body), body["number"])

    assert ledger.status(message_id) == S.DELIVERED
    last = ledger.events(message_id)[-1]
    assert (last.from_status, last.to_status) == (S.EXPIRED, S.DELIVERED)
    assert _sent_count("octopush", "delivered") == delivered_before + 1


# -- WhatsApp inbox ----------------------------------------------------------------------


@pytest.fixture
def hooked(dispatch_settings: Settings, make_dispatcher: MakeDispatcher) -> Dispatcher:
    """A dispatcher whose settings name ``record_inbound_hook`` as the inbound hook."""
    HOOK_CALLS.clear()
    dispatch = dispatch_settings.dispatch.model_copy(
        update={"inbound_hook": f"{__name__}:record_inbound_hook"}
    )
    return make_dispatcher(dispatch_settings.model_copy(update={"dispatch": dispatch}))


def inbound_rows(ledger: Ledger) -> list[InboundMessage]:
    with session_scope(ledger.engine) as session:
        query = select(InboundMessage).order_by(inbound_messages_table.c.id)
        return list(session.exec(query).all())


def test_inbox_poll_stores_each_inbound_once_and_runs_the_hook_once_per_new_row(
    hooked: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    state = sandbox.afilnet.state
    first = inject_inbound(state, "100", "33612345690", "Oui, merci !")
    second = inject_inbound(state, "100", "33612345691", "STOP")

    stored = poll_whatsapp_inbox(hooked)

    assert len(stored) == 2
    assert stored == HOOK_CALLS
    rows = inbound_rows(ledger)
    assert {(r.provider_message_id, r.sender, r.text) for r in rows} == {
        (first, "+33612345690", "Oui, merci !"),
        (second, "+33612345691", "STOP"),
    }
    assert {r.channel for r in rows} == {"whatsapp"}
    assert {r.provider for r in rows} == {"afilnet"}

    # the next polls read nothing new; a message served unread again is not stored twice
    assert poll_whatsapp_inbox(hooked) == []
    for message in state.chats[("100", "33612345690")]:
        message.read = False
    assert poll_whatsapp_inbox(hooked) == []
    assert len(inbound_rows(ledger)) == 2
    assert stored == HOOK_CALLS

    third = inject_inbound(state, "100", "33612345690", "Et demain ?")
    (new_id,) = poll_whatsapp_inbox(hooked)
    assert [*stored, new_id] == HOOK_CALLS
    assert inbound_rows(ledger)[-1].provider_message_id == third


def test_inbox_poll_of_a_channel_without_chats_stores_nothing(
    hooked: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    assert poll_whatsapp_inbox(hooked) == []
    assert HOOK_CALLS == []
    assert inbound_rows(ledger) == []


def test_inbox_hook_given_as_a_task_name_is_sent_to_the_hooks_queue(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    celery_app: Celery,
    redis_client: redis.Redis,
    sandbox: Sandbox,
) -> None:
    dispatch = dispatch_settings.dispatch.model_copy(
        update={"inbound_hook": "postier.hooks.on_inbound"}
    )
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"dispatch": dispatch}))
    inject_inbound(sandbox.afilnet.state, "100", "33612345692", "Bonjour")

    (stored,) = poll_whatsapp_inbox(dispatcher, celery_app)

    (task,) = queued_tasks(redis_client, tasknames.QUEUE_HOOKS)
    assert (task.name, task.args) == ("postier.hooks.on_inbound", [stored])
    assert queued_tasks(redis_client, tasknames.QUEUE_SEND) == []


def test_inbox_poll_whose_answer_is_lost_reads_the_chat_and_stores_each_message_once(
    hooked: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """getunreadmessages marks messages read: a lost answer must not lose them."""
    state = sandbox.afilnet.state
    earlier = inject_inbound(state, "100", "33612345693", "Bonjour")
    (earlier_row,) = poll_whatsapp_inbox(hooked)
    later = inject_inbound(state, "100", "33612345693", "Vous êtes là ?")
    # getchats answers; getunreadmessages is processed (marked read), then its answer is lost
    sandbox.set_faults("afilnet", script=["ok", "drop_after"])

    (later_row,) = poll_whatsapp_inbox(hooked)

    rows = inbound_rows(ledger)
    assert [(r.id, r.provider_message_id) for r in rows] == [
        (earlier_row, earlier),
        (later_row, later),
    ]
    assert rows[1].text == "Vous êtes là ?"
    assert rows[1].sender == "+33612345693"
    assert [earlier_row, later_row] == HOOK_CALLS
    assert poll_whatsapp_inbox(hooked) == []
