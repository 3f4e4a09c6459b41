"""Lanes end to end: one-time codes go out while a bulk backlog drains, never behind it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier.ledger.db import session_scope
from postier.ledger.models import Lane, MessageStatus, delivery_events_table, messages_table
from postier.sandbox import Sandbox
from producers.messages import Producer, SmsRequest
from tests.integration.conftest import WaitFor, wait_until

pytestmark = pytest.mark.integration

BULK = 2_000
CODES = 10
SENT_OR_LATER = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


def _claims_and_sends(ledger: Engine, ids: list[str]) -> tuple[list[float], list[float]]:
    """Each message's claim (``queued → sending``) and ``sent`` times, as epoch seconds."""
    events = delivery_events_table
    claims: list[float] = []
    sends: list[float] = []
    with session_scope(ledger) as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for to_status, at in session.execute(
                select(events.c.to_status, events.c.at).where(
                    events.c.message_id.in_(chunk),
                    events.c.to_status.in_([MessageStatus.SENDING, MessageStatus.SENT]),
                )
            ):
                (claims if to_status == MessageStatus.SENDING else sends).append(at.timestamp())
    return claims, sends


def test_codes_go_out_while_a_bulk_backlog_drains(
    live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    """A personalised bulk send of 2,000 (each its own request, the provider slowed down) is
    still draining when ten codes are sent one by one: every code is claimed before the bulk's
    last claim and sent before its last send, on the transactional lane."""
    live_sandbox.set_faults("octopush", latency=0.1)
    bulk = producer.send_many(
        [
            SmsRequest(
                f"+336{20_000_000 + i:08d}",
                f"Bonjour {i}, votre commande est prête.",
                provider="octopush",
            )
            for i in range(BULK)
        ]
    )
    assert not bulk.rejected
    bulk_ids = [h.id for h in bulk.accepted]

    codes = []
    for i in range(CODES):
        handle = producer.send_sms(f"+336{30_000_000 + i:08d}", f"Votre code : {100_000 + i}")
        wait_for(handle.id, *SENT_OR_LATER, timeout=60)
        codes.append(handle.id)

    def bulk_drained() -> bool:
        with session_scope(ledger) as session:
            left = session.execute(
                select(func.count()).where(
                    messages_table.c.lane == Lane.BULK,
                    messages_table.c.status.in_(
                        [MessageStatus.QUEUED, MessageStatus.SCHEDULED, MessageStatus.SENDING]
                    ),
                )
            ).scalar_one()
        return bool(left == 0)

    wait_until(bulk_drained, "the bulk backlog drains", timeout=240)

    with session_scope(ledger) as session:
        lanes = dict(
            session.execute(
                select(messages_table.c.id, messages_table.c.lane).where(
                    messages_table.c.id.in_([*codes, *bulk_ids[:5]])
                )
            ).all()
        )
    assert {lanes[c] for c in codes} == {Lane.TRANSACTIONAL}
    assert {lanes[b] for b in bulk_ids[:5]} == {Lane.BULK}

    bulk_claims, bulk_sends = _claims_and_sends(ledger, bulk_ids)
    code_claims, code_sends = _claims_and_sends(ledger, codes)
    assert len(bulk_sends) == BULK and len(code_sends) == CODES
    # the codes did not queue behind the backlog: each was claimed while bulk still waited
    assert max(code_claims) < max(bulk_claims)
    assert max(code_sends) < max(bulk_sends)
