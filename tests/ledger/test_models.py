"""The tables' column types behave the same on both backends (postier.ledger.models)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from postier.ledger.db import session_scope
from postier.ledger.models import (
    Campaign,
    CampaignStatus,
    Channel,
    DeliveryEvent,
    Message,
    MessageKind,
    MessageStatus,
    messages_table,
    new_message_id,
    new_message_ids,
)
from postier.ledger.queries import get_message, insert_messages
from tests.ledger.conftest import message_row

PARIS = ZoneInfo("Europe/Paris")


def test_new_message_id_is_uuid4_hex() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert len(value) == 32
        assert value[12] == "4"  # the uuid version digit
        int(value, 16)
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, value)


def test_message_ids_drawn_in_blocks_are_uuid4_hex_too() -> None:
    """Three blocks' worth: every id a distinct uuid4, each hex digit but the version's
    taking many values (the bits around the fixed ones are not cleared with them)."""
    drawn = new_message_ids()
    ids = [next(drawn) for _ in range(3 * 1024 + 7)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, value)
    for position in range(32):
        seen = {value[position] for value in ids}
        assert seen == {"4"} if position == 12 else len(seen) >= (4 if position == 16 else 16)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=PARIS),  # just before the DST change
        datetime(2026, 3, 29, 3, 0, tzinfo=PARIS),  # just after
        datetime(2026, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 7, 14, 12, 0, 0, 1, tzinfo=UTC),
    ],
)
def test_aware_datetimes_come_back_aware_in_utc(engine: Engine, moment: datetime) -> None:
    row = message_row(status=MessageStatus.SCHEDULED, send_at=moment, created_at=moment)
    with session_scope(engine) as session:
        insert_messages(session, [row])
    with session_scope(engine) as session:
        message = get_message(session, row["id"])
    assert message is not None
    assert message.send_at == moment
    assert message.send_at is not None and message.send_at.tzinfo is UTC
    assert message.created_at == moment
    assert message.created_at.tzinfo is UTC


def test_datetime_comparisons_are_by_instant_not_by_text(engine: Engine) -> None:
    """09:30 in Paris (winter) is 08:30 UTC: it is before 09:00 UTC."""
    early = datetime(2026, 1, 10, 9, 30, tzinfo=PARIS)
    late = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
    rows = [
        message_row(status=MessageStatus.SCHEDULED, send_at=early),
        message_row(status=MessageStatus.SCHEDULED, send_at=late),
    ]
    with session_scope(engine) as session:
        insert_messages(session, rows)
        cutoff = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
        found = session.execute(
            select(messages_table.c.id).where(messages_table.c.send_at <= cutoff)
        ).scalars()
        assert list(found) == [rows[0]["id"]]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(engine) as session:
        session.add(Message(**message_row(send_at=datetime(2026, 1, 1, 12, 0))))
        session.flush()


def test_enums_json_and_decimals_round_trip(engine: Engine) -> None:
    payload = {"template_id": "42", "params": {"name": "Zoé", "orderid": "10"}, "n": [1, 2]}
    row = message_row(
        channel=Channel.WHATSAPP,
        kind=MessageKind.WHATSAPP_TEMPLATE,
        body="",
        payload=payload,
        cost=Decimal("0.045"),
    )
    with session_scope(engine) as session:
        insert_messages(session, [row])
    with session_scope(engine) as session:
        message = get_message(session, row["id"])
    assert message is not None
    assert message.channel is Channel.WHATSAPP
    assert message.kind is MessageKind.WHATSAPP_TEMPLATE
    assert message.status is MessageStatus.QUEUED
    assert message.payload == payload
    assert message.cost == Decimal("0.045")
    assert message.attempts == 0


def test_unknown_status_string_is_refused(engine: Engine) -> None:
    with pytest.raises(StatementError), session_scope(engine) as session:
        session.add(Message(**message_row(status="lost")))
        session.flush()


def test_campaign_row_with_spec(engine: Engine) -> None:
    spec = {"text": "Soldes -50%", "recipients": ["+33612345678"]}
    with session_scope(engine) as session:
        session.add(Campaign(id="a" * 32, name="Soldes", spec=spec))
    with session_scope(engine) as session:
        campaign = session.get(Campaign, "a" * 32)
    assert campaign is not None
    assert campaign.status is CampaignStatus.DRAFT
    assert campaign.spec == spec
    assert campaign.created_at.tzinfo is UTC


def test_deleting_a_message_deletes_its_events(engine: Engine) -> None:
    row = message_row()
    with session_scope(engine) as session:
        insert_messages(session, [row])
    with engine.begin() as connection:
        connection.execute(messages_table.delete().where(messages_table.c.id == row["id"]))
    with session_scope(engine) as session:
        left = session.execute(select(DeliveryEvent)).scalars().all()
    assert left == []
