"""Health routing with a real worker and beat: an outage of the default SMS provider opens it,
later codes go to the fallback at once, and once it recovers the traffic comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.engine import Engine

from postier.dispatch.health import HealthState, ProviderHealth
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus
from postier.ledger.queries import events_for, get_message
from postier.sandbox import Sandbox
from postier.stack import Stack
from producers.messages import Producer
from tests.integration.conftest import WaitFor, wait_until

pytestmark = pytest.mark.integration

SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.UNKNOWN)


@pytest.fixture
def health(stack: Stack) -> Iterator[ProviderHealth]:
    client = redis.Redis.from_url(stack.redis_url)
    yield ProviderHealth(client, stack.settings)
    client.close()


def sent_by(ledger: Engine, message_id: str) -> tuple[str | None, list[str]]:
    with session_scope(ledger) as session:
        message = get_message(session, message_id)
        assert message is not None
        return message.provider, [e.detail or "" for e in events_for(session, message_id)]


def test_an_outage_is_routed_around_and_the_traffic_comes_back(
    live_sandbox: Sandbox,
    producer: Producer,
    wait_for: WaitFor,
    ledger: Engine,
    health: ProviderHealth,
    stack: Stack,
) -> None:
    live_sandbox.set_faults("primotexto", rate_503=1.0, retry_after=None)
    first = [producer.send_sms(f"06123458{i:02d}", f"Code {i}").id for i in range(6)]
    wait_until(
        lambda: health.state("primotexto") is not HealthState.CLOSED, "primotexto opened", 20
    )
    for message_id in first:  # the codes that opened it reach the fallback too
        assert wait_for(message_id, *SENT, timeout=30) in SENT[:2]

    started = time.monotonic()
    later = producer.send_sms("0612345890", "Code tardif").id
    assert wait_for(later, *SENT, timeout=10) in SENT[:2]
    took = time.monotonic() - started

    provider, details = sent_by(ledger, later)
    assert provider == "octopush"
    assert any(d.startswith("reroute primotexto -> octopush") for d in details), details
    assert not [r for r in live_sandbox.records("primotexto")], "primotexto accepted nothing"
    assert took < 2.0, f"{took:.2f} s from the producer call to sent"

    live_sandbox.set_faults("primotexto")
    cool_down = stack.settings.health.cool_down
    deadline = time.monotonic() + cool_down + 15
    while True:  # codes keep coming; one of them, a probe, finds primotexto back
        code = producer.send_sms("0612345891", "Code retour").id
        wait_for(code, *SENT, timeout=10)
        if sent_by(ledger, code)[0] == "primotexto":
            break
        assert time.monotonic() < deadline, "the traffic never came back to primotexto"
    wait_until(lambda: health.state("primotexto") is HealthState.CLOSED, "primotexto closed", 10)
