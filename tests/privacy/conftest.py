"""Privacy fixtures: a ledger on SQLite and on PostgreSQL (``tests/ledger``'s backends), every
table emptied before each test, and one person's number written into every table in every
form it takes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from postier.ledger.db import session_scope
from postier.ledger.models import (
    Channel,
    MessageKind,
    MessageStatus,
    campaign_audiences_table,
    campaign_chunks_table,
    campaign_rejections_table,
    campaigns_table,
    delivery_events_table,
    inbound_messages_table,
    messages_table,
    opt_outs_table,
    utcnow,
)
from postier.privacy.erasure import number_forms
from tests.ledger.conftest import (  # noqa: F401 - fixtures
    backend,
    pg_admin,
    postgresql_ledger,
    sqlite_ledger,
)

#: the person whose data is erased or expires, and someone else whose data stays
PERSON = "+33612345678"
OTHER = "+33699887766"
HASH_KEY = "a-test-key-of-32-characters-long"


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest) -> Engine:  # noqa: F811
    """The backend's migrated ledger, every table emptied."""
    ledger: Engine = request.getfixturevalue(f"{backend}_ledger")
    with ledger.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(sa.delete(table))
    return ledger


def every_value(engine: Engine) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value of every table."""
    found: list[tuple[str, str, str]] = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    found.append((table.name, column, text))
    return found


def traces_of(engine: Engine, e164: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Every ``table.column`` holding a form of ``e164`` (a search of every column)."""
    significant = e164[3:]
    forms = [*number_forms(e164), significant]
    return sorted(
        {
            f"{table}.{column}"
            for table, column, text in every_value(engine)
            if table not in skip and any(form in text for form in forms)
        }
    )


@dataclass
class Seeded:
    """Ids of what ``seed_person`` stored."""

    settled: str
    queued: str
    other: str
    recent: str
    campaign_done: str
    campaign_running: str


def seed_person(engine: Engine, *, age: timedelta = timedelta(days=40)) -> Seeded:
    """PERSON's data in every table and form, ``age`` old; OTHER's beside it."""
    old = utcnow() - age
    now = utcnow()

    def message(
        message_id: str, recipient: str, status: MessageStatus, **values: Any
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": message_id,
            "channel": Channel.SMS,
            "kind": MessageKind.SMS,
            "provider": "octopush",
            "recipient": recipient,
            "body": "Bonjour Jeanne, rappelez le 06 12 34 56 78",
            "payload": {"sender": "Postier", "params": {"tel": "0612345678"}},
            "category": "notification",
            "status": status,
            "idempotency_key": f"order-{message_id}-{recipient}",
            "cost": Decimal("0.055"),
            "parts": 1,
            "attempts": 1,
            "last_error": None,
            "provider_message_id": None,
            "send_at": None,
            "created_at": old,
            "updated_at": old,
        }
        row.update(values)
        return row

    seeded = Seeded("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32, "f" * 32)
    with session_scope(engine) as session:
        session.execute(
            sa.insert(messages_table),
            [
                message(
                    seeded.settled,
                    PERSON,
                    MessageStatus.DELIVERED,
                    last_error="33612345678: NOT_DELIVERED once",
                    provider_message_id="api1:+33612345678",
                    payload={
                        "sender": "Postier",
                        "template_id": "7",
                        "params": {"tel": "0612345678"},
                        "header": {"file": "https://x.example/0612345678.pdf"},
                        "file_url": "https://x.example/%2B33612345678",
                    },
                ),
                message(
                    seeded.queued, PERSON, MessageStatus.SCHEDULED, send_at=now + timedelta(days=3)
                ),
                message(
                    seeded.other,
                    OTHER,
                    MessageStatus.DELIVERED,
                    body="Bonjour Paul",
                    payload={"sender": "Postier"},
                ),
                message(
                    seeded.recent,
                    OTHER,
                    MessageStatus.DELIVERED,
                    body="Paul, appelez 0612345678",
                    created_at=now,
                    updated_at=now,
                    idempotency_key="recent-order",
                ),
            ],
        )
        session.execute(
            sa.insert(delivery_events_table),
            [
                {
                    "message_id": seeded.settled,
                    "to_status": MessageStatus.DELIVERED,
                    "at": old,
                    "provider_status": "DELIVERED",
                    "detail": "receipt for 0033612345678",
                    "raw": {"number": "+33612345678", "message_id": "api1:+33612345678"},
                },
                {
                    # a batch answer naming both people, on the other person's message
                    "message_id": seeded.other,
                    "to_status": MessageStatus.SENT,
                    "at": old,
                    "provider_status": "SUCCESS",
                    "detail": None,
                    "raw": {"recipients": ["33612345678", "33699887766"]},
                },
            ],
        )
        session.execute(
            sa.insert(inbound_messages_table),
            [
                {
                    "provider": "octopush",
                    "provider_message_id": "in_1",
                    "channel": "sms",
                    "sender": PERSON,
                    "text": "STOP",
                    "received_at": old,
                    "created_at": old,
                    "raw": {"number": "%2B33612345678"},
                },
                {
                    "provider": "afilnet",
                    "provider_message_id": "in_2",
                    "channel": "100",
                    "sender": OTHER,
                    "text": "mon ami au 06.12.34.56.78",
                    "received_at": old,
                    "created_at": old,
                    "raw": None,
                },
            ],
        )
        session.execute(
            sa.insert(campaigns_table),
            [
                {
                    "id": seeded.campaign_done,
                    "name": "Soldes",
                    "status": "done",
                    "spec": {},
                    "created_at": old,
                    "updated_at": old,
                    "audience_size": 2,
                },
                {
                    "id": seeded.campaign_running,
                    "name": "Rappels",
                    "status": "running",
                    "spec": {},
                    "created_at": old,
                    "updated_at": old,
                    "audience_size": 2,
                },
            ],
        )
        session.execute(
            sa.insert(campaign_audiences_table),
            [
                {
                    "campaign_id": seeded.campaign_done,
                    "kind": "csv",
                    "content": "mobile;prenom\n06 12 34 56 78;Jeanne\n0699887766;Paul\n",
                },
                {
                    "campaign_id": seeded.campaign_running,
                    "kind": "list",
                    "content": json.dumps(["+33612345678", {"mobile": "0699887766"}]),
                },
            ],
        )
        session.execute(
            sa.insert(campaign_chunks_table),
            [
                {
                    "campaign_id": seeded.campaign_running,
                    "start": 0,
                    "stop": 2,
                    "contacts": [
                        [1, {"mobile": "+33 6 12 34 56 78"}],
                        [2, {"mobile": "0699887766"}],
                    ],
                }
            ],
        )
        session.execute(
            sa.insert(campaign_rejections_table),
            [
                {
                    "campaign_id": seeded.campaign_done,
                    "line": 3,
                    "field": "mobile",
                    "rule": "e164.landline",
                    "message": "06-12-34-56-78 is a landline",
                }
            ],
        )
        session.execute(
            sa.insert(opt_outs_table),
            [
                {
                    "recipient": PERSON,
                    "source": "primotexto",
                    "detail": "unsubscriber",
                    "created_at": old,
                },
                {"recipient": OTHER, "source": "local", "detail": None, "created_at": old},
            ],
        )
    return seeded
