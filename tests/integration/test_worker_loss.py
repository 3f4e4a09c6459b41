"""A worker killed with SIGKILL mid-batch: no message lost, none sent twice."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from sqlalchemy.engine import Engine

from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus
from postier.ledger.queries import count_by_status, get_message
from postier.sandbox import Sandbox
from postier.stack import Stack
from producers.messages import Producer, SmsRequest

pytestmark = pytest.mark.integration

BATCH = 120
SETTLED = {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED}


@pytest.mark.parametrize("provider", ["octopush", "afilnet"])
def test_sigkill_mid_batch_loses_nothing_and_sends_nothing_twice(
    live_sandbox: Sandbox, stack: Stack, producer: Producer, ledger: Engine, provider: str
) -> None:
    live_sandbox.set_faults(provider, latency=0.1)
    base = 612340000 if provider == "octopush" else 612350000
    requests = [
        SmsRequest(f"0{base + i}", f"Lot {i}", provider=provider, campaign_id=f"kill-{provider}")
        for i in range(BATCH)
    ]
    result = producer.send_many(requests)
    assert not result.rejected
    ids = [h.id for h in result.accepted]

    # let part of the batch through, then kill the bulk lane's worker (a send_many of this
    # size is bulk) and its pool at once
    deadline = time.monotonic() + 30
    while len(live_sandbox.records(provider)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.kill("worker-bulk", signal.SIGKILL)
    sent_before_restart = len(live_sandbox.records(provider))
    assert 0 < sent_before_restart < BATCH, "the kill must land mid-batch"

    live_sandbox.set_faults(provider, latency=0.0)
    stack.start_worker("worker-bulk")
    assert stack.wait_for_worker(timeout=60)

    deadline = time.monotonic() + 90
    statuses: Counter[str] = Counter()
    while time.monotonic() < deadline:
        with session_scope(ledger) as session:
            statuses = Counter(
                str(m.status) for m in (get_message(session, i) for i in ids) if m is not None
            )
        if sum(statuses[s] for s in SETTLED) + statuses[MessageStatus.UNKNOWN] == BATCH:
            break
        time.sleep(0.5)

    # nothing lost: every accepted message reached a final state, or an explicit unknown
    assert sum(statuses.values()) == BATCH
    assert sum(statuses[s] for s in SETTLED) + statuses[MessageStatus.UNKNOWN] == BATCH, statuses
    # nothing twice: the provider's own record holds each recipient at most once
    recipients = Counter(str(r["recipient"]) for r in live_sandbox.records(provider))
    assert recipients and max(recipients.values()) == 1, recipients.most_common(3)
    # every message the ledger calls delivered is in the provider's record
    assert statuses[MessageStatus.DELIVERED] <= len(recipients)
    with session_scope(ledger) as session:
        counts = count_by_status(session, campaign_id=f"kill-{provider}")
    assert counts[MessageStatus.DELIVERED] == statuses[MessageStatus.DELIVERED]
