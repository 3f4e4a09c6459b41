"""The audit itself: it must catch what the scenarios are there to catch.

Rows go in a SQLite ledger; the provider's record is given in the sandbox's own format
(``Sandbox.records()``: one dict per accepted recipient).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from benchmarks.chaos.audit import audit
from benchmarks.chaos.scenarios import max_in_window
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import Channel, MessageKind, MessageStatus, new_message_id
from postier.ledger.queries import insert_messages
from postier.ledger.states import transition


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    ledger = make_engine(f"sqlite:///{tmp_path}/audit.db")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


def add(engine: Engine, recipient: str, *path: MessageStatus, detail: str = "") -> str:
    """A message to ``recipient`` moved along ``path`` (from queued)."""
    message_id = new_message_id()
    row = {
        "id": message_id,
        "channel": Channel.SMS,
        "kind": MessageKind.SMS,
        "provider": "octopush",
        "recipient": recipient,
        "body": "x",
    }
    with session_scope(engine) as session:
        insert_messages(session, [row])
        current = MessageStatus.QUEUED
        for target in path:
            assert transition(session, message_id, current, target, detail=detail or None)
            current = target
    return message_id


def record(recipient: str) -> dict[str, Any]:
    return {"provider": "octopush", "recipient": recipient, "text": "x", "accepted_at": 0.0}


S = MessageStatus
DELIVERED = (S.SENDING, S.SENT, S.DELIVERED)


def test_a_clean_batch_passes(engine: Engine) -> None:
    ids = [
        add(engine, "+33600000001", *DELIVERED),
        add(engine, "+33600000002", S.SENDING, S.FAILED),
    ]
    found = audit(engine, [record("+33600000001")], ids)
    assert found.ok, found
    assert found.statuses == {"delivered": 1, "failed": 1}


def test_a_message_left_queued_or_sent_is_unsettled(engine: Engine) -> None:
    queued = add(engine, "+33600000003")
    sent = add(engine, "+33600000004", S.SENDING, S.SENT)
    found = audit(engine, [record("+33600000004")], [queued, sent])
    assert not found.ok
    assert found.unsettled == {queued: "queued", sent: "sent"}


def test_unknown_is_an_explicit_state(engine: Engine) -> None:
    unknown = add(engine, "+33600000005", S.SENDING, S.UNKNOWN)
    assert audit(engine, [], [unknown]).ok


def test_a_recipient_sent_twice_is_caught(engine: Engine) -> None:
    message_id = add(engine, "+33600000006", *DELIVERED)
    found = audit(engine, [record("+33600000006")] * 2, [message_id])
    assert found.duplicates == ["+33600000006"]


def test_a_second_send_the_ledger_explains_is_allowed(engine: Engine) -> None:
    message_id = add(
        engine,
        "+33600000007",
        S.SENDING,
        S.UNKNOWN,
        S.QUEUED,
        detail="lookup: not received by the provider; sending again",
    )
    with session_scope(engine) as session:
        for source, target in ((S.QUEUED, S.SENDING), (S.SENDING, S.SENT), (S.SENT, S.DELIVERED)):
            transition(session, message_id, source, target)
    found = audit(engine, [record("+33600000007")] * 2, [message_id])
    assert found.ok and found.explained == 1


def test_two_messages_to_one_recipient_may_both_go(engine: Engine) -> None:
    ids = [add(engine, "+33600000008", *DELIVERED), add(engine, "+33600000008", *DELIVERED)]
    assert audit(engine, [record("+33600000008")] * 2, ids).ok


def test_sent_in_the_ledger_but_not_at_the_provider_is_caught(engine: Engine) -> None:
    message_id = add(engine, "+33600000009", *DELIVERED)
    assert audit(engine, [], [message_id]).phantoms == ["+33600000009"]


def test_an_id_missing_from_the_ledger_is_unsettled(engine: Engine) -> None:
    found = audit(engine, [], ["0" * 32])
    assert found.unsettled == {"0" * 32: "missing from the ledger"}


def test_max_in_window_counts_the_busiest_second() -> None:
    assert max_in_window([0.0, 0.1, 0.2, 1.5, 1.6, 3.0], 1.0) == 3
    assert max_in_window([], 1.0) == 0
