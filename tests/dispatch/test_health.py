"""The provider health state machine (``ProviderHealth``) against a real Redis, on a test clock.

Closed → open on retryable failures over a sliding window (or one account error), open →
half-open after the cool-down, a few probes, success closes and failure reopens; routing to
the fallback or waiting when none can take the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from postier.config import HealthSettings, Settings
from postier.dispatch.health import Decision, HealthState, ProviderHealth
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    InsufficientCreditError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
)

HEALTH = HealthSettings(
    window=10.0, min_failures=3, failure_ratio=0.5, cool_down=5.0, account_cool_down=60.0, probes=2
)
T0 = 1_800_000_000.0
S = HealthState
D = Decision


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(**health: object) -> Settings:
    return Settings(_env_file=None, health=HEALTH.model_copy(update=health))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(redis_client: redis.Redis, clock: Clock) -> ProviderHealth:
    return ProviderHealth(redis_client, make_settings(), clock=clock)


def down(provider: str = "primotexto") -> RetryableError:
    return RetryableError("503 Service Unavailable", provider=provider, code="503")


def fail(health: ProviderHealth, times: int, provider: str = "primotexto") -> None:
    for _ in range(times):
        health.record_failure(provider, down(provider))


def notification(health: ProviderHealth, provider: str = "primotexto") -> Decision:
    return health.route(provider, "sms", "notification", []).decision


# -- closed ----------------------------------------------------------------------------------


def test_a_provider_never_seen_is_closed_and_sends(health: ProviderHealth) -> None:
    assert health.state("primotexto") is S.CLOSED
    route = health.route("primotexto", "sms", "notification", [])
    assert (route.decision, route.provider, route.state) == (D.SEND, "primotexto", S.CLOSED)


def test_failures_below_the_threshold_keep_it_closed(health: ProviderHealth) -> None:
    fail(health, 2)
    status = health.status("primotexto")
    assert (status.state, status.failures, status.successes) == (S.CLOSED, 2, 0)
    assert notification(health) is D.SEND


def test_the_threshold_failure_opens_it_for_the_cool_down(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 2)
    change = health.record_failure("primotexto", down())
    assert change is not None
    assert (change.before, change.after, change.changed) == (S.CLOSED, S.OPEN, True)
    assert change.until == pytest.approx(T0 + HEALTH.cool_down)
    status = health.status("primotexto")
    assert status.state is S.OPEN
    assert "503" in status.reason


@pytest.mark.parametrize(
    "error",
    [
        RetryableError("429 Too Many Requests", provider="primotexto", code="429"),
        AmbiguousError("read timeout", provider="primotexto"),
        AmbiguousError("502 Bad Gateway", provider="primotexto", code="502"),
    ],
    ids=["429", "timeout", "5xx-after-send"],
)
def test_429_storms_timeouts_and_5xx_count_as_failures(
    health: ProviderHealth, error: ProviderError
) -> None:
    for _ in range(HEALTH.min_failures):
        health.record_failure("primotexto", error)
    assert health.state("primotexto") is S.OPEN


def test_failures_among_many_successes_do_not_open_it(health: ProviderHealth) -> None:
    for _ in range(10):
        health.record_success("primotexto")
    fail(health, 9)  # 9 of 19: under the 50% ratio
    assert health.state("primotexto") is S.CLOSED
    fail(health, 1)  # 10 of 20
    assert health.state("primotexto") is S.OPEN


def test_failures_older_than_the_window_are_forgotten(health: ProviderHealth, clock: Clock) -> None:
    fail(health, 2)
    clock.advance(HEALTH.window + 1)
    fail(health, 2)
    status = health.status("primotexto")
    assert (status.state, status.failures) == (S.CLOSED, 2)
    fail(health, 1)
    assert health.state("primotexto") is S.OPEN


def test_a_refused_recipient_says_nothing_about_health(health: ProviderHealth) -> None:
    error = RecipientRejectedError("invalid number", provider="primotexto")
    for _ in range(10):
        assert health.record_failure("primotexto", error) is None
    assert health.status("primotexto").failures == 0


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("bad key", provider="octopush", code="101"),
        InsufficientCreditError("no credit", provider="octopush", code="108"),
    ],
    ids=["credentials", "credit"],
)
def test_one_account_error_opens_it_for_the_longer_cool_down(
    health: ProviderHealth, clock: Clock, error: ProviderError
) -> None:
    change = health.record_failure("octopush", error)
    assert change is not None and change.after is S.OPEN
    assert change.until == pytest.approx(T0 + HEALTH.account_cool_down)
    clock.advance(HEALTH.cool_down + 1)
    assert health.state("octopush") is S.OPEN


def test_providers_are_independent(health: ProviderHealth) -> None:
    fail(health, 3, "primotexto")
    assert health.state("primotexto") is S.OPEN
    assert health.state("octopush") is S.CLOSED


def test_the_state_is_shared_by_every_process(
    redis_client: redis.Redis, health: ProviderHealth, clock: Clock
) -> None:
    other_worker = ProviderHealth(redis_client, make_settings(), clock=clock)
    fail(health, 2)
    fail(other_worker, 1)
    assert health.state("primotexto") is S.OPEN
    assert other_worker.state("primotexto") is S.OPEN


def test_accounts_have_their_own_state(redis_client: redis.Redis, clock: Clock) -> None:
    first = ProviderHealth(redis_client, make_settings(), clock=clock)
    second_settings = make_settings().model_copy(
        update={"octopush": make_settings().octopush.model_copy(update={"login": "other@x"})}
    )
    second = ProviderHealth(redis_client, second_settings, clock=clock)
    fail(first, 3, "octopush")
    assert first.state("octopush") is S.OPEN
    assert second.state("octopush") is S.CLOSED


# -- open: reroute or wait ----------------------------------------------------------------------


def test_open_reroutes_notifications_to_the_fallback(health: ProviderHealth) -> None:
    fail(health, 3)
    route = health.route("primotexto", "sms", "notification", [])
    assert (route.decision, route.provider, route.state) == (D.REROUTE, "octopush", S.OPEN)


def test_whatsapp_has_no_fallback_and_waits_for_the_cool_down(health: ProviderHealth) -> None:
    fail(health, 3, "afilnet")
    route = health.route("afilnet", "whatsapp", "notification", [])
    assert (route.decision, route.provider) == (D.WAIT, "afilnet")
    assert route.retry_at == pytest.approx(T0 + HEALTH.cool_down)


def test_marketing_is_not_moved_onto_the_notification_route(health: ProviderHealth) -> None:
    fail(health, 3, "octopush")  # the marketing route; its fallback is Primotexto, the codes'
    route = health.route("octopush", "sms", "marketing", [])
    assert route.decision is D.WAIT
    assert health.route("octopush", "sms", "notification", []).provider == "primotexto"


def test_marketing_may_be_moved_when_allowed(redis_client: redis.Redis, clock: Clock) -> None:
    health = ProviderHealth(redis_client, make_settings(reroute_marketing=True), clock=clock)
    fail(health, 3, "octopush")
    route = health.route("octopush", "sms", "marketing", [])
    assert (route.decision, route.provider) == (D.REROUTE, "primotexto")


def test_a_fallback_already_tried_is_not_taken(health: ProviderHealth) -> None:
    fail(health, 3)
    assert health.route("primotexto", "sms", "notification", ["octopush"]).decision is D.WAIT


def test_an_open_fallback_makes_the_message_wait(health: ProviderHealth) -> None:
    fail(health, 3, "primotexto")
    fail(health, 3, "octopush")
    route = health.route("primotexto", "sms", "notification", [])
    assert (route.decision, route.provider) == (D.WAIT, "primotexto")


def test_failures_while_open_do_not_extend_the_cool_down(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 3)
    clock.advance(3)
    change = health.record_failure("primotexto", down())
    assert change is not None and change.until == pytest.approx(T0 + HEALTH.cool_down)


# -- half-open: probes --------------------------------------------------------------------------


def test_after_the_cool_down_a_few_probes_go_to_the_provider(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 3)
    clock.advance(HEALTH.cool_down)
    assert health.state("primotexto") is S.HALF_OPEN
    decisions = [notification(health) for _ in range(4)]
    assert decisions == [D.PROBE, D.PROBE, D.REROUTE, D.REROUTE]


def test_a_held_message_looks_again_soon_when_the_probes_are_out(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 3, "afilnet")
    clock.advance(HEALTH.cool_down)
    for _ in range(HEALTH.probes):
        assert health.route("afilnet", "whatsapp", "notification").decision is D.PROBE
    route = health.route("afilnet", "whatsapp", "notification")
    assert route.decision is D.WAIT
    assert route.retry_at is not None and route.retry_at - clock.now <= 1.0


def test_a_successful_probe_closes_it(health: ProviderHealth, clock: Clock) -> None:
    fail(health, 3)
    clock.advance(HEALTH.cool_down)
    assert notification(health) is D.PROBE
    change = health.record_success("primotexto")
    assert change is not None and (change.before, change.after) == (S.HALF_OPEN, S.CLOSED)
    status = health.status("primotexto")
    assert (status.state, status.failures) == (S.CLOSED, 0)
    assert notification(health) is D.SEND


def test_a_failed_probe_opens_it_again(health: ProviderHealth, clock: Clock) -> None:
    fail(health, 3)
    clock.advance(HEALTH.cool_down)
    assert notification(health) is D.PROBE
    change = health.record_failure("primotexto", down())
    assert change is not None and (change.before, change.after) == (S.HALF_OPEN, S.OPEN)
    assert change.until == pytest.approx(clock.now + HEALTH.cool_down)
    assert notification(health) is D.REROUTE


def test_probes_lost_with_their_worker_are_given_again_after_a_cool_down(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 3)
    clock.advance(HEALTH.cool_down)
    assert [notification(health) for _ in range(3)] == [D.PROBE, D.PROBE, D.REROUTE]
    clock.advance(HEALTH.cool_down)
    assert notification(health) is D.PROBE


def test_a_success_after_the_cool_down_closes_it_without_a_probe(
    health: ProviderHealth, clock: Clock
) -> None:
    fail(health, 3)
    clock.advance(HEALTH.cool_down)
    change = health.record_success("primotexto")
    assert change is not None and (change.before, change.after) == (S.HALF_OPEN, S.CLOSED)


def test_disabled_health_always_sends(redis_client: redis.Redis, clock: Clock) -> None:
    health = ProviderHealth(redis_client, make_settings(enabled=False), clock=clock)
    assert health.record_failure("primotexto", down()) is None
    fail(health, 10)
    assert notification(health) is D.SEND


def test_reset_closes_it(health: ProviderHealth) -> None:
    fail(health, 3)
    health.reset("primotexto")
    assert health.state("primotexto") is S.CLOSED


def test_redis_time_is_used_without_a_clock(redis_client: redis.Redis) -> None:
    health = ProviderHealth(redis_client, make_settings())
    fail(health, 3)
    status = health.status("primotexto")
    assert status.state is S.OPEN
    assert status.until is not None and status.until > T0 - 10**9


# -- any sequence: the state machine agrees with a model of it ----------------------------------


@dataclass
class Model:
    """The rules of the module docstring, in plain Python."""

    cfg: HealthSettings
    state: S = S.CLOSED
    until: float = 0.0
    fails: dict[int, int] = field(default_factory=dict)
    oks: dict[int, int] = field(default_factory=dict)
    probes: int = 0
    round_at: float = 0.0

    def effective(self, now: float) -> S:
        if self.state is S.OPEN and now >= self.until:
            return S.HALF_OPEN
        return self.state

    def _open(self, now: float, seconds: float) -> None:
        was_open = self.state is S.OPEN and now < self.until
        self.until = max(now + seconds, self.until if was_open else 0.0)
        self.state, self.probes, self.round_at = S.OPEN, 0, self.until
        self.fails, self.oks = {}, {}

    def _window(self, counts: dict[int, int], now: float) -> int:
        import math

        oldest = math.floor(now) - math.ceil(self.cfg.window) + 1
        for bucket in [b for b in counts if b < oldest]:
            del counts[bucket]
        return sum(counts.values())

    def record(self, now: float, outcome: str) -> S:
        state = self.effective(now)
        if outcome == "account":
            self._open(now, self.cfg.account_cool_down)
        elif state is S.HALF_OPEN:
            if outcome == "fail":
                self._open(now, self.cfg.cool_down)
            else:
                self.state, self.fails, self.oks = S.CLOSED, {}, {}
        elif state is S.CLOSED:
            import math

            counts = self.fails if outcome == "fail" else self.oks
            counts[math.floor(now)] = counts.get(math.floor(now), 0) + 1
            if outcome == "fail":
                failures, successes = self._window(self.fails, now), self._window(self.oks, now)
                if failures >= self.cfg.min_failures and failures >= self.cfg.failure_ratio * (
                    failures + successes
                ):
                    self._open(now, self.cfg.cool_down)
        return self.effective(now)

    def route(self, now: float) -> Decision:
        state = self.effective(now)
        if state is S.CLOSED:
            return D.SEND
        if state is S.OPEN:
            return D.WAIT
        if self.state is S.OPEN:
            self.state, self.probes, self.round_at = S.HALF_OPEN, 0, now
        if self.probes >= self.cfg.probes and now - self.round_at >= self.cfg.cool_down:
            self.probes, self.round_at = 0, now
        if self.probes < self.cfg.probes:
            self.probes += 1
            return D.PROBE
        return D.WAIT


STEPS = st.lists(
    st.one_of(
        st.sampled_from(["fail", "ok", "account", "route"]),
        # halves: exact in binary, so the model's and Redis's times compare the same
        st.integers(min_value=1, max_value=40).map(lambda n: n / 2),
    ),
    max_size=40,
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_any_sequence_follows_the_model(redis_client: redis.Redis, steps: list[object]) -> None:
    redis_client.flushdb()
    clock = Clock()
    # WhatsApp: no fallback, so ``route`` shows the provider's own decision
    health = ProviderHealth(redis_client, make_settings(), clock=clock)
    model = Model(HEALTH)
    errors = {"fail": down("afilnet"), "account": AuthenticationError("no", provider="afilnet")}
    for step in steps:
        if isinstance(step, float):
            clock.advance(step)
        elif step == "route":
            expected = model.route(clock.now)
            got = health.route("afilnet", "whatsapp", "notification").decision
            assert got is expected
        elif step == "ok":
            change = health.record_success("afilnet")
            assert change is not None and change.after is model.record(clock.now, "ok")
        else:
            change = health.record_failure("afilnet", errors[str(step)])
            assert change is not None and change.after is model.record(clock.now, str(step))
        assert health.state("afilnet") is model.effective(clock.now)
