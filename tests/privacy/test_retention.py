"""The retention pass on SQLite and PostgreSQL: what is older than its period is redacted, in
bounded batches; states, counts, costs and timings stay; unsent messages and recent data stay;
an inbound STOP becomes an opt-out before its sender goes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import count
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from postier.config import RetentionSettings
from postier.ledger.db import session_scope
from postier.ledger.models import (
    Channel,
    MessageKind,
    MessageStatus,
    api_idempotency_table,
    campaign_audiences_table,
    inbound_messages_table,
    messages_table,
    opt_outs_table,
    utcnow,
)
from postier.privacy.retention import REDACTED, redact_expired
from tests.privacy.conftest import OTHER, PERSON, seed_person, traces_of

DEFAULTS = RetentionSettings()


def messages(engine: Engine) -> dict[str, sa.Row[Any]]:
    with session_scope(engine) as session:
        return {row.id: row for row in session.execute(sa.select(messages_table)).all()}


def test_the_default_period_is_30_days_for_every_category() -> None:
    assert (
        DEFAULTS.texts_days,
        DEFAULTS.numbers_days,
        DEFAULTS.provider_answers_days,
        DEFAULTS.inbound_days,
        DEFAULTS.audiences_days,
    ) == (30, 30, 30, 30, 30)


def test_expired_data_leaves_no_trace_but_statistics_stay(engine: Engine) -> None:
    seeded = seed_person(engine)
    before = messages(engine)

    report = redact_expired(engine, DEFAULTS)

    assert report.complete
    # the opt-out list is kept in clear (a STOP is honoured as long as the number exists;
    # ``postier erase`` turns it into a hash); the unsent message keeps what it needs to go
    left = traces_of(engine, PERSON, skip=("opt_outs",))
    # what is left: the running campaign's audience and chunk, the scheduled message, and a
    # recent message to someone else that names the number
    assert left == [
        "campaign_audiences.content",
        "campaign_chunks.contacts",
        "messages.body",
        "messages.idempotency_key",
        "messages.payload",
        "messages.recipient",
    ]
    after = messages(engine)
    queued = after[seeded.queued]
    assert (queued.recipient, queued.status) == (PERSON, MessageStatus.SCHEDULED)
    settled = after[seeded.settled]
    assert (settled.recipient, settled.body, settled.last_error) == (REDACTED, "", None)
    assert settled.payload == {"sender": "Postier", "template_id": "7"}
    assert settled.provider_message_id == "api1"
    for message_id, old in before.items():
        new = after[message_id]
        assert (new.status, new.cost, new.parts, new.attempts, new.created_at) == (
            old.status,
            old.cost,
            old.parts,
            old.attempts,
            old.created_at,
        )
    # recent data stays whole
    assert after[seeded.recent].body == "Paul, appelez 0612345678"
    with session_scope(engine) as session:
        contents = dict(
            session.execute(
                sa.select(
                    campaign_audiences_table.c.campaign_id, campaign_audiences_table.c.content
                )
            ).all()
        )
    assert contents[seeded.campaign_done] == ""  # finished: its audience is gone
    assert PERSON in contents[seeded.campaign_running]  # still running: kept


def test_once_everything_is_old_and_settled_nothing_is_left(engine: Engine) -> None:
    seed_person(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.update(messages_table).values(
                status=MessageStatus.DELIVERED, updated_at=utcnow() - timedelta(days=31)
            )
        )
        connection.execute(
            sa.update(sa.table("campaigns", sa.column("status"))).values(status="done")
        )

    redact_expired(engine, DEFAULTS)

    assert traces_of(engine, PERSON, skip=("opt_outs",)) == []


def test_an_inbound_stop_becomes_an_opt_out_before_its_sender_goes(engine: Engine) -> None:
    seed_person(engine)
    with engine.begin() as connection:
        connection.execute(sa.delete(opt_outs_table))

    report = redact_expired(engine, DEFAULTS)

    assert report.opt_outs_recorded == 1
    with session_scope(engine) as session:
        assert set(session.execute(sa.select(opt_outs_table.c.recipient)).scalars()) == {PERSON}
        senders = set(session.execute(sa.select(inbound_messages_table.c.sender)).scalars())
    assert senders == {REDACTED}


def test_zero_keeps_a_category_forever(engine: Engine) -> None:
    seed_person(engine)
    keep = RetentionSettings(
        texts_days=0, numbers_days=0, provider_answers_days=0, inbound_days=0, audiences_days=0
    )

    report = redact_expired(engine, keep)

    assert report.total == 0 and len(report.skipped) == 5
    assert len(traces_of(engine, PERSON)) >= 12


def test_api_idempotency_records_end_after_their_window(engine: Engine) -> None:
    now = utcnow()
    ages = {"old": timedelta(days=8), "edge": timedelta(days=7, seconds=1), "young": timedelta(0)}
    with session_scope(engine) as session:
        for key, age in ages.items():
            session.execute(
                sa.insert(api_idempotency_table).values(
                    api_key_id="0123456789ab",
                    key=key,
                    request_hash="0" * 64,
                    created_at=now - age,
                )
            )

    report = redact_expired(engine, RetentionSettings(batch_size=1), now=now)

    assert report.idempotency_keys == 2
    with session_scope(engine) as session:
        left = session.execute(sa.select(api_idempotency_table.c.key)).scalars().all()
    assert left == ["young"]
    keep = redact_expired(engine, RetentionSettings(idempotency_keys_days=0), now=now)
    assert "idempotency_keys" in keep.skipped


def test_data_younger_than_its_period_stays(engine: Engine) -> None:
    seed_person(engine, age=timedelta(days=10))

    assert redact_expired(engine, DEFAULTS).total == 0


def add_settled(engine: Engine, how_many: int) -> None:
    old = utcnow() - timedelta(days=60)
    with session_scope(engine) as session:
        session.execute(
            sa.insert(messages_table),
            [
                {
                    "id": f"{i:032x}",
                    "channel": Channel.SMS,
                    "kind": MessageKind.SMS,
                    "provider": "primotexto",
                    "recipient": f"+336{i:08d}",
                    "body": "Votre code : 1",
                    "payload": {},
                    "category": "notification",
                    "status": MessageStatus.DELIVERED,
                    "created_at": old,
                    "updated_at": old,
                }
                for i in range(how_many)
            ],
        )


def test_a_pass_works_in_bounded_batches_and_stops_when_its_time_is_up(engine: Engine) -> None:
    add_settled(engine, 7)
    small = RetentionSettings(batch_size=2, pass_budget=10.0)
    ticks: Iterator[int] = count()

    # a clock that moves 4 s per reading: the pass runs two batches, then stops
    cut_short = redact_expired(engine, small, clock=lambda: 4.0 * next(ticks))
    assert not cut_short.complete and cut_short.texts == 4

    rest = redact_expired(engine, small)
    assert rest.complete and rest.texts == 3 and rest.numbers == 7
    assert all(m.recipient == REDACTED and m.body == "" for m in messages(engine).values())


def test_beat_runs_the_pass() -> None:
    from postier import tasknames
    from postier.config import CampaignSettings, DispatchSettings
    from scheduler.schedule import beat_schedule

    entries = beat_schedule(DispatchSettings(), CampaignSettings(), RetentionSettings(interval=60))
    entry = entries["reap-expired-personal-data"]
    assert (entry["task"], entry["schedule"]) == (tasknames.REAP_EXPIRED_PERSONAL_DATA, 60)
    assert entry["options"]["queue"] == tasknames.QUEUE_SCHEDULED
    assert OTHER  # the seed's second person is used by the erasure tests


def test_settled_callback_events_go_with_the_provider_answers(engine: Engine) -> None:
    """An event's reason copies its move's detail: settled ones older than the period go;
    young ones and ones still owed to the application stay."""
    from postier.ledger.models import CallbackKind, callback_events_table

    now = utcnow()
    old = now - timedelta(days=40)
    young = now - timedelta(days=2)

    def event(created: Any, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"{len(rows):032d}",
            "kind": CallbackKind.STATUS,
            "reason": "credits exhausted",
            "occurred_at": created,
            "created_at": created,
            "next_attempt_at": created,
            "target": "https://app.example/e",
            "attempts": 1,
            "attempt_log": [],
            "delivered_at": None,
            "given_up_at": None,
            **fields,
        }

    rows: list[dict[str, Any]] = []
    for created, fields in [
        (old, {"delivered_at": old}),  # settled and old: goes
        (old, {"given_up_at": old}),  # settled and old: goes
        (young, {"delivered_at": young}),  # young: stays
        (old, {}),  # still owed (never given up): stays
    ]:
        rows.append(event(created, **fields))
    with session_scope(engine) as session:
        session.execute(sa.insert(callback_events_table), rows)
    report = redact_expired(engine, DEFAULTS, now=now)
    assert report.provider_answers == 2
    with session_scope(engine) as session:
        left = session.execute(sa.select(callback_events_table.c.created_at)).scalars().all()
    assert sorted(left) == sorted([young, old])
