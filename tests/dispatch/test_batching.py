"""Chunks of queued messages against the sandbox: Octopush SMS with one text go in one request.

Every test checks the provider's own record (one SMS per recipient, the request_id used) as
well as the ledger, since the point of grouping is fewer requests without a double send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

from postier.config import RateLimit, Settings
from postier.dispatch.batches import BATCH_PREFIX, BatchResult, settle_batch
from postier.dispatch.batching import plan_groups, send_chunk
from postier.dispatch.polling import apply_receipt
from postier.dispatch.routing import account_id
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus, messages_table
from postier.ledger.queries import queued_rows
from postier.ledger.states import transition_many
from postier.providers import registry
from postier.providers.octopush import parse_receipt
from postier.providers.results import DeliveryState, Provider, StatusReport
from postier.ratelimit import RateLimiter, limiter_key
from postier.sandbox import Sandbox
from tests.dispatch.conftest import Ledger

TEXT = "Soldes : -30% ce week-end."


def _settle(dispatcher: Dispatcher, message: Message) -> BatchResult:
    """The batch reaper's settling of the group ``message`` was sent in."""
    tag = message.provider_message_id or ""
    assert tag.startswith(BATCH_PREFIX)
    return settle_batch(dispatcher, tag.removeprefix(BATCH_PREFIX))


def add_many(ledger: Ledger, count: int, *, start: int = 0, **columns: Any) -> list[str]:
    """``count`` Octopush SMS with one text to distinct recipients."""
    return [
        ledger.add_sms(f"06123{start + i:05d}", TEXT, provider="octopush", **columns)
        for i in range(count)
    ]


def test_one_text_goes_in_one_request_and_each_row_is_sent(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    ids = add_many(ledger, 5)
    result = send_chunk(dispatcher, ids)
    assert result.sent == 5 and not result.republish
    assert sandbox.core.request_counts["octopush"] == 1
    records = sandbox.records("octopush")
    assert len({r["batch_id"] for r in records}) == 1
    assert sorted(r["recipient"] for r in records) == sorted(ledger.get(i).recipient for i in ids)
    request_id = sandbox.core.records_for("octopush")[0].extra["request_id"]
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == MessageStatus.SENT
        assert message.attempts == 1
        # the id Octopush receipts carry: <ticket>:<number>
        assert message.provider_message_id == f"{records[0]['batch_id']}:{message.recipient}"
        trail = [(e.from_status, e.to_status) for e in ledger.events(message_id)]
        assert trail[-2:] == [
            (MessageStatus.QUEUED, MessageStatus.SENDING),
            (MessageStatus.SENDING, MessageStatus.SENT),
        ]
        assert (ledger.events(message_id)[-1].raw or {}).get("batch") == request_id


def test_a_recipient_twice_goes_in_two_requests(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    first = ledger.add_sms("0612300001", TEXT, provider="octopush")
    again = ledger.add_sms("0612300001", TEXT, provider="octopush")
    other = ledger.add_sms("0612300002", TEXT, provider="octopush")
    with session_scope(dispatcher.engine) as session:
        plan = plan_groups(queued_rows(session, [first, again, other]), 500)
    assert [[row.id for row in group] for group in plan] == [[first, other], [again]]
    result = send_chunk(dispatcher, [first, again, other])
    assert result.sent == 3
    # Octopush would have sent once for two rows: two requests, each recipient once per row
    assert Counter(r["recipient"] for r in sandbox.records("octopush")) == {
        "+33612300001": 2,
        "+33612300002": 1,
    }


def test_groups_keep_texts_senders_and_providers_apart(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    same = add_many(ledger, 3)
    other_text = ledger.add_sms("0612399991", "Autre texte", provider="octopush")
    primotexto = ledger.add_sms("0612399992", TEXT, provider="primotexto")
    with session_scope(dispatcher.engine) as session:
        plan = plan_groups(queued_rows(session, [*same, other_text, primotexto]), 500)
    assert [len(group) for group in plan] == [3, 1, 1]
    result = send_chunk(dispatcher, [*same, other_text, primotexto])
    assert result.sent == 5
    assert sandbox.core.request_counts == {"octopush": 2, "primotexto": 1}


def test_groups_hold_at_most_max_size(ledger: Ledger, engine: Engine) -> None:
    ids = add_many(ledger, 7)
    with session_scope(engine) as session:
        plan = plan_groups(queued_rows(session, ids), 3)
    assert [len(group) for group in plan] == [3, 3, 1]


def test_rows_not_queued_are_left_alone(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    ids = add_many(ledger, 3)
    ledger.force(ids[0], status=MessageStatus.CANCELLED)
    result = send_chunk(dispatcher, [*ids, ids[1], "no-such-id"])
    assert result.sent == 2
    assert ledger.status(ids[0]) == MessageStatus.CANCELLED
    assert len(sandbox.records("octopush")) == 2


def test_a_refused_recipient_fails_alone(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    ids = add_many(ledger, 2)
    belgian = ledger.add_sms("+32470123456", TEXT, provider="octopush")
    result = send_chunk(dispatcher, [*ids, belgian])
    assert result.sent == 2
    assert [ledger.status(i) for i in ids] == [MessageStatus.SENT] * 2
    refused = ledger.get(belgian)
    assert refused.status == MessageStatus.FAILED
    assert refused.last_error is not None and "151" in refused.last_error


def test_a_lost_answer_is_settled_by_the_same_request_id(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # processed, then the answer is lost (502): the resend under the same request_id says 120
    sandbox.set_faults("octopush", script=["drop_after"])
    ids = add_many(ledger, 4)
    result = send_chunk(dispatcher, ids)
    assert result.sent == 4
    assert sandbox.core.request_counts["octopush"] == 2
    assert Counter(r["recipient"] for r in sandbox.records("octopush")).most_common(1)[0][1] == 1
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == MessageStatus.SENT
        assert ledger.events(message_id)[-1].provider_status == "120"


def test_answers_lost_twice_leave_the_group_unknown_and_tagged(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("octopush", script=["drop_after", "drop_after"])
    ids = add_many(ledger, 3)
    assert send_chunk(dispatcher, ids).sent == 0
    tags = {ledger.get(i).provider_message_id for i in ids}
    assert [ledger.status(i) for i in ids] == [MessageStatus.UNKNOWN] * 3
    (tag,) = tags
    assert tag is not None and tag.startswith(BATCH_PREFIX)
    # settled later under the same request_id: Octopush remembers it (120), nothing is resent
    assert _settle(dispatcher, ledger.get(ids[0])).sent == len(ids)
    assert [ledger.status(i) for i in ids] == [MessageStatus.SENT] * 3
    assert len(sandbox.records("octopush")) == 3


def test_a_retryable_error_schedules_the_group_without_its_tag(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("octopush", retry_after=None, rate_503=1.0)
    ids = add_many(ledger, 3)
    assert send_chunk(dispatcher, ids).sent == 0
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == MessageStatus.SCHEDULED
        assert message.attempts == 1
        assert message.provider_message_id is None
        assert message.send_at is not None
    assert sandbox.records("octopush") == []


def test_out_of_attempts_the_group_fails_over_one_by_one(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("octopush", retry_after=None, rate_503=1.0)
    ids = add_many(ledger, 2, attempts=dispatcher.settings.dispatch.max_attempts - 1)
    result = send_chunk(dispatcher, ids)
    assert sorted(result.republish) == sorted(ids)
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == MessageStatus.QUEUED
        assert message.provider == "primotexto"


def test_a_worker_lost_mid_request_is_settled_as_a_group(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """The rows stay ``sending`` with their tag; the request did reach Octopush."""
    sandbox.set_faults("octopush", script=["drop_after", "drop_after"])
    ids = add_many(ledger, 3)
    send_chunk(dispatcher, ids)
    # as if the worker had died before writing anything: back to sending, still tagged
    with session_scope(dispatcher.engine) as session:
        session.execute(
            messages_table.update()
            .where(messages_table.c.id.in_(ids))
            .values(status=MessageStatus.SENDING)
        )
    before = sandbox.core.request_counts["octopush"]
    assert _settle(dispatcher, ledger.get(ids[1])).sent == len(ids)
    assert sandbox.core.request_counts["octopush"] == before + 1
    assert [ledger.status(i) for i in ids] == [MessageStatus.SENT] * 3
    assert len(sandbox.records("octopush")) == 3


def test_a_group_whose_request_never_arrived_is_sent_by_the_settling(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    ids = add_many(ledger, 3)
    tag = BATCH_PREFIX + "f" * 32
    with session_scope(dispatcher.engine) as session:
        transition_many(
            session,
            ids,
            MessageStatus.QUEUED,
            MessageStatus.SENDING,
            attempts=1,
            provider_message_id=tag,
        )
    assert _settle(dispatcher, ledger.get(ids[0])).sent == len(ids)
    records = sandbox.core.records_for("octopush")
    assert len(records) == 3 and {r.extra["request_id"] for r in records} == {"f" * 32}
    assert [ledger.status(i) for i in ids] == [MessageStatus.SENT] * 3


def test_a_rate_limited_group_waits_scheduled_without_an_attempt(
    dispatch_settings: Settings,
    make_dispatcher: Callable[..., Dispatcher],
    ledger: Ledger,
    sandbox: Sandbox,
    redis_client: redis.Redis,
) -> None:
    slow = dispatch_settings.model_copy(
        update={"rate_limits": {"octopush": RateLimit(rate=0.01, burst=1)}}
    )
    limiter = RateLimiter(redis_client)
    dispatcher = make_dispatcher(slow, limiter)
    key = limiter_key("octopush", account_id(slow, "octopush"))
    assert limiter.acquire(key, 0.01, 1) == 0.0  # the only token, taken elsewhere
    ids = add_many(ledger, 3)
    assert send_chunk(dispatcher, ids).sent == 0
    for message_id in ids:
        message = ledger.get(message_id)
        assert message.status == MessageStatus.SCHEDULED
        assert message.attempts == 0
    assert sandbox.records("octopush") == []


def test_a_receipt_finds_a_batch_row_settled_by_120(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """A batch settled by 120 never learns its ticket: the receipt finds it by number."""
    (message_id,) = add_many(ledger, 1)
    with session_scope(dispatcher.engine) as session:
        for source, target in (
            (MessageStatus.QUEUED, MessageStatus.SENDING),
            (MessageStatus.SENDING, MessageStatus.SENT),
        ):
            transition_many(
                session, [message_id], source, target, provider_message_id=BATCH_PREFIX + "b" * 32
            )
    recipient = ledger.get(message_id).recipient
    report = StatusReport(
        provider=Provider.OCTOPUSH,
        message_id=f"api110000000042:{recipient}",
        state=DeliveryState.DELIVERED,
        provider_status="DELIVERED",
    )
    assert apply_receipt(dispatcher.engine, report, recipient)
    assert ledger.status(message_id) == MessageStatus.DELIVERED


def test_lone_messages_keep_the_pace_of_the_rate_limit(
    dispatch_settings: Settings,
    make_dispatcher: Callable[..., Dispatcher],
    ledger: Ledger,
    sandbox: Sandbox,
    redis_client: redis.Redis,
) -> None:
    """Each token is taken right before its request: 10/s with burst 1 spreads 4 requests
    over 0.3 s (taken all at first, they would have gone out together)."""
    paced = dispatch_settings.model_copy(
        update={"rate_limits": {"primotexto": RateLimit(rate=10, burst=1)}}
    )
    dispatcher = make_dispatcher(paced, RateLimiter(redis_client))
    ids = [ledger.add_sms(f"06124{i:05d}", f"Code {i}", provider="primotexto") for i in range(4)]
    assert send_chunk(dispatcher, ids).sent == 4
    times = sorted(float(r["accepted_at"]) for r in sandbox.records("primotexto"))
    assert times[-1] - times[0] > 0.2, times


def test_after_a_lost_answer_a_refused_resend_leaves_the_group_unknown(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """The first request went through (answer lost); the resend meets a 503. Retrying later
    under a new request_id would send twice: the group stays unknown, settled by its id."""
    sandbox.set_faults("octopush", retry_after=None, script=["drop_after", "503", "503", "503"])
    ids = add_many(ledger, 3)
    assert send_chunk(dispatcher, ids).sent == 0
    assert [ledger.status(i) for i in ids] == [MessageStatus.UNKNOWN] * 3
    assert _settle(dispatcher, ledger.get(ids[0])).sent == len(ids)
    assert [ledger.status(i) for i in ids] == [MessageStatus.SENT] * 3
    assert Counter(r["recipient"] for r in sandbox.records("octopush")).most_common(1)[0][1] == 1
    assert len(sandbox.records("octopush")) == 3


def test_receipts_of_a_group_in_flight_each_find_their_own_row(
    ledger: Ledger, engine: Engine
) -> None:
    """The worker lost the answer (rows still ``sending``, tagged): each recipient's receipts,
    ACK then DELIVERED, land on that recipient's row although the ticket covers both."""
    ids = add_many(ledger, 2)
    with session_scope(engine) as session:
        transition_many(
            session,
            ids,
            MessageStatus.QUEUED,
            MessageStatus.SENDING,
            provider_message_id=BATCH_PREFIX + "c" * 32,
        )
    numbers = [ledger.get(i).recipient for i in ids]
    for state in ("ACK", "DELIVERED"):
        for number in numbers:
            report = parse_receipt(
                {"message_id": f"api7:{number}", "number": number, "status": state}
            )
            applied = apply_receipt(engine, report, number)
            assert applied is (state == "DELIVERED")
    assert [ledger.status(i) for i in ids] == [MessageStatus.DELIVERED] * 2


def test_which_rows_may_share_a_request_is_the_profiles_batch_capability(
    ledger: Ledger, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    octopush = add_many(ledger, 2)
    primotexto = [ledger.add_sms(f"061239998{i}", TEXT, provider="primotexto") for i in range(2)]
    with session_scope(engine) as session:
        rows = queued_rows(session, [*octopush, *primotexto])
    assert [len(group) for group in plan_groups(rows, 500)] == [2, 1, 1]

    # the profiles say the opposite: Primotexto batches, Octopush does not
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.PRIMOTEXTO,
        replace(registry.PROFILES[Provider.PRIMOTEXTO], batch_max_recipients=10),
    )
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.OCTOPUSH,
        replace(registry.PROFILES[Provider.OCTOPUSH], batch_max_recipients=None),
    )
    assert [len(group) for group in plan_groups(rows, 500)] == [1, 1, 2]
