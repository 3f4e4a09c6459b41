"""The counters the database keeps per (provider, status): always equal to a ``COUNT``.

Random sequences of the ledger's writes (bulk inserts, single and bulk transitions, per-row
``transition_each``, direct UPDATEs, deletes as retention and erasure make them, folds) are
applied on SQLite and PostgreSQL, and after each step the counters read by ``counted`` are
compared with a ``GROUP BY`` over ``messages``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text, update

from postier.ledger.counts import counted, fold_counts, fold_pending, recount
from postier.ledger.db import session_scope
from postier.ledger.models import (
    LIVE_STATUSES,
    MessageStatus,
    message_count_deltas_table,
    messages_table,
)
from postier.ledger.queries import count_by_status, count_live_by_provider, insert_messages
from postier.ledger.states import (
    ALLOWED_TRANSITIONS,
    transition,
    transition_each,
    transition_many,
)
from tests.ledger.conftest import T0, Ledger, message_row

S = MessageStatus
PROVIDERS = ("octopush", "primotexto", None)


def _truth(engine: Engine) -> Counter[tuple[str | None, str]]:
    m = messages_table
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.c.provider, m.c.status, func.count()).group_by(m.c.provider, m.c.status)
        )
        return Counter({(provider, str(status)): int(n) for provider, status, n in rows})


def _counters(engine: Engine) -> Counter[tuple[str | None, str]]:
    with session_scope(engine) as session:
        return Counter({(p, s.value): n for p, s, n in counted(session)})


def _ids(engine: Engine) -> list[tuple[str, str]]:
    m = messages_table
    with engine.connect() as connection:
        return [(str(i), str(s)) for i, s in connection.execute(select(m.c.id, m.c.status))]


# one step of a random history: what it does, and a number to pick rows and values with
_steps = st.tuples(
    st.sampled_from(
        ["insert", "move", "move_many", "move_each", "provider", "stamp", "delete", "fold"]
    ),
    st.integers(min_value=0, max_value=10_000),
)


def _apply(engine: Engine, step: str, pick: int) -> None:
    rows = _ids(engine)
    if step == "insert" or not rows:
        count = 1 + pick % 4
        statuses = [S.QUEUED if (pick >> k) % 2 else S.SCHEDULED for k in range(count)]
        new = [
            message_row(
                provider=PROVIDERS[(pick + k) % 3],
                status=status,
                send_at=T0 if status is S.SCHEDULED else None,
                # now and then an idempotency key met before: that row is not inserted
                idempotency_key=f"k{(pick + k) % 7}" if k % 2 else None,
            )
            for k, status in enumerate(statuses)
        ]
        with session_scope(engine) as session:
            insert_messages(session, new, record_events=bool(pick % 2))
        return
    message_id, status = rows[pick % len(rows)]
    targets = sorted(ALLOWED_TRANSITIONS[S(status)])
    chosen = [row for k, row in enumerate(rows) if (pick >> (k % 12)) % 2] or rows[:1]
    with session_scope(engine) as session:
        if step == "move" and targets:
            to = targets[pick % len(targets)]
            extra: dict[str, Any] = {"send_at": T0} if to is S.SCHEDULED else {}
            transition(session, message_id, S(status), to, **extra)
        elif step == "move_many":
            # some rows are not in the source status: the conditional UPDATE leaves them
            transition_many(session, [i for i, _ in chosen], S.QUEUED, S.CANCELLED)
        elif step == "move_each":
            changes = {i: {"provider_message_id": f"p{i[:6]}", "cost": 1} for i, _ in chosen}
            transition_each(session, changes, [S.QUEUED, S.SCHEDULED], S.CANCELLED)
        elif step == "provider":  # a failover to another provider
            session.execute(
                update(messages_table)
                .where(messages_table.c.id == message_id)
                .values(provider=PROVIDERS[pick % 3])
            )
        elif step == "stamp":  # an UPDATE that moves no count
            session.execute(update(messages_table).values(status_checked_at=T0))
        elif step == "delete":  # retention, erasure
            session.execute(
                delete(messages_table).where(messages_table.c.id.in_([i for i, _ in chosen]))
            )
        elif step == "fold":
            fold_counts(session, limit=1 + pick % 5)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=st.lists(_steps, min_size=1, max_size=12))
def test_counters_equal_a_count_after_any_history(
    engine: Engine, history: list[tuple[str, int]]
) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM delivery_events"))
        connection.execute(text("DELETE FROM messages"))
    for step, pick in history:
        _apply(engine, step, pick)
        assert _counters(engine) == +_truth(engine), f"after {step}"
    fold_pending(engine)
    assert _counters(engine) == +_truth(engine)
    with engine.connect() as connection:
        left = connection.execute(select(func.count()).select_from(message_count_deltas_table))
        assert left.scalar_one() == 0


def test_a_rolled_back_move_counts_nothing(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED, provider="octopush")
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        transition(session, message_id, S.QUEUED, S.SENDING)
        raise RuntimeError("the worker died")
    assert _counters(engine) == Counter({("octopush", "queued"): 1})


def test_counts_read_from_the_counters_and_the_unfolded_deltas(
    ledger: Ledger, engine: Engine
) -> None:
    ledger.add(S.QUEUED, provider="octopush")
    ledger.add(S.SENT, provider="octopush")
    ledger.add(S.DELIVERED, provider="primotexto")
    with session_scope(engine) as session:
        every = count_by_status(session)
        live = count_by_status(session, statuses=LIVE_STATUSES)
        by_provider = count_live_by_provider(session)
    assert (every["queued"], every["sent"], every["delivered"], every["failed"]) == (1, 1, 1, 0)
    assert set(live) == {s.value for s in LIVE_STATUSES}
    assert sorted(by_provider) == [("octopush", S.QUEUED, 1), ("octopush", S.SENT, 1)]
    folded = fold_pending(engine)
    # SQLite counts in place; PostgreSQL appended deltas, folded now
    assert (folded == 0) is (engine.dialect.name == "sqlite")
    with session_scope(engine) as session:
        assert count_by_status(session) == every


def test_recount_rebuilds_counters_that_drifted(ledger: Ledger, engine: Engine) -> None:
    ledger.add(S.QUEUED, provider="octopush")
    ledger.add(S.QUEUED, provider=None)
    with engine.begin() as connection:
        connection.execute(text("UPDATE message_counts SET total = 99"))
    with session_scope(engine) as session:
        recount(session)
    assert _counters(engine) == Counter({("octopush", "queued"): 1, (None, "queued"): 1})


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_folds_in_batches_until_none_is_left(ledger: Ledger, engine: Engine) -> None:
    fold_pending(engine)  # the deltas of the fixture's emptying of the ledger
    for _ in range(7):
        ledger.add(S.QUEUED, provider="octopush")
    assert fold_pending(engine, batch=2) == 7
    assert fold_pending(engine, batch=2) == 0
    assert _counters(engine) == Counter({("octopush", "queued"): 7})
