"""The state machine (postier.ledger.states): the table, conditional moves, their events."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from postier.ledger.db import session_scope
from postier.ledger.models import LIVE_STATUSES, DeliveryEvent, Message, MessageStatus
from postier.ledger.queries import claim_for_sending, events_for, get_message
from postier.ledger.states import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    INITIAL_STATUSES,
    IllegalTransition,
    can_transition,
    is_final,
    transition,
    transition_each,
    transition_many,
)
from tests.ledger.conftest import T0, Ledger

S = MessageStatus
ALL_PAIRS = list(itertools.product(MessageStatus, MessageStatus))
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED_TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED_TRANSITIONS[a]]


def _pair_id(pair: tuple[MessageStatus, MessageStatus]) -> str:
    return f"{pair[0]}->{pair[1]}"


def _event_count(engine: Engine, message_id: str) -> int:
    with session_scope(engine) as session:
        return len(events_for(session, message_id))


# -- the table itself --------------------------------------------------------------------


def test_the_table_covers_every_status_and_the_documented_path() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(MessageStatus)
    happy_path = [S.SCHEDULED, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED]
    for a, b in itertools.pairwise(happy_path):
        assert can_transition(a, b)
    assert can_transition(S.SENT, S.UNDELIVERED)
    assert can_transition(S.FAILED, S.QUEUED)  # a person retries
    for status in (S.DELIVERED, S.UNDELIVERED, S.CANCELLED):
        assert ALLOWED_TRANSITIONS[status] == frozenset()
    assert not any(a in ALLOWED_TRANSITIONS[a] for a in MessageStatus)  # no self-loops


def test_every_status_is_reachable_from_creation() -> None:
    seen = set(INITIAL_STATUSES)
    frontier = list(INITIAL_STATUSES)
    while frontier:
        for nxt in ALLOWED_TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(MessageStatus)


def test_is_final() -> None:
    assert {s for s in MessageStatus if is_final(s)} == FINAL_STATUSES
    # the partial index over live rows holds exactly the statuses that are not final
    assert set(MessageStatus) - set(LIVE_STATUSES) == FINAL_STATUSES
    assert is_final(S.EXPIRED)
    assert ALLOWED_TRANSITIONS[S.EXPIRED] == {S.DELIVERED, S.UNDELIVERED}  # a late receipt
    assert is_final("delivered")
    assert not is_final(S.UNKNOWN)
    assert not is_final(S.SENT)


# -- every pair, on both databases ---------------------------------------------------------


@pytest.mark.parametrize("pair", LEGAL, ids=_pair_id)
def test_legal_transition_moves_the_row_and_writes_one_event(
    ledger: Ledger, engine: Engine, pair: tuple[MessageStatus, MessageStatus]
) -> None:
    source, target = pair
    message_id = ledger.add(source)
    before = _event_count(engine, message_id)
    extra = {"send_at": T0 + timedelta(hours=1)} if target is S.SCHEDULED else {}
    with session_scope(engine) as session:
        moved = transition(
            session,
            message_id,
            source,
            target,
            provider_status="PS",
            detail="why",
            raw={"answer": 1},
            now=T0,
            **extra,
        )
    assert moved is True
    with session_scope(engine) as session:
        message = get_message(session, message_id)
        events = events_for(session, message_id)
    assert message is not None
    assert message.status is target
    assert message.previous_status is source
    assert message.updated_at == T0
    assert len(events) == before + 1
    last = events[-1]
    assert (last.from_status, last.to_status) == (source, target)
    assert (last.provider_status, last.detail, last.at) == ("PS", "why", T0)
    assert last.raw == {"answer": 1}


@pytest.mark.parametrize("pair", ILLEGAL, ids=_pair_id)
def test_illegal_transition_raises_before_touching_the_row(
    ledger: Ledger, engine: Engine, pair: tuple[MessageStatus, MessageStatus]
) -> None:
    source, target = pair
    message_id = ledger.add(source)
    before = _event_count(engine, message_id)
    with pytest.raises(IllegalTransition) as caught, session_scope(engine) as session:
        transition(session, message_id, source, target, send_at=T0)
    assert (caught.value.from_, caught.value.to) == (source, target)
    with session_scope(engine) as session:
        message = get_message(session, message_id)
    assert message is not None
    assert message.status is source
    assert _event_count(engine, message_id) == before


# -- conditional behaviour ----------------------------------------------------------------


def test_transition_from_a_status_the_row_is_not_in_changes_nothing(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(S.SENT)
    with session_scope(engine) as session:
        assert transition(session, message_id, S.SENDING, S.FAILED, last_error="x") is False
    with session_scope(engine) as session:
        message = get_message(session, message_id)
    assert message is not None
    assert (message.status, message.last_error) == (S.SENT, None)
    assert _event_count(engine, message_id) == 1


def test_transition_of_an_unknown_id_is_false(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert transition(session, "0" * 32, S.QUEUED, S.CANCELLED) is False


def test_any_of_several_sources_and_the_event_names_the_actual_one(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(S.UNKNOWN)
    with session_scope(engine) as session:
        assert transition(session, message_id, [S.SENT, S.UNKNOWN], S.DELIVERED)
    with session_scope(engine) as session:
        last = events_for(session, message_id)[-1]
    assert (last.from_status, last.to_status) == (S.UNKNOWN, S.DELIVERED)


def test_every_source_must_allow_the_target(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED)
    with pytest.raises(IllegalTransition), session_scope(engine) as session:
        # queued → cancelled is fine, sent → cancelled is not: refused as a whole
        transition(session, message_id, {S.QUEUED, S.SENT}, S.CANCELLED)
    with pytest.raises(ValueError, match="no status"), session_scope(engine) as session:
        transition(session, message_id, [], S.CANCELLED)


def test_fields_are_set_with_the_status(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENDING)
    with session_scope(engine) as session:
        transition(
            session,
            message_id,
            S.SENDING,
            S.SENT,
            provider_message_id="ticket-1",
            cost=0.05,
            parts=2,
            attempts=Message.attempts + 10,
        )
    with session_scope(engine) as session:
        message = get_message(session, message_id)
    assert message is not None
    assert (message.provider_message_id, float(message.cost or 0), message.parts) == (
        "ticket-1",
        0.05,
        2,
    )
    assert message.attempts == 10


def test_managed_or_unknown_fields_are_refused(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED)
    for bad in ({"status": S.SENT}, {"updated_at": T0}, {"colour": "blue"}):
        with pytest.raises(TypeError), session_scope(engine) as session:
            transition(session, message_id, S.QUEUED, S.CANCELLED, **bad)
    assert _event_count(engine, message_id) == 1


def test_moving_to_scheduled_needs_send_at(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED)
    with pytest.raises(ValueError, match="send_at"), session_scope(engine) as session:
        transition(session, message_id, S.QUEUED, S.SCHEDULED)
    with session_scope(engine) as session:
        assert transition(session, message_id, S.QUEUED, S.SCHEDULED, send_at=T0)


def test_objects_loaded_in_the_session_follow_the_update(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENDING)
    with session_scope(engine) as session:
        loaded = get_message(session, message_id)
        transition(session, message_id, S.SENDING, S.SENT, provider_message_id="p-1")
        assert loaded is not None
        assert (loaded.status, loaded.provider_message_id) == (S.SENT, "p-1")
        transition(session, message_id, S.SENT, S.UNKNOWN, attempts=Message.attempts + 1)
        assert (loaded.status, loaded.attempts) == (S.UNKNOWN, 1)
    assert loaded.status is S.UNKNOWN  # still readable once the session is closed


def test_transition_many_moves_only_rows_in_the_source_status(
    ledger: Ledger, engine: Engine
) -> None:
    queued = [ledger.add(S.QUEUED) for _ in range(3)]
    scheduled = ledger.add(S.SCHEDULED)
    sent = ledger.add(S.SENT)
    with session_scope(engine) as session:
        moved = transition_many(
            session,
            [*queued, scheduled, sent, queued[0]],
            [S.QUEUED, S.SCHEDULED],
            S.CANCELLED,
            detail="campaign cancelled",
            chunk_size=2,
        )
    assert sorted(moved) == sorted([*queued, scheduled])
    with session_scope(engine) as session:
        assert get_message(session, sent).status is S.SENT  # type: ignore[union-attr]
        cancelled = session.execute(
            select(func.count())
            .select_from(DeliveryEvent)
            .where(DeliveryEvent.to_status == S.CANCELLED)  # type: ignore[arg-type]
        ).scalar_one()
    assert cancelled == 4


# -- random walks --------------------------------------------------------------------------

attempts = st.lists(
    st.tuples(
        st.sets(st.sampled_from(list(MessageStatus)), min_size=1, max_size=3),
        st.sampled_from(list(MessageStatus)),
    ),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(start=st.sampled_from(sorted(INITIAL_STATUSES)), steps=attempts)
def test_random_attempts_follow_the_table_with_one_event_per_change(
    ledger: Ledger,
    engine: Engine,
    start: MessageStatus,
    steps: list[tuple[set[MessageStatus], MessageStatus]],
) -> None:
    message_id = ledger.add(start)
    current = start
    changes = 0
    for sources, target in steps:
        legal = all(target in ALLOWED_TRANSITIONS[s] for s in sources)
        try:
            with session_scope(engine) as session:
                moved = transition(
                    session, message_id, sources, target, send_at=T0 + timedelta(minutes=5)
                )
        except IllegalTransition:
            assert not legal
            continue
        assert legal
        assert moved == (current in sources)
        if moved:
            current = target
            changes += 1
    with session_scope(engine) as session:
        message = get_message(session, message_id)
        events = events_for(session, message_id)
    assert message is not None
    assert message.status is current
    assert len(events) == changes + 1
    assert events[0].from_status is None
    assert events[0].to_status is start
    for previous, event in itertools.pairwise(events):
        assert event.from_status is previous.to_status
        assert event.to_status in ALLOWED_TRANSITIONS[previous.to_status]


# -- contention ----------------------------------------------------------------------------


def _claim_concurrently(engine: Engine, message_id: str, workers: int) -> list[str | None]:
    """What each of ``workers`` threads got from claiming ``message_id`` at the same moment."""
    barrier = threading.Barrier(workers)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            barrier.wait(timeout=5)
            with session_scope(engine) as session:
                claimed = claim_for_sending(session, message_id)
                results.append(claimed.id if claimed else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    return results


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_claiming_one_message_exactly_one_wins(
    ledger: Ledger, engine: Engine, workers: int
) -> None:
    for _ in range(6):
        message_id = ledger.add(S.QUEUED)
        results = _claim_concurrently(engine, message_id, workers)
        assert sorted(results, key=str) == sorted([message_id] + [None] * (workers - 1), key=str)
        with session_scope(engine) as session:
            message = get_message(session, message_id)
            events = events_for(session, message_id)
        assert message is not None
        assert (message.status, message.attempts) == (S.SENDING, 1)
        assert [e.to_status for e in events] == [S.QUEUED, S.SENDING]


def test_transition_each_sets_each_rows_own_values_across_statements(
    ledger: Ledger, engine: Engine
) -> None:
    """Past 200 ids the move takes several statements: each row still gets its own values,
    a row that leaves a column out keeps its current one, and rows in no source stay."""
    ids = [ledger.add(MessageStatus.SENDING, parts=1) for _ in range(450)]
    stay = ledger.add(MessageStatus.QUEUED)
    changes: dict[str, dict[str, object]] = {
        id_: ({"provider_message_id": f"p-{n}", "parts": 1 + n % 3} if n % 4 else {})
        for n, id_ in enumerate(ids)
    }
    changes[stay] = {"provider_message_id": "never"}
    with session_scope(engine) as session:
        moved = transition_each(session, changes, MessageStatus.SENDING, MessageStatus.SENT)
    assert sorted(moved) == sorted(ids)
    with session_scope(engine) as session:
        for n, id_ in enumerate(ids):
            message = get_message(session, id_)
            assert message is not None and message.status is MessageStatus.SENT
            expected = (f"p-{n}", 1 + n % 3) if n % 4 else (None, 1)
            assert (message.provider_message_id, message.parts) == expected
        kept = get_message(session, stay)
        assert kept is not None
        assert (kept.status, kept.provider_message_id) == (MessageStatus.QUEUED, None)


def test_transition_each_refuses_a_column_set_both_for_all_and_for_each(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(MessageStatus.SENDING)
    with (
        pytest.raises(TypeError, match="set for every row and for each: parts"),
        session_scope(engine) as session,
    ):
        transition_each(
            session, {message_id: {"parts": 2}}, MessageStatus.SENDING, MessageStatus.SENT, parts=1
        )


def test_transition_each_refreshes_a_message_its_session_holds(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(MessageStatus.SENDING)
    with session_scope(engine) as session:
        held = get_message(session, message_id)
        assert held is not None
        transition_each(
            session,
            {message_id: {"provider_message_id": "p-1"}},
            MessageStatus.SENDING,
            MessageStatus.SENT,
        )
        assert (held.status, held.provider_message_id) == (MessageStatus.SENT, "p-1")


def test_columns_the_move_manages_or_that_do_not_exist_are_refused(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(MessageStatus.SENDING)
    with session_scope(engine) as session:
        with pytest.raises(TypeError, match="not settable by a transition: callback_seq"):
            transition(
                session, message_id, MessageStatus.SENDING, MessageStatus.SENT, callback_seq=9
            )
        with pytest.raises(TypeError, match="not settable by a transition: colour"):
            transition_each(
                session, {message_id: {"colour": "red"}}, MessageStatus.SENDING, MessageStatus.SENT
            )
