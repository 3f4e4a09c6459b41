"""The one Octopush batch path: its receipt policy, its reaper, its metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from postier import metrics
from postier.dispatch.batches import (
    BATCH_PREFIX,
    claimed_rows,
    reap_batches,
    record_receipt,
    send_claimed,
    unsettled_batches,
)
from postier.dispatch.batching import send_chunk
from postier.dispatch.polling import reap_stuck_sends
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus
from postier.ledger.states import transition_many
from postier.providers.results import Provider, RecipientResult, SendReceipt
from postier.sandbox import Sandbox
from tests.dispatch.conftest import Ledger

TEXT = "Soldes : -20 % sur tout le rayon jardin."
S = MessageStatus


def _claimed(dispatcher: Dispatcher, ledger: Ledger, count: int, request_id: str) -> list[str]:
    ids = [ledger.add_sms(f"06124{i:05d}", TEXT, provider="octopush") for i in range(count)]
    with session_scope(dispatcher.engine) as session:
        transition_many(
            session,
            ids,
            MessageStatus.QUEUED,
            MessageStatus.SENDING,
            attempts=1,
            sending_started_at=datetime.now(UTC),
            provider_message_id=BATCH_PREFIX + request_id,
        )
    return ids


def test_a_recipient_missing_from_an_answer_that_lists_others_is_unknown(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """Then the reaper settles it under the batch's request_id, as the lookup Octopush has."""
    request_id = "a" * 32
    ids = _claimed(dispatcher, ledger, 3, request_id)
    rows = claimed_rows(dispatcher, request_id)
    listed = [r for r in rows if r.id != ids[2]]
    receipt = SendReceipt(
        provider=Provider.OCTOPUSH,
        message_id="ticket-1",
        recipients=tuple(RecipientResult(recipient=r.recipient, accepted=True) for r in listed),
    )
    result = record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.SENDING)
    assert (result.sent, result.unknown) == (2, 1)
    assert [ledger.status(i) for i in ids] == [S.SENT, S.SENT, S.UNKNOWN]
    assert ledger.get(ids[2]).provider_message_id == BATCH_PREFIX + request_id
    assert unsettled_batches(dispatcher) == [request_id]
    # the reaper sends the unknown row again under the request_id: it was never sent, so
    # Octopush takes it now (a ticket), and only it
    assert reap_batches(dispatcher) == 1
    assert ledger.status(ids[2]) == S.SENT
    missing = next(r.recipient for r in rows if r.id == ids[2])
    assert [r["recipient"] for r in sandbox.records("octopush")] == [missing]


def test_an_answer_per_request_that_lists_nobody_accepts_the_whole_group(
    dispatcher: Dispatcher, ledger: Ledger
) -> None:
    request_id = "b" * 32
    ids = _claimed(dispatcher, ledger, 3, request_id)
    rows = claimed_rows(dispatcher, request_id)
    receipt = SendReceipt(provider=Provider.OCTOPUSH, message_id="ticket-2", cost=None, parts=1)
    result = record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.SENDING)
    assert result.sent == 3 and result.unknown == 0
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == S.SENT
        assert message.provider_message_id == f"ticket-2:{message.recipient}"
        assert message.cost is None  # the request's cost is nobody's in particular


def test_the_single_send_reaper_leaves_batch_rows_to_the_batch_reaper(
    dispatcher: Dispatcher, publisher: Publisher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """Resending a batch row alone under its own id could send it twice: never."""
    request_id = "c" * 32
    ids = _claimed(dispatcher, ledger, 2, request_id)
    old = datetime.now(UTC) - timedelta(hours=1)
    for message_id in ids:
        ledger.force(message_id, sending_started_at=old, updated_at=old)
    assert reap_stuck_sends(dispatcher, publisher) == 0
    assert [ledger.status(i) for i in ids] == [S.SENDING, S.SENDING]
    assert reap_batches(dispatcher) == 2  # the batch reaper: one request, request_id kept
    records = sandbox.core.records_for("octopush")
    assert {r.extra["request_id"] for r in records} == {request_id}
    assert [ledger.status(i) for i in ids] == [S.SENT, S.SENT]


def test_batches_are_counted_in_the_metrics(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    def sent() -> float:
        return (
            REGISTRY.get_sample_value(
                "postier_messages_total", {"provider": "octopush", "state": "sent"}
            )
            or 0.0
        ) + (
            metrics.PROCESS_REGISTRY.get_sample_value(
                "postier_messages_total", {"provider": "octopush", "state": "sent"}
            )
            or 0.0
        )

    before = sent()
    ids = [ledger.add_sms(f"06125{i:05d}", TEXT, provider="octopush") for i in range(4)]
    assert send_chunk(dispatcher, ids).sent == 4  # a bulk chunk's group
    request_id = "d" * 32
    _claimed(dispatcher, ledger, 3, request_id)  # claimed as a campaign batch task claims
    assert send_claimed(dispatcher, request_id, claimed_rows(dispatcher, request_id)).sent == 3
    assert sent() == before + 7
    assert len(sandbox.core.records_for("octopush")) == 7
