"""The dispatcher's queries (postier.ledger.queries), on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select

from postier.ledger.db import session_scope
from postier.ledger.models import (
    LIVE_STATUSES,
    Channel,
    DeliveryEvent,
    InboundMessage,
    Message,
    MessageStatus,
    messages_table,
    new_message_id,
)
from postier.ledger.queries import (
    AwaitingDelivery,
    awaiting_delivery,
    claim_for_sending,
    claim_unpublished,
    count_by_status,
    count_live_by_provider,
    detached_message,
    events_for,
    find_by_provider_message_id,
    get_by_idempotency_key,
    get_message,
    insert_messages,
    list_messages,
    mark_inbound_dispatched,
    mark_published,
    mark_status_checked,
    oldest_update_in,
    record_inbound,
    release_due,
    store_messages,
    stuck_sending,
    undispatched_inbound,
    unpublished,
)
from postier.ledger.states import transition
from tests.ledger.conftest import T0, Ledger, message_row

S = MessageStatus
MINUTE = timedelta(minutes=1)


def message_row_id(row: Message | dict[str, Any]) -> str:
    return row.id if isinstance(row, Message) else str(row["id"])


def _count(engine: Engine, model: type[Message] | type[DeliveryEvent]) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# -- insert_messages -----------------------------------------------------------------------


def test_insert_returns_ids_in_order_and_writes_one_creation_event_each(engine: Engine) -> None:
    as_object = Message(**message_row(recipient="+33700000000"))
    rows: list[Message | dict[str, Any]] = [
        message_row(),
        message_row(status=S.SCHEDULED, send_at=T0),
        as_object,
    ]
    with session_scope(engine) as session:
        ids = insert_messages(session, rows)
    assert ids == [message_row_id(rows[0]), message_row_id(rows[1]), as_object.id]
    with session_scope(engine) as session:
        for message_id, status in zip(ids, [S.QUEUED, S.SCHEDULED, S.QUEUED], strict=True):
            message = get_message(session, message_id)
            assert message is not None
            assert message.status is status
            events = events_for(session, message_id)
            assert [(e.from_status, e.to_status, e.detail) for e in events] == [
                (None, status, "created")
            ]
            assert events[0].at == message.created_at


def test_insert_mapping_rows_get_defaults(engine: Engine) -> None:
    with session_scope(engine) as session:
        (message_id,) = insert_messages(
            session, [{"channel": "sms", "kind": "sms", "recipient": "+33612345678"}]
        )
    with session_scope(engine) as session:
        message = get_message(session, message_id)
    assert message is not None
    assert len(message_id) == 32
    assert (message.status, message.body, message.payload, message.attempts) == (
        S.QUEUED,
        "",
        {},
        0,
    )
    assert message.category == "notification"


def test_insert_refuses_bad_rows_before_writing(engine: Engine) -> None:
    bad_rows = [
        message_row(status=S.SENT),
        message_row(status=S.SCHEDULED, send_at=None),
        {"channel": "sms", "kind": "sms"},
        {"channel": "sms", "kind": "sms", "recipient": "+336", "colour": "blue"},
    ]
    for bad in bad_rows:
        with pytest.raises((ValueError, TypeError)), session_scope(engine) as session:
            insert_messages(session, [message_row(), bad])
    assert _count(engine, Message) == 0


def test_store_says_which_rows_it_inserted(engine: Engine) -> None:
    """A chunk stored again inserts nothing, and says so (the campaign fan-out counts on it);
    a row given with an id already stored leaves the stored row as it was."""
    rows = [message_row() for _ in range(30)]
    with session_scope(engine) as session:
        first = store_messages(session, rows)
    assert first.ids == [row["id"] for row in rows]
    assert first.inserted == set(first.ids)
    again = [*rows[:10], *(message_row() for _ in range(5))]
    again[0] = {**again[0], "body": "changed"}
    with session_scope(engine) as session:
        second = store_messages(session, again)
    assert second.ids == [row["id"] for row in again]
    assert second.inserted == {row["id"] for row in again[10:]}
    with session_scope(engine) as session:
        stored = get_message(session, rows[0]["id"])
        assert stored is not None and stored.body == rows[0]["body"]
        assert [e.to_status for e in events_for(session, rows[0]["id"])] == [S.QUEUED]
    assert _count(engine, Message) == 35
    assert _count(engine, DeliveryEvent) == 35


def test_a_stored_batch_stays_in_its_transaction(engine: Engine) -> None:
    """The SQLite move runs in a savepoint (rolled back and run again with RETURNING when a
    row was stored already): neither way may commit on its own. A batch all new, then one
    half stored already, each rolled back with its transaction, leaves the ledger as it was;
    the second, committed, inserts only its new half, with one event each."""
    stored = [message_row() for _ in range(6)]
    with session_scope(engine) as session:
        store_messages(session, stored)
    fresh = [message_row() for _ in range(6)]
    for batch in (fresh, [*stored[:3], *fresh[:3]]):
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            result = store_messages(session, batch)
            assert result.inserted == {row["id"] for row in batch if row in fresh}
            raise RuntimeError("the caller's transaction fails after the insert")
        assert _count(engine, Message) == 6
        assert _count(engine, DeliveryEvent) == 6
    with session_scope(engine) as session:
        result = store_messages(session, [*stored[:3], *fresh[:3]])
    assert result.inserted == {row["id"] for row in fresh[:3]}
    assert (_count(engine, Message), _count(engine, DeliveryEvent)) == (9, 9)


def test_insert_nothing(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert insert_messages(session, []) == []


def test_insert_with_existing_idempotency_keys_returns_the_stored_ids(engine: Engine) -> None:
    first = [message_row(idempotency_key=f"order-{n}") for n in range(3)]
    with session_scope(engine) as session:
        stored = insert_messages(session, first)
    again = [
        message_row(idempotency_key="order-1", body="changed"),
        message_row(idempotency_key="order-9"),
        message_row(),
        message_row(idempotency_key="order-0"),
    ]
    with session_scope(engine) as session:
        ids = insert_messages(session, again)
    assert ids == [stored[1], again[1]["id"], again[2]["id"], stored[0]]
    assert _count(engine, Message) == 5
    assert _count(engine, DeliveryEvent) == 5  # no event for the rows not inserted
    with session_scope(engine) as session:
        kept = get_message(session, stored[1])
    assert kept is not None
    assert kept.body == first[1]["body"]


def test_insert_with_duplicate_keys_inside_the_batch(engine: Engine) -> None:
    rows = [
        message_row(idempotency_key="k1"),
        message_row(idempotency_key="k2"),
        message_row(idempotency_key="k1"),
        message_row(),
        message_row(idempotency_key="k2"),
        message_row(idempotency_key="k1"),
    ]
    with session_scope(engine) as session:
        ids = insert_messages(session, rows)
    k1, k2 = rows[0]["id"], rows[1]["id"]
    assert ids == [k1, k2, k1, rows[3]["id"], k2, k1]
    assert _count(engine, Message) == 3
    assert _count(engine, DeliveryEvent) == 3
    with session_scope(engine) as session:
        assert get_by_idempotency_key(session, "k2").id == k2  # type: ignore[union-attr]
        assert get_by_idempotency_key(session, "nope") is None


def test_inserting_the_same_batch_twice_stores_it_once(engine: Engine) -> None:
    """A producer retrying after an unclear commit sends the same ids again."""
    rows = [message_row(), message_row(idempotency_key="a"), message_row()]
    with session_scope(engine) as session:
        first = insert_messages(session, rows)
    with session_scope(engine) as session:
        second = insert_messages(session, rows)
    assert first == second
    assert _count(engine, Message) == 3
    assert _count(engine, DeliveryEvent) == 3


def test_insert_twenty_thousand_rows(engine: Engine) -> None:
    rows = [
        message_row(
            idempotency_key=f"campaign-7/{n}" if n % 3 else None,
            recipient=f"+336{n:08d}",
            campaign_id="c" * 32,
        )
        for n in range(20_000)
    ]
    rows[10_000]["idempotency_key"] = rows[1]["idempotency_key"]  # one duplicate
    with session_scope(engine) as session:
        ids = insert_messages(session, rows)
    assert len(ids) == 20_000
    assert ids[10_000] == rows[1]["id"]
    assert len(set(ids)) == 19_999
    assert _count(engine, Message) == 19_999
    assert _count(engine, DeliveryEvent) == 19_999
    with session_scope(engine) as session:
        counts = count_by_status(session, "c" * 32)
        sample = get_message(session, ids[12_345])
    assert counts["queued"] == 19_999
    assert sample is not None
    assert sample.recipient == "+33600012345"
    assert sample.payload == {"sender": "Postier"}


def test_insert_without_events(engine: Engine) -> None:
    with session_scope(engine) as session:
        insert_messages(session, [message_row(), message_row()], record_events=False)
    assert _count(engine, Message) == 2
    assert _count(engine, DeliveryEvent) == 0


@pytest.mark.parametrize("size", [1, 2, 5])
def test_insert_stores_shared_and_varying_columns_alike(engine: Engine, size: int) -> None:
    """A column every row shares is bound once rather than staged: each kind of value
    (text, enum, JSON, timestamp, number, NULL) must read back the same either way."""
    later = T0 + timedelta(days=1)
    common: dict[str, Any] = {
        "campaign_id": "camp",
        "payload": {"sender": "Postier", "n": [1, 2]},
        "send_at": later,
        "status": S.SCHEDULED,
        "parts": 2,
        "created_at": T0,
        "updated_at": T0,
        "published_at": None,
    }
    rows = [message_row(recipient=f"+3361234560{n}", **common) for n in range(size)]
    odd = message_row(
        recipient="+33612345699",
        **{**common, "payload": {}, "status": S.QUEUED, "send_at": None, "parts": None},
    )
    for batch in (rows, [*rows[:-1], odd]):
        with session_scope(engine) as session:
            ids = insert_messages(session, [{**row, "id": new_message_id()} for row in batch])
        with session_scope(engine) as session:
            for message_id, row in zip(ids, batch, strict=True):
                message = get_message(session, message_id)
                assert message is not None
                got = {key: getattr(message, key) for key in (*common, "recipient", "body")}
                assert got == {key: row[key] for key in got}
                events = events_for(session, message_id)
                assert [(e.to_status, e.at, e.detail) for e in events] == [
                    (row["status"], T0, "created")
                ]


def _stored_columns(engine: Engine, message_id: str) -> dict[str, Any]:
    with session_scope(engine) as session:
        row = session.execute(select(messages_table).where(messages_table.c.id == message_id)).one()
    return {key: value for key, value in row._mapping.items() if key not in ("id",)}


def test_rows_naming_different_columns_are_stored_as_each_alone(engine: Engine) -> None:
    """A call's rows are read column by column when they all name the same columns, row by
    row otherwise: a batch of both kinds (defaults, empty values filled in, a ``Message``)
    stores each row as inserting it alone would."""
    alike = [
        message_row(created_at=T0, updated_at=None, payload=None, parts=1),
        message_row(created_at=None, updated_at=T0, payload={}, parts=None),
        message_row(created_at=T0, updated_at=T0, payload={"sender": "Shop"}, parts=2),
    ]
    mixed = [
        {"channel": "sms", "kind": "sms", "recipient": "+33612345670", "created_at": T0},
        message_row(created_at=T0, campaign_id="camp"),
        Message(
            channel=Channel.SMS,
            kind="sms",
            recipient="+33612345671",
            body="b",
            payload={},
            category="notification",
            status=S.QUEUED,
            created_at=T0,
            updated_at=T0,
        ),
    ]
    for batch in (alike, mixed):
        with session_scope(engine) as session:
            together = insert_messages(session, batch)
        for given, message_id in zip(batch, together, strict=True):
            alone = given.model_copy() if isinstance(given, Message) else dict(given)
            if isinstance(alone, Message):
                alone.id = new_message_id()
            else:
                alone["id"] = new_message_id()
            with session_scope(engine) as session:
                (alone_id,) = insert_messages(session, [alone])
            first, second = _stored_columns(engine, message_id), _stored_columns(engine, alone_id)
            # a timestamp left empty is the insertion's: each call has its own
            for key in ("created_at", "updated_at"):
                if first[key] != T0:
                    first.pop(key), second.pop(key)
            assert first == second


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"status": S.SCHEDULED, "send_at": None}, "#2: a scheduled message needs send_at"),
        ({"status": S.SENT}, "#2: a new message is queued or scheduled"),
        ({"id": ""}, "#2: no id"),
    ],
)
def test_rows_built_alike_are_refused_by_position_too(
    engine: Engine, bad: dict[str, Any], error: str
) -> None:
    """Rows naming the same columns are checked a column at a time; one the checks refuse
    is refused by its position, as row by row, and nothing is written."""
    later = T0 + timedelta(hours=1)
    rows = [message_row(status=S.QUEUED, send_at=later) for _ in range(4)]
    rows[2].update(bad)
    with pytest.raises(ValueError, match=error), session_scope(engine) as session:
        insert_messages(session, rows)
    assert _count(engine, Message) == 0


def test_the_collector_is_paused_for_a_bulk_call_and_restored_after() -> None:
    import gc

    from postier.ledger.bulk import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
        raise RuntimeError("a failed call")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


# -- claim_for_sending ---------------------------------------------------------------------


def test_claim_takes_a_queued_row_once(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.QUEUED)
    with session_scope(engine) as session:
        claimed = claim_for_sending(session, message_id, now=T0)
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.sending_started_at) == (S.SENDING, 1, T0)
    with session_scope(engine) as session:
        assert claim_for_sending(session, message_id) is None
    with session_scope(engine) as session:
        transition(session, message_id, S.SENDING, S.QUEUED, last_error="retry")
    with session_scope(engine) as session:
        again = claim_for_sending(session, message_id, now=T0 + MINUTE)
    assert again is not None
    assert (again.attempts, again.sending_started_at) == (2, T0 + MINUTE)


@pytest.mark.parametrize("status", [S.SCHEDULED, S.CANCELLED, S.SENT, S.FAILED])
def test_claim_refuses_rows_not_queued(ledger: Ledger, engine: Engine, status: S) -> None:
    message_id = ledger.add(status)
    with session_scope(engine) as session:
        assert claim_for_sending(session, message_id) is None
        assert claim_for_sending(session, new_message_id()) is None


# -- release_due ---------------------------------------------------------------------------


def test_release_due_moves_only_due_rows_oldest_first(ledger: Ledger, engine: Engine) -> None:
    late = ledger.add(S.SCHEDULED, send_at=T0 - 5 * MINUTE)
    exactly = ledger.add(S.SCHEDULED, send_at=T0)
    future = ledger.add(S.SCHEDULED, send_at=T0 + timedelta(seconds=1))
    queued = ledger.add(S.QUEUED, send_at=T0 - MINUTE)
    with session_scope(engine) as session:
        first = release_due(session, T0, limit=1)
        rest = release_due(session, T0)
    assert first == [late]
    assert rest == [exactly]
    with session_scope(engine) as session:
        assert get_message(session, future).status is S.SCHEDULED  # type: ignore[union-attr]
        assert get_message(session, queued).status is S.QUEUED  # type: ignore[union-attr]
        released = get_message(session, late)
        events = events_for(session, late)
    assert released is not None
    assert (released.status, released.updated_at, released.published_at) == (S.QUEUED, T0, None)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, S.SCHEDULED),
        (S.SCHEDULED, S.QUEUED),
    ]
    with session_scope(engine) as session:
        assert release_due(session, T0) == []


def test_release_due_clears_a_stale_publish_stamp(ledger: Ledger, engine: Engine) -> None:
    """A row deferred after it was once published must be published again when released."""
    message_id = ledger.add(S.SCHEDULED, send_at=T0, published_at=T0 - 10 * MINUTE)
    with session_scope(engine) as session:
        assert release_due(session, T0) == [message_id]
        assert unpublished(session, T0 + 10 * MINUTE) == [message_id]


def test_two_schedulers_never_release_the_same_row(ledger: Ledger, engine: Engine) -> None:
    due = [message_row(status=S.SCHEDULED, send_at=T0 - timedelta(seconds=n)) for n in range(300)]
    with session_scope(engine) as session:
        expected = set(insert_messages(session, due))
    barrier = threading.Barrier(2)
    got: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def scheduler(slot: int) -> None:
        try:
            barrier.wait(timeout=5)
            while True:
                with session_scope(engine) as session:
                    ids = release_due(session, T0, limit=20)
                if not ids:
                    return
                got[slot].extend(ids)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scheduler, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == 300
    assert set(got[0]) | set(got[1]) == expected
    with session_scope(engine) as session:
        assert count_by_status(session)["queued"] == 300
    assert _count(engine, DeliveryEvent) == 600


# -- publishing ----------------------------------------------------------------------------


def test_unpublished_and_mark_published(ledger: Ledger, engine: Engine) -> None:
    old = T0 - 10 * MINUTE
    never = ledger.add(S.QUEUED, updated_at=old)
    fresh = ledger.add(S.QUEUED, updated_at=T0)  # its producer is about to publish it
    stale = ledger.add(S.QUEUED, updated_at=old, published_at=old)
    recent = ledger.add(S.QUEUED, updated_at=old, published_at=T0 - MINUTE)
    ledger.add(S.SENDING, updated_at=old)
    threshold = T0 - 5 * MINUTE
    with session_scope(engine) as session:
        assert sorted(unpublished(session, threshold)) == sorted([never, stale])
        assert len(unpublished(session, threshold, limit=1)) == 1
        assert mark_published(session, [never, stale, fresh, recent], T0) == 4
        assert unpublished(session, threshold) == []
        assert sorted(unpublished(session, T0 + MINUTE)) == sorted([never, fresh, stale, recent])


def test_mark_published_ignores_rows_no_longer_queued(ledger: Ledger, engine: Engine) -> None:
    sending = ledger.add(S.SENDING)
    with session_scope(engine) as session:
        assert mark_published(session, [sending], T0) == 0
        assert get_message(session, sending).published_at is None  # type: ignore[union-attr]


def test_claim_unpublished_stamps_rows_so_the_next_run_skips_them(
    ledger: Ledger, engine: Engine
) -> None:
    old = T0 - 10 * MINUTE
    ids = {ledger.add(S.QUEUED, updated_at=old) for _ in range(5)}
    threshold = T0 - 5 * MINUTE
    with session_scope(engine) as session:
        first = claim_unpublished(session, threshold, T0, limit=3)
        second = claim_unpublished(session, threshold, T0, limit=3)
        third = claim_unpublished(session, threshold, T0)
    assert len(first) == 3
    assert len(second) == 2
    assert set(first) | set(second) == ids
    assert third == []
    with session_scope(engine) as session:
        assert {m.published_at for m in list_messages(session)} == {T0}


# -- reaping and polling -------------------------------------------------------------------


def test_stuck_sending(ledger: Ledger, engine: Engine) -> None:
    stuck = ledger.add(S.SENDING, sending_started_at=T0 - 10 * MINUTE)
    older = ledger.add(S.SENDING, sending_started_at=T0 - 20 * MINUTE)
    ledger.add(S.SENDING, sending_started_at=T0 - MINUTE)
    ledger.add(S.SENT, sending_started_at=T0 - 30 * MINUTE)
    with session_scope(engine) as session:
        rows = stuck_sending(session, T0 - 5 * MINUTE)
        assert [m.id for m in stuck_sending(session, T0 - 5 * MINUTE, limit=1)] == [older]
    assert [m.id for m in rows] == [older, stuck]


def test_awaiting_delivery(ledger: Ledger, engine: Engine) -> None:
    never = ledger.add(S.SENT)
    long_ago = ledger.add(S.SENT, status_checked_at=T0 - 10 * MINUTE)
    just_now = ledger.add(S.SENT, status_checked_at=T0)
    other = ledger.add(S.SENT, provider="primotexto")
    ledger.add(S.DELIVERED)
    with session_scope(engine) as session:
        rows = awaiting_delivery(session, T0 - MINUTE)
        octopush = awaiting_delivery(session, T0 - MINUTE, provider="octopush")
        assert mark_status_checked(session, [never, long_ago], T0) == 2
        after = awaiting_delivery(session, T0 - MINUTE)
    assert {m.id for m in rows[:2]} == {never, other}  # never asked: first
    assert [m.id for m in rows][2:] == [long_ago]
    assert just_now not in {m.id for m in rows}
    assert {m.id for m in octopush} == {never, long_ago}
    assert [m.id for m in after] == [other]


def test_awaiting_delivery_reads_the_polls_columns_as_stored(
    ledger: Ledger, engine: Engine
) -> None:
    started = T0 - 2 * MINUTE
    sent = ledger.add(
        S.SENT,
        channel=Channel.WHATSAPP,
        provider="afilnet",
        provider_message_id="af-1",
        payload={"platform_id": "7"},
        sending_started_at=started,
    )
    with session_scope(engine) as session:
        (row,) = [r for r in awaiting_delivery(session, T0) if r.id == sent]
        stored = session.get(Message, sent)
        assert stored is not None
    assert isinstance(row, AwaitingDelivery)
    assert row == AwaitingDelivery(
        id=sent,
        channel=Channel.WHATSAPP,
        provider="afilnet",
        recipient=stored.recipient,
        provider_message_id="af-1",
        platform_id="7",
        sending_started_at=started,
        status_checked_at=None,
        updated_at=stored.updated_at,
    )
    # no platform in the payload: None, and the poll asks the configured one
    other = ledger.add(S.SENT, channel=Channel.WHATSAPP, provider="afilnet", payload={})
    with session_scope(engine) as session:
        (bare,) = [r for r in awaiting_delivery(session, T0) if r.id == other]
    assert bare.platform_id is None


def test_find_by_provider_message_id(ledger: Ledger, engine: Engine) -> None:
    message_id = ledger.add(S.SENT, provider_message_id="api-123")
    ledger.add(S.SENT, provider="primotexto", provider_message_id="api-123")
    with session_scope(engine) as session:
        found = find_by_provider_message_id(session, "octopush", "api-123")
        assert find_by_provider_message_id(session, "octopush", "api-999") is None
    assert found is not None
    assert found.id == message_id


# -- inbound -------------------------------------------------------------------------------


def _inbound(provider_message_id: str) -> InboundMessage:
    return InboundMessage(
        provider="afilnet",
        provider_message_id=provider_message_id,
        channel="100",
        sender="+34600000000",
        text="Oui, merci",
        received_at=T0,
        raw={"messageid": provider_message_id},
    )


def test_record_inbound_stores_each_message_once(engine: Engine) -> None:
    first = _inbound("m-1")
    with session_scope(engine) as session:
        assert record_inbound(session, first) is True
        assert record_inbound(session, _inbound("m-1")) is False
        assert record_inbound(session, _inbound("m-2")) is True
    assert first.id is not None
    with session_scope(engine) as session:
        stored = session.get(InboundMessage, first.id)
        pending = undispatched_inbound(session)
    assert stored is not None
    assert (stored.text, stored.received_at, stored.raw) == ("Oui, merci", T0, {"messageid": "m-1"})
    assert [m.provider_message_id for m in pending] == ["m-1", "m-2"]


def test_inbound_hook_is_marked_once(engine: Engine) -> None:
    row = _inbound("m-1")
    with session_scope(engine) as session:
        record_inbound(session, row)
    assert row.id is not None
    with session_scope(engine) as session:
        assert mark_inbound_dispatched(session, row.id, T0) is True
        assert mark_inbound_dispatched(session, row.id, T0) is False
        assert undispatched_inbound(session) == []


# -- reading -------------------------------------------------------------------------------


def test_list_and_count(ledger: Ledger, engine: Engine) -> None:
    a = ledger.add(S.QUEUED, campaign_id="a" * 32, created_at=T0)
    b = ledger.add(S.SENT, campaign_id="a" * 32, created_at=T0 + MINUTE)
    c = ledger.add(S.SENT, provider="primotexto", created_at=T0 + 2 * MINUTE)
    with session_scope(engine) as session:
        assert [m.id for m in list_messages(session)] == [c, b, a]
        assert [m.id for m in list_messages(session, limit=1)] == [c]
        assert [m.id for m in list_messages(session, status=S.SENT)] == [c, b]
        assert [m.id for m in list_messages(session, provider="primotexto")] == [c]
        assert [m.id for m in list_messages(session, campaign_id="a" * 32)] == [b, a]
        counts = count_by_status(session)
        campaign = count_by_status(session, "a" * 32)
    assert set(counts) == {s.value for s in MessageStatus}
    assert (counts["queued"], counts["sent"], counts["failed"]) == (1, 2, 0)
    assert (campaign["queued"], campaign["sent"]) == (1, 1)


def test_listing_without_a_state_merges_the_newest_of_each_state(
    ledger: Ledger, engine: Engine
) -> None:
    same_instant = [ledger.add(S.DELIVERED, created_at=T0) for _ in range(3)]
    newest = ledger.add(S.FAILED, created_at=T0 + MINUTE)
    ledger.add(S.SCHEDULED, created_at=T0 - MINUTE)
    with session_scope(engine) as session:
        listed = [m.id for m in list_messages(session, limit=4)]
        failed = [m.id for m in list_messages(session, status=S.FAILED, limit=4)]
    # newest first; rows created together come in descending id order, as the index has them
    assert listed == [newest, *sorted(same_instant, reverse=True)]
    assert failed == [newest]


def test_live_counts_leave_the_final_states_out(ledger: Ledger, engine: Engine) -> None:
    ledger.add(S.QUEUED, provider="octopush")
    ledger.add(S.SENT, provider="octopush")
    ledger.add(S.SENT, provider="primotexto")
    ledger.add(S.DELIVERED, provider="octopush")
    ledger.add(S.EXPIRED, provider="octopush")
    with session_scope(engine) as session:
        live = count_by_status(session, statuses=LIVE_STATUSES)
        by_provider = count_live_by_provider(session)
    assert set(live) == {s.value for s in LIVE_STATUSES}
    assert (live["queued"], live["sent"], live["scheduled"]) == (1, 2, 0)
    assert sorted(by_provider) == [
        ("octopush", S.QUEUED, 1),
        ("octopush", S.SENT, 1),
        ("primotexto", S.SENT, 1),
    ]


def test_the_oldest_unknown_row_is_the_least_recently_moved(ledger: Ledger, engine: Engine) -> None:
    with session_scope(engine) as session:
        assert oldest_update_in(session, S.UNKNOWN) is None
    ledger.add(S.UNKNOWN, updated_at=T0 - 3 * MINUTE, provider="octopush")
    ledger.add(S.UNKNOWN, updated_at=T0 - MINUTE, provider="primotexto")
    # older rows in other states are not counted, live or final
    ledger.add(S.SENT, updated_at=T0 - 60 * MINUTE)
    ledger.add(S.FAILED, updated_at=T0 - 90 * MINUTE)
    with session_scope(engine) as session:
        oldest = oldest_update_in(session, S.UNKNOWN)
        sent = oldest_update_in(session, S.SENT)
    assert oldest is not None and oldest.replace(tzinfo=T0.tzinfo) == T0 - 3 * MINUTE
    assert sent is not None and sent.replace(tzinfo=T0.tzinfo) == T0 - 60 * MINUTE


def test_get_message_reads_the_stored_row_not_the_session_cache(
    ledger: Ledger, engine: Engine
) -> None:
    message_id = ledger.add(S.QUEUED)
    with session_scope(engine) as session:
        cached = get_message(session, message_id)
        with engine.begin() as other:
            other.execute(
                messages_table.update()
                .where(messages_table.c.id == message_id)
                .values(last_error="changed elsewhere")
            )
        again = get_message(session, message_id)
    assert cached is again
    assert again is not None
    assert again.last_error == "changed elsewhere"


# -- detached_message ----------------------------------------------------------------------


def test_a_detached_message_equals_the_constructed_one_and_the_loaded_one(engine: Engine) -> None:
    """Built as the loader builds objects: every column as ``Message(**values)`` and
    ``session.get`` give it, with no pending change and no session."""
    rows = [
        message_row(payload={"sms_type": "FR", "nested": [1, 2]}, send_at=T0),
        message_row(status=S.SCHEDULED, send_at=T0, campaign_id="c-1"),
    ]
    with session_scope(engine) as session:
        ids = insert_messages(session, rows)
    with session_scope(engine) as session:
        read = session.execute(select(messages_table).where(messages_table.c.id.in_(ids))).all()
        loaded = {message_id: get_message(session, message_id) for message_id in ids}
        for row in read:
            fast = detached_message(dict(row._mapping))
            built = Message(**dict(row._mapping))
            found = loaded[row.id]
            assert found is not None
            assert fast.model_dump() == built.model_dump() == found.model_dump()
            assert inspect(fast).transient and not inspect(fast).modified
            assert fast not in session


def test_a_detached_message_needs_every_column() -> None:
    values = message_row()
    values.pop("recipient")
    with pytest.raises(ValueError, match="a message row without"):
        detached_message(values)


def test_a_detached_message_works_in_a_process_that_never_queried_objects() -> None:
    """A bulk worker reads core rows only: the mappers may not be configured yet."""
    code = textwrap.dedent(
        """
        from postier.ledger.models import messages_table
        from postier.ledger.queries import detached_message
        values = {column.key: None for column in messages_table.columns}
        values.update(id="m-1", payload={"a": 1}, recipient="+33600000000")
        message = detached_message(values)
        print(message.id, message.payload, message.recipient)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["m-1", "{'a':", "1}", "+33600000000"]
