"""The global GCRA limiter against a real Redis (DB 15), timed with Redis TIME."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing.queues import Queue

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postier.config import Settings
from postier.ratelimit import RateLimiter, limiter_key

# until tests/conftest.py imports them for every test

Interval = tuple[float, float]


@pytest.fixture
def limiter(redis_client: redis.Redis, request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    """A limiter whose keys are unique to this test."""
    yield RateLimiter(redis_client, prefix=f"test:{request.node.name}:{uuid.uuid4().hex[:8]}")


def redis_now(client: redis.Redis) -> float:
    """The server's clock, in seconds: the same clock the script uses."""
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def admit_for(
    limiter: RateLimiter, client: redis.Redis, key: str, rate: float, burst: int, duration: float
) -> list[Interval]:
    """Acquire as fast as allowed for ``duration`` s; each admission as [before, after] in TIME."""
    admitted: list[Interval] = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        before = redis_now(client)
        delay = limiter.acquire(key, rate, burst)
        after = redis_now(client)
        if delay == 0.0:
            admitted.append((before, after))
        else:
            time.sleep(min(delay, 0.05))
    return admitted


def assert_no_window_exceeds(admitted: list[Interval], rate: float, burst: int) -> None:
    """In every window [before_a, after_b], the admissions inside it are ≤ burst + rate*len."""
    for start, _ in admitted:
        for _, stop in admitted:
            if stop < start:
                continue
            inside = sum(1 for b, a in admitted if b >= start and a <= stop)
            assert inside <= burst + rate * (stop - start) + 1e-9, (inside, stop - start)


def test_burst_then_spacing(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    rate, burst, interval = 50.0, 5, 0.02
    # The scenario must run within 1.5 intervals (Redis TIME) to see each edge: retried when
    # the shared machine stalls it.
    for attempt in range(5):
        key = f"burst-{attempt}"
        start = redis_now(redis_client)
        waits = [limiter.acquire(key, rate, burst) for _ in range(burst + 1)]
        burst_elapsed = redis_now(redis_client) - start
        if burst_elapsed >= interval / 2:
            continue
        time.sleep(waits[burst])
        after_wait = limiter.acquire(key, rate, burst)
        next_wait = limiter.acquire(key, rate, burst)
        elapsed = redis_now(redis_client) - start
        if elapsed < 1.5 * interval:
            break
    else:
        pytest.fail("could not run the scenario within 30 ms in 5 attempts")
    assert waits[:burst] == [0.0] * burst
    assert interval - burst_elapsed - 1e-6 <= waits[burst] <= interval
    assert after_wait == 0.0
    # drained: the next token comes one interval after the last
    assert 2 * interval - elapsed - 1e-6 <= next_wait <= interval


def test_never_exceeds_rate_over_any_window(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    rate, burst, duration = 50.0, 5, 0.5
    start = redis_now(redis_client)
    admitted = admit_for(limiter, redis_client, "window", rate, burst, duration)
    elapsed = redis_now(redis_client) - start
    assert len(admitted) <= burst + rate * elapsed
    assert_no_window_exceeds(admitted, rate, burst)
    # and it does let through about the rate (loose: the machine is shared)
    assert len(admitted) >= burst + 0.5 * rate * duration


def test_refusal_takes_nothing(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    rate, burst = 20.0, 2
    assert limiter.acquire("refuse", rate, burst) == 0.0
    assert limiter.acquire("refuse", rate, burst) == 0.0
    state = redis_client.get(limiter.redis_key("refuse"))
    delay = limiter.acquire("refuse", rate, burst)
    assert 0.0 < delay <= 1 / rate
    assert redis_client.get(limiter.redis_key("refuse")) in (state, None)  # None: expired
    time.sleep(delay)
    assert limiter.acquire("refuse", rate, burst) == 0.0


def test_cost_takes_several_tokens(limiter: RateLimiter) -> None:
    rate, burst = 10.0, 5
    assert limiter.acquire("cost", rate, burst, cost=3) == 0.0
    delay = limiter.acquire("cost", rate, burst, cost=3)
    assert 0.09 <= delay <= 0.1  # one token short: one interval
    assert limiter.acquire("cost", rate, burst, cost=2) == 0.0


@pytest.mark.parametrize(
    ("rate", "burst", "cost"),
    [(0.0, 1, 1), (-1.0, 1, 1), (float("inf"), 1, 1), (1.0, 0, 1), (1.0, 2, 0), (1.0, 2, 3)],
)
def test_rejects_impossible_requests(
    limiter: RateLimiter, rate: float, burst: int, cost: int
) -> None:
    with pytest.raises(ValueError):
        limiter.acquire("bad", rate, burst, cost)


def test_keys_expire_when_idle(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    rate, burst = 20.0, 5
    for _ in range(3):
        assert limiter.acquire("idle", rate, burst) == 0.0
    ttl_ms = redis_client.pttl(limiter.redis_key("idle"))
    assert 0 < ttl_ms <= 150  # three intervals of 50 ms
    deadline = time.monotonic() + 5
    while redis_client.exists(limiter.redis_key("idle")):
        assert time.monotonic() < deadline, "the idle key did not expire"
        time.sleep(0.02)
    assert redis_client.keys(f"{limiter.prefix}:*") == []


def test_wait_blocks_for_a_short_wait(limiter: RateLimiter) -> None:
    rate, burst = 20.0, 1
    assert limiter.acquire("short", rate, burst) == 0.0
    started = time.monotonic()
    assert limiter.wait("short", rate, burst, max_block=1.0) == 0.0
    assert 0.03 <= time.monotonic() - started < 1.0
    assert limiter.acquire("short", rate, burst) > 0.0  # the token was taken


def test_wait_returns_a_long_wait_without_taking(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    rate, burst = 0.5, 1
    assert limiter.acquire("long", rate, burst) == 0.0
    state = redis_client.get(limiter.redis_key("long"))
    started = time.monotonic()
    delay = limiter.wait("long", rate, burst, max_block=0.2)
    assert time.monotonic() - started < 0.2
    assert 1.5 < delay <= 2.0
    assert redis_client.get(limiter.redis_key("long")) == state


def test_two_threads_share_the_limit(
    limiter: RateLimiter, redis_client: redis.Redis, redis_test_url: str
) -> None:
    rate, burst, duration = 40.0, 4, 0.5
    results: list[list[Interval]] = [[], []]

    def run(slot: int) -> None:
        client = redis.Redis.from_url(redis_test_url)
        own = RateLimiter(client, prefix=limiter.prefix)
        results[slot] = admit_for(own, client, "shared", rate, burst, duration)
        client.close()

    start = redis_now(redis_client)
    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = redis_now(redis_client) - start
    combined = sorted(results[0] + results[1])
    assert all(results), "both threads got tokens"
    assert len(combined) <= burst + rate * elapsed
    assert_no_window_exceeds(combined, rate, burst)
    assert len(combined) >= burst + 0.5 * rate * duration


def _admit_in_child(
    url: str, prefix: str, rate: float, burst: int, out: Queue[list[Interval]]
) -> None:
    client = redis.Redis.from_url(url)
    out.put(admit_for(RateLimiter(client, prefix=prefix), client, "shared", rate, burst, 0.5))
    client.close()


def test_two_processes_share_the_limit(
    limiter: RateLimiter, redis_client: redis.Redis, redis_test_url: str
) -> None:
    rate, burst = 40.0, 4
    # spawn, not fork: this process runs threads (the sandbox) whose locks a fork would copy
    ctx = multiprocessing.get_context("spawn")
    out: Queue[list[Interval]] = ctx.Queue()
    start = redis_now(redis_client)
    children = [
        ctx.Process(target=_admit_in_child, args=(redis_test_url, limiter.prefix, rate, burst, out))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    got = [out.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=10)
        assert child.exitcode == 0
    elapsed = redis_now(redis_client) - start
    per_child: list[list[Interval]] = got
    combined = sorted(per_child[0] + per_child[1])
    assert all(per_child), "both processes got tokens"
    assert len(combined) <= burst + rate * elapsed
    assert_no_window_exceeds(combined, rate, burst)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rate=st.floats(min_value=1.0, max_value=500.0),
    burst=st.integers(min_value=1, max_value=8),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=8), st.floats(min_value=0.0, max_value=0.01)),
        min_size=1,
        max_size=12,
    ),
)
def test_admitted_never_exceed_burst_plus_rate_times_elapsed(
    redis_client: redis.Redis,
    limiter: RateLimiter,
    rate: float,
    burst: int,
    steps: list[tuple[int, float]],
) -> None:
    key = f"prop-{uuid.uuid4().hex}"
    admitted: list[tuple[float, float, int]] = []
    for cost, pause in steps:
        cost = min(cost, burst)
        state = redis_client.get(limiter.redis_key(key))
        before = redis_now(redis_client)
        delay = limiter.acquire(key, rate, burst, cost=cost)
        after = redis_now(redis_client)
        if delay == 0.0:
            admitted.append((before, after, cost))
        else:
            # unchanged, or expired meanwhile: a refusal never writes a later TAT
            assert redis_client.get(limiter.redis_key(key)) in (state, None)
            assert delay <= cost * (1 / rate + 1e-6)
        time.sleep(pause)
    # every window between two admissions, the whole run included
    for start, _, _ in admitted:
        for _, stop, _ in admitted:
            if stop >= start:
                tokens = sum(c for b, a, c in admitted if b >= start and a <= stop)
                assert tokens <= burst + rate * (stop - start) + 1e-9


def test_limiter_key_hides_the_account() -> None:
    account = "jane.doe@example.fr"
    key = limiter_key("afilnet", account)
    assert key.startswith("afilnet:")
    assert "jane" not in key and "example" not in key and "@" not in key
    assert key == limiter_key("afilnet", account)
    assert key != limiter_key("afilnet", "john@example.fr")
    assert key.split(":")[1] == limiter_key("octopush", account).split(":")[1]
    with pytest.raises(ValueError):
        limiter_key("Afilnet:x", account)


def test_default_limits_for_every_provider() -> None:
    limits = Settings(_env_file=None).rate_limits
    assert set(limits) >= {"afilnet", "primotexto", "octopush"}
    assert limits["octopush"].rate == 10.0


def test_rate_limit_env_override_keeps_the_other_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTIER_RATE_LIMITS__OCTOPUSH__RATE", "5")
    limits = Settings(_env_file=None).rate_limits
    assert limits["octopush"].rate == 5.0
    assert limits["octopush"].burst == 10
    assert limits["afilnet"].rate == 20.0


# -- many tokens in one call, and the transactional lane's reserve ----------------------------


def test_take_grants_what_fits_now_and_says_how_long_until_the_next(limiter: RateLimiter) -> None:
    assert limiter.take("acct", rate=10, burst=5, want=8) == (5, 0.0)
    taken, wait = limiter.take("acct", rate=10, burst=5, want=3)
    assert taken == 0 and 0 < wait <= 0.1
    assert limiter.take("fresh", rate=10, burst=5, want=2) == (2, 0.0)


def test_bulk_never_takes_the_reserve_and_codes_still_go_at_once(limiter: RateLimiter) -> None:
    """Bulk (reserve 2 of a burst of 10) drains what it may; a code then goes at once, and
    bulk waits while the code lane could still take the last token of the reserve."""
    taken, _ = limiter.take("acct", rate=1, burst=10, want=100, reserve=2)
    assert taken == 8
    assert limiter.take("acct", rate=1, burst=10, want=1, reserve=2)[0] == 0
    assert limiter.acquire("acct", rate=1, burst=10) == 0.0  # a code: no wait
    assert limiter.acquire("acct", rate=1, burst=10) == 0.0  # and another one
    assert limiter.acquire("acct", rate=1, burst=10) > 0.9  # the burst is spent now


@given(
    burst=st.integers(2, 50),
    reserve=st.integers(0, 49),
    wants=st.lists(st.integers(1, 60), min_size=1, max_size=8),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_take_never_grants_more_than_burst_minus_reserve_at_once(
    limiter: RateLimiter, burst: int, reserve: int, wants: list[int]
) -> None:
    reserve = min(reserve, burst - 1)
    key = uuid.uuid4().hex
    granted = sum(
        limiter.take(key, rate=0.001, burst=burst, want=w, reserve=reserve)[0] for w in wants
    )
    assert granted == min(sum(wants), burst - reserve)


def test_a_reserve_as_large_as_the_burst_is_refused(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="reserve"):
        limiter.take("acct", rate=1, burst=3, want=1, reserve=3)
