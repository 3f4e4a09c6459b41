"""The callback outbox: one row per notified move, in the move's own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from postier.config import get_settings
from postier.ledger import outbox
from postier.ledger.db import session_scope
from postier.ledger.models import CallbackEvent, CallbackKind, InboundMessage, MessageStatus
from postier.ledger.outbox import NOTIFIED_STATUSES
from postier.ledger.queries import record_inbound
from postier.ledger.states import (
    ALLOWED_TRANSITIONS,
    transition,
    transition_each,
    transition_many,
)
from tests.ledger.conftest import T0, Ledger

S = MessageStatus
URL = "https://app.example/postier/events"


@pytest.fixture
def global_target(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``callbacks.target`` set for the test (the ledger reads the process's settings)."""
    monkeypatch.setenv("POSTIER_CALLBACKS__TARGET", URL)
    get_settings.cache_clear()
    yield URL
    monkeypatch.delenv("POSTIER_CALLBACKS__TARGET")
    get_settings.cache_clear()


def events(engine: Engine, message_id: str | None = None) -> list[CallbackEvent]:
    with session_scope(engine) as session:
        query = select(CallbackEvent).order_by(CallbackEvent.id)  # type: ignore[arg-type]
        if message_id is not None:
            query = query.where(CallbackEvent.message_id == message_id)  # type: ignore[arg-type]
        rows = list(session.execute(query).scalars())
        for row in rows:
            session.expunge(row)
    return rows


def test_notified_statuses_are_the_issue_s_six_and_expired() -> None:
    assert {S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.UNKNOWN, S.CANCELLED} < (
        NOTIFIED_STATUSES
    )
    assert S.EXPIRED in NOTIFIED_STATUSES
    assert not {S.QUEUED, S.SCHEDULED, S.SENDING} & NOTIFIED_STATUSES


@pytest.mark.parametrize(
    ("from_", "to"),
    [(f, t) for f, targets in ALLOWED_TRANSITIONS.items() for t in sorted(targets)],
)
def test_every_allowed_move_writes_an_event_exactly_when_notified(
    ledger: Ledger, engine: Engine, from_: MessageStatus, to: MessageStatus
) -> None:
    message_id = ledger.add(from_, callback_url=URL, idempotency_key="order-1")
    fields: dict[str, Any] = {"send_at": T0} if to is S.SCHEDULED else {}
    with session_scope(engine) as session:
        assert transition(
            session, message_id, from_, to, provider_status="DLV", detail="why", **fields
        )
    found = events(engine, message_id)
    if to not in NOTIFIED_STATUSES:
        assert found == []
        return
    (event,) = found
    assert (event.kind, event.status, event.from_status) == (CallbackKind.STATUS, to, from_)
    assert (event.sequence, event.target, event.idempotency_key) == (1, URL, "order-1")
    assert (event.provider, event.provider_status, event.reason) == ("octopush", "DLV", "why")
    assert event.attempts == 0 and event.attempt_log == []
    assert event.delivered_at is None and event.given_up_at is None
    assert len(event.event_id) == 32


def test_no_target_no_event(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENDING)
    with session_scope(engine) as session:
        transition(session, message_id, S.SENDING, S.SENT)
    assert events(engine) == []


def test_global_target_applies_to_messages_without_their_own(
    ledger: Ledger, engine: Engine, global_target: str
) -> None:
    own = ledger.add(S.SENDING, callback_url="https://own.example/hook")
    plain = ledger.add(S.SENDING)
    with session_scope(engine) as session:
        transition_many(session, [own, plain], S.SENDING, S.SENT)
    assert {e.message_id: e.target for e in events(engine)} == {
        own: "https://own.example/hook",
        plain: global_target,
    }


def test_sequence_numbers_follow_the_message_s_notified_moves(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(S.SENDING, callback_url=URL)
    moves = [(S.SENDING, S.UNKNOWN), (S.UNKNOWN, S.SENT), (S.SENT, S.DELIVERED)]
    for from_, to in moves:
        with session_scope(engine) as session:
            transition(session, message_id, from_, to)
    found = events(engine, message_id)
    assert [(e.sequence, e.status) for e in found] == [
        (1, S.UNKNOWN),
        (2, S.SENT),
        (3, S.DELIVERED),
    ]
    assert len({e.event_id for e in found}) == 3


def test_transition_each_writes_one_event_per_moved_row(ledger: Ledger, engine: Engine) -> None:
    ids = [ledger.add(S.SENDING, callback_url=URL) for _ in range(3)]
    left_out = ledger.add(S.QUEUED, callback_url=URL)  # not in the sources: no move, no event
    with session_scope(engine) as session:
        moved = transition_each(
            session,
            {ids[0]: {"cost": 1}, ids[1]: {"cost": 2}, ids[2]: {}, left_out: {}},
            S.SENDING,
            S.SENT,
        )
    assert sorted(moved) == sorted(ids)
    assert sorted(str(e.message_id) for e in events(engine)) == sorted(ids)


def test_a_rolled_back_move_leaves_no_event(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENDING, callback_url=URL)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        transition(session, message_id, S.SENDING, S.SENT)
        raise RuntimeError("the worker died before its commit")
    assert events(engine) == []


def test_a_lost_race_writes_no_second_event(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENDING, callback_url=URL)
    for _ in range(2):
        with session_scope(engine) as session:
            transition(session, message_id, S.SENDING, S.SENT)
    assert len(events(engine)) == 1


def test_inbound_messages_get_an_event_when_a_target_is_set(
    engine: Engine, global_target: str
) -> None:
    row = InboundMessage(
        provider="afilnet", provider_message_id="in-1", sender="+33612345678", text="Oui"
    )
    with session_scope(engine) as session:
        assert record_inbound(session, row)
    with session_scope(engine) as session:  # the same message read twice: no second event
        assert not record_inbound(
            session,
            InboundMessage(provider="afilnet", provider_message_id="in-1", sender="+33612345678"),
        )
    (event,) = events(engine)
    assert (event.kind, event.inbound_id, event.target) == (CallbackKind.INBOUND, row.id, URL)
    assert event.message_id is None and event.status is None


def test_the_notifier_gets_the_ids_after_the_commit_only(ledger: Ledger, engine: Engine) -> None:
    told: list[list[int]] = []
    outbox.set_notifier(told.append)
    try:
        message_id = ledger.add(S.SENDING, callback_url=URL)
        with session_scope(engine) as session:
            transition(session, message_id, S.SENDING, S.SENT)
            assert told == []  # not before the commit
        (event,) = events(engine)
        assert told == [[event.id]]
        assert event.published_at is not None  # stamped: beat leaves it to the notifier
        other = ledger.add(S.SENDING, callback_url=URL)
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            transition(session, other, S.SENDING, S.SENT)
            raise RuntimeError("rolled back")
        assert told == [[event.id]]
    finally:
        outbox.set_notifier(None)  # the root conftest restores the process's own


def test_without_a_notifier_rows_wait_unstamped_for_beat(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED, callback_url=URL)
    with session_scope(engine) as session:
        transition(session, message_id, S.QUEUED, S.CANCELLED)
    (event,) = events(engine)
    assert event.published_at is None
