"""Health routing in the dispatcher, against the sandbox over HTTP and a real Redis.

A provider that keeps failing opens; then new sends and due retries go to the fallback without
spending attempts (an event each), a route the fallback cannot take waits as ``scheduled``,
and after the cool-down a probe brings the traffic back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from postier.config import HealthSettings, Settings
from postier.dispatch.batching import send_chunk
from postier.dispatch.clients import ProviderClients
from postier.dispatch.health import HealthState, ProviderHealth
from postier.dispatch.sending import Dispatcher, SendOutcome
from postier.ledger.models import MessageStatus
from postier.providers.errors import RetryableError
from postier.sandbox import Sandbox
from tests.dispatch.conftest import WEEKDAY_10AM, Ledger

S = MessageStatus
H = HealthState
#: opens after two failures; the test clock decides when the cool-down is over
HEALTH = HealthSettings(min_failures=2, window=60.0, cool_down=30.0, probes=1)


@dataclass
class Clock:
    now: float = field(default_factory=lambda: datetime.now(UTC).timestamp())

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health_settings(dispatch_settings: Settings) -> Settings:
    return dispatch_settings.model_copy(update={"health": HEALTH})


@pytest.fixture
def health(redis_client: redis.Redis, health_settings: Settings, clock: Clock) -> ProviderHealth:
    return ProviderHealth(redis_client, health_settings, clock=clock)


@pytest.fixture
def dispatcher(
    health_settings: Settings, engine: Engine, health: ProviderHealth
) -> Iterator[Dispatcher]:
    clients = ProviderClients(health_settings)
    yield Dispatcher(health_settings, engine, clients, None, rng=lambda: 1.0, health=health)
    clients.close()


def open_provider(health: ProviderHealth, provider: str) -> None:
    for _ in range(HEALTH.min_failures):
        health.record_failure(provider, RetryableError("503", provider=provider, code="503"))
    assert health.state(provider) is H.OPEN


def details(ledger: Ledger, message_id: str) -> list[str]:
    return [event.detail or "" for event in ledger.events(message_id)]


# -- an outage: the first sends open it, the rest go to the fallback at once -----------------


def test_an_outage_opens_the_provider_and_later_codes_go_to_the_fallback_at_once(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    first = [ledger.add_sms(f"06123456{i:02d}") for i in range(HEALTH.min_failures)]
    for message_id in first:
        assert dispatcher.send(message_id).status is S.SCHEDULED
    assert health.state("primotexto") is H.OPEN
    # the failure that opened it: retried at once, to be rerouted when released
    last = ledger.get(first[-1])
    assert last.send_at is not None and last.send_at <= datetime.now(UTC)

    later = ledger.add_sms("0612345699")
    requests_before = sandbox.core.request_counts.get("primotexto", 0)
    outcome = dispatcher.send(later)

    assert outcome == SendOutcome(S.SENT)
    message = ledger.get(later)
    assert (message.provider, message.attempts) == ("octopush", 1)
    assert "tried_providers" not in (message.payload or {})
    assert "reroute primotexto -> octopush: primotexto is open" in details(ledger, later)
    assert sandbox.core.request_counts.get("primotexto", 0) == requests_before
    assert [r["recipient"] for r in sandbox.records("octopush")] == ["+33612345699"]


def test_retries_waiting_a_backoff_are_made_due_when_the_provider_opens(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    waiting = ledger.add_sms(
        "0612345610",
        status=S.SCHEDULED,
        attempts=2,
        send_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    not_a_retry = ledger.add_sms("0612345611", send_at=datetime.now(UTC) + timedelta(hours=1))
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    for i in range(HEALTH.min_failures):
        dispatcher.send(ledger.add_sms(f"06123456{20 + i}"))
    assert health.state("primotexto") is H.OPEN

    due = ledger.get(waiting).send_at
    assert due is not None and due <= datetime.now(UTC)
    kept = ledger.get(not_a_retry).send_at
    assert kept is not None and kept > datetime.now(UTC) + timedelta(minutes=30)


def test_a_released_retry_is_rerouted_without_spending_an_attempt(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "primotexto")
    message_id = ledger.add_sms("0612345612", attempts=2)  # released by beat: queued again

    assert dispatcher.send(message_id).status is S.SENT

    message = ledger.get(message_id)
    assert (message.provider, message.attempts) == ("octopush", 1)
    trail = [(e.from_status, e.to_status) for e in ledger.events(message_id)]
    assert trail[-4:] == [
        (S.QUEUED, S.SCHEDULED),
        (S.SCHEDULED, S.QUEUED),
        (S.QUEUED, S.SENDING),
        (S.SENDING, S.SENT),
    ]


def test_without_health_every_code_spends_its_attempts_on_the_dead_provider(
    make_dispatcher: object, health_settings: Settings, ledger: Ledger, sandbox: Sandbox
) -> None:
    """The behaviour health routing replaces: the later code fails on Primotexto again."""
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    plain = make_dispatcher(health_settings)  # type: ignore[operator]
    for i in range(HEALTH.min_failures):
        plain.send(ledger.add_sms(f"06123456{30 + i}"))
    later = ledger.add_sms("0612345639")
    assert plain.send(later).status is S.SCHEDULED
    assert ledger.get(later).provider == "primotexto"


# -- waiting: no fallback can take it ---------------------------------------------------------


def test_whatsapp_waits_as_scheduled_until_the_cool_down_ends(
    dispatcher: Dispatcher, health: ProviderHealth, clock: Clock, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "afilnet")
    message_id = ledger.add_whatsapp("+33612345613", "Bonjour")

    assert dispatcher.send(message_id) == SendOutcome(S.SCHEDULED)

    message = ledger.get(message_id)
    assert (message.provider, message.attempts) == ("afilnet", 0)
    assert message.send_at is not None
    assert message.send_at.timestamp() == pytest.approx(clock.now + HEALTH.cool_down, abs=1)
    assert any("waiting for afilnet (open)" in d for d in details(ledger, message_id))
    assert sandbox.records() == []


def test_marketing_waits_rather_than_taking_the_codes_route(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "octopush")
    message_id = ledger.add_sms(
        "0612345614", "Promo -30%", category="marketing", send_at=WEEKDAY_10AM
    )

    assert dispatcher.send(message_id).status is S.SCHEDULED
    assert ledger.get(message_id).provider == "octopush"
    assert sandbox.records() == []


def test_an_open_fallback_holds_the_message_too(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "primotexto")
    open_provider(health, "octopush")
    message_id = ledger.add_sms("0612345615")

    assert dispatcher.send(message_id).status is S.SCHEDULED
    assert ledger.get(message_id).provider == "primotexto"
    assert sandbox.records() == []


# -- recovery ------------------------------------------------------------------------------


def test_after_the_cool_down_a_probe_closes_it_and_traffic_returns(
    dispatcher: Dispatcher, health: ProviderHealth, clock: Clock, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "primotexto")
    assert dispatcher.send(ledger.add_sms("0612345616")).status is S.SENT  # via octopush
    clock.now += HEALTH.cool_down

    probe = ledger.add_sms("0612345617")
    assert dispatcher.send(probe).status is S.SENT
    assert ledger.get(probe).provider == "primotexto"
    assert health.state("primotexto") is H.CLOSED
    after = ledger.add_sms("0612345618")
    assert dispatcher.send(after).status is S.SENT
    assert ledger.get(after).provider == "primotexto"


def test_a_failed_probe_opens_it_again(
    dispatcher: Dispatcher, health: ProviderHealth, clock: Clock, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "primotexto")
    clock.now += HEALTH.cool_down
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)

    probe = ledger.add_sms("0612345619")
    assert dispatcher.send(probe).status is S.SCHEDULED
    assert health.state("primotexto") is H.OPEN
    assert dispatcher.send(ledger.add_sms("0612345620")).status is S.SENT  # rerouted again


def test_an_account_error_opens_the_provider_and_fails_over(
    health_settings: Settings,
    health: ProviderHealth,
    clock: Clock,
    engine: Engine,
    ledger: Ledger,
) -> None:
    wrong = health_settings.model_copy(
        update={
            "primotexto": health_settings.primotexto.model_copy(
                update={"api_key": SecretStr("wrong")}
            )
        }
    )
    wrong_health = ProviderHealth(health.client, wrong, clock=health.clock)
    clients = ProviderClients(wrong)
    try:
        sender = Dispatcher(wrong, engine, clients, None, health=wrong_health)
        first = ledger.add_sms("0612345621")
        sender.send(first)
        assert wrong_health.state("primotexto") is H.OPEN
        assert wrong_health.status("primotexto").until == pytest.approx(
            clock.now + HEALTH.account_cool_down, abs=1
        )
        second = ledger.add_sms("0612345622")
        assert sender.send(second).status is S.SENT
        assert "reroute primotexto -> octopush" in " ".join(details(ledger, second))
    finally:
        clients.close()


# -- chunks --------------------------------------------------------------------------------


def test_a_chunk_sends_the_rows_of_an_open_provider_through_the_fallback(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    open_provider(health, "primotexto")
    ids = [ledger.add_sms(f"06123456{40 + i}", f"Code {i}") for i in range(3)]

    result = send_chunk(dispatcher, ids)

    assert result.sent == 3
    assert {ledger.get(i).provider for i in ids} == {"octopush"}
    assert len(sandbox.records("octopush")) == 3
    assert sandbox.records("primotexto") == []


def test_an_octopush_group_records_its_outcome_in_the_health_window(
    dispatcher: Dispatcher, health: ProviderHealth, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("octopush", retry_after=None, rate_503=1.0)
    for n in range(HEALTH.min_failures):
        ids = [
            ledger.add_sms(f"06123457{n}{i}", "Même texte", provider="octopush") for i in range(2)
        ]
        send_chunk(dispatcher, ids)
    assert health.state("octopush") is H.OPEN
