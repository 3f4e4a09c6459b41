"""The chaos scenarios: a fault while a batch is under way, then an audit.

Each scenario enqueues a batch through the producers API — half of it Octopush SMS with one
text (multi-recipient requests), half Primotexto SMS with a text each (one request each) —
injects its fault mid-batch, lets the stack recover on its own (beat's republish and reaper,
lookups of ambiguous sends), waits until every message is final or ``unknown`` and audits the
provider's record against the ledger (``audit``). Recipients never repeat across scenarios.

The stack is ``postier.stack`` with short beat periods and timeouts (``chaos_settings``), a
private Redis, and the sandbox in this process (faults are set on it directly).
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from benchmarks.chaos.audit import Audit, audit, wait_settled
from benchmarks.chaos.faults import PrivateCluster, restart_redis
from postier.config import DispatchSettings, HealthSettings, HttpSettings, RateLimit, Settings
from postier.ledger.bulk import chunks
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import MessageStatus, delivery_events_table, messages_table
from postier.sandbox.app import Sandbox
from postier.stack import Stack, StackOptions

#: the one text of the Octopush half of every batch (a campaign's)
ONE_TEXT = "Ventes privées : -30% ce week-end."
#: the account whose limit the rate-limit scenario saturates
LIMITED = RateLimit(rate=8.0, burst=2)
SETTLE_TIMEOUT = 90.0
#: provider health in the chaos stack: a full outage opens a provider after five failures,
#: the provider storm's ~50% failures do not; probes after five seconds
CHAOS_HEALTH = HealthSettings(
    window=10.0, min_failures=5, failure_ratio=0.8, cool_down=5.0, account_cool_down=30.0, probes=2
)
#: how long the default SMS provider is down in ``default_provider_outage``
OUTAGE_SECONDS = 60.0


def chaos_settings() -> Settings:
    """Short timeouts and beat periods, so recovery takes seconds (not the production minutes).

    Rate limits far above the batches except Afilnet's, which the rate-limit scenario uses.
    """
    return Settings(
        _env_file=None,
        http=HttpSettings(connect_timeout=1.0, read_timeout=2.0, short_retry_attempts=2),
        dispatch=DispatchSettings(
            max_attempts=4,
            backoff_base=0.2,
            backoff_max=1.0,
            release_interval=0.2,
            republish_interval=1.0,
            republish_after=4.0,
            poll_delivery_interval=0.5,
            poll_inbox_interval=5.0,
            reap_interval=1.0,
            stuck_after=6.0,
        ),
        health=CHAOS_HEALTH,
        rate_limits={
            "afilnet": LIMITED,
            "primotexto": RateLimit(rate=500, burst=100),
            "octopush": RateLimit(rate=500, burst=100),
        },
    )


@dataclass
class ScenarioResult:
    """One scenario: its audit, extra checks, and what happened."""

    name: str
    fault: str
    messages: int
    seconds: float = 0.0
    audit: Audit | None = None
    settled: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.settled
            and self.audit is not None
            and self.audit.ok
            and all(self.checks.values())
        )


@contextmanager
def chaos_stack(
    workdir: Path,
    sandbox_url: str,
    *,
    database_url: str | None = None,
    name: str = "stack",
) -> Iterator[Stack]:
    """Redis (private), the ledger, webhooks, a worker (threads x4) and beat."""
    options = StackOptions(
        workdir=workdir / name,
        database_url=database_url,
        private_redis=True,
        sandbox_url=sandbox_url,
        flower=False,
        worker_concurrency=4,
        settings=chaos_settings(),
        log_level="info",
    )
    with Stack(options) as stack:
        if not stack.wait_for_worker(timeout=60):
            raise RuntimeError(f"the worker did not answer; see {options.workdir}/worker.log")
        yield stack


class Supervisor:
    """Starts a role again when it exits, as the deployments do (systemd ``Restart=always``,
    compose ``restart: unless-stopped``): a scenario measures recovery with them, not without.

    Each restart is noted (role, exit code), since a role that dies on a fault is a finding.
    """

    ROLES = ("worker", "worker-bulk", "beat", "webhooks")

    def __init__(self, stack: Stack, interval: float = 0.3) -> None:
        self.stack = stack
        self.interval = interval
        self.restarts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="chaos-supervisor")

    def _run(self) -> None:
        starters: dict[str, Callable[[], object]] = {
            "worker": self.stack.start_worker,
            "worker-bulk": lambda: self.stack.start_worker("worker-bulk"),
            "beat": self.stack.start_beat,
            "webhooks": self.stack.start_webhooks,
        }
        while not self._stop.wait(self.interval):
            for role in self.ROLES:
                process = self.stack.processes.get(role)
                if process is None or process.poll() is None:
                    continue
                self.restarts.append(f"{role} exited ({process.returncode}), restarted")
                starters[role]()

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


Scenario = Callable[[Sandbox, Stack, int], ScenarioResult]


def forget_provider_health(stack: Stack) -> None:
    """Every provider closed: an earlier scenario's faults (a Redis restart, a storm) must not
    reroute this one's messages (a reroute is a second release of a deferred message)."""
    client = redis.Redis.from_url(stack.redis_url)
    try:
        keys = client.keys("postier:health:*")
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def supervised(scenario: Scenario) -> Scenario:
    """``scenario`` run under a ``Supervisor``; its restarts go in the result's notes."""

    @functools.wraps(scenario)
    def run(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
        forget_provider_health(stack)
        with Supervisor(stack) as supervisor:
            result = scenario(sandbox, stack, size)
        result.notes.extend(supervisor.restarts)
        return result

    return run


def wait_for_new_worker(
    stack: Stack, old_pid: int, timeout: float = 60.0, name: str = "worker"
) -> None:
    """Until the supervisor has started a worker ``name`` other than ``old_pid`` and every
    worker answers."""
    _wait(
        lambda: (p := stack.processes.get(name)) is not None and p.pid != old_pid,
        timeout,
        f"no new {name}",
    )
    if not stack.wait_for_worker(timeout=timeout):
        raise RuntimeError("the new worker did not answer")


class Batch:
    """Recipients never used before in this process, and the batches sent to them."""

    _next = count(0)

    def __init__(self, stack: Stack) -> None:
        from postier.dispatch.producer import Producer

        self.stack = stack
        self.engine = make_engine(stack.database_url)
        self.producer = Producer(stack.settings, engine=self.engine)

    @classmethod
    def numbers(cls, size: int) -> list[str]:
        base = 20_000_000 + next(cls._next) * 100_000
        return [f"+336{base + i:08d}" for i in range(size)]

    def send(
        self, size: int, *, send_at: datetime | None = None, interleave: bool = False
    ) -> list[str]:
        """Half Octopush with one text, half Primotexto with a text each; their ids.

        ``interleave``: the two halves alternate (every task then holds both providers),
        instead of following each other.
        """
        from postier.dispatch.producer import SmsRequest

        numbers = self.numbers(size)
        half = size // 2
        octopush = [
            SmsRequest(n, ONE_TEXT, provider="octopush", send_at=send_at) for n in numbers[:half]
        ]
        primotexto = [
            SmsRequest(n, f"Votre code : {100_000 + i}", provider="primotexto", send_at=send_at)
            for i, n in enumerate(numbers[half:])
        ]
        if interleave:
            mixed = [r for pair in zip(octopush, primotexto, strict=False) for r in pair]
            return self.enqueue(mixed + primotexto[len(octopush) :])
        return self.enqueue(octopush + primotexto)

    def enqueue(self, requests: Sequence[Any]) -> list[str]:
        result = self.producer.send_many(requests)
        if result.rejected:
            raise RuntimeError(f"the producer refused {len(result.rejected)} messages")
        return [handle.id for handle in result.accepted]

    def close(self) -> None:
        self.engine.dispose()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(0.05)


def _finish(
    result: ScenarioResult, sandbox: Sandbox, engine: Engine, ids: Sequence[str], started: float
) -> ScenarioResult:
    result.settled = wait_settled(engine, ids, timeout=SETTLE_TIMEOUT)
    result.audit = audit(engine, sandbox.records(), ids)
    result.seconds = time.monotonic() - started
    return result


def _mid_batch(sandbox: Sandbox, ids: Sequence[str], what: str) -> int:
    """Wait until part of the batch reached the provider; how much did."""
    _wait(lambda: len(sandbox.records()) >= max(1, len(ids) // 5), 60, f"no send before {what}")
    return len(sandbox.records())


def _slow_down(sandbox: Sandbox, latency: float) -> None:
    for provider in ("octopush", "primotexto"):
        sandbox.set_faults(provider, latency=latency)


def _calm(sandbox: Sandbox) -> None:
    for provider in ("octopush", "primotexto", "afilnet"):
        sandbox.set_faults(provider)


# -- the scenarios ---------------------------------------------------------------------------


@supervised
def worker_sigkill(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
    """SIGKILL of both workers (each lane's) and their pools mid-batch; the supervisor starts
    new ones."""
    result = ScenarioResult("worker SIGKILL", "workers and pools killed mid-batch", size)
    batch, started = Batch(stack), time.monotonic()
    try:
        _slow_down(sandbox, 0.05)
        ids = batch.send(size)
        at_kill = _mid_batch(sandbox, ids, "the kill")
        old = {name: stack.processes[name].pid for name in ("worker", "worker-bulk")}
        for name in old:
            stack.kill(name, signal.SIGKILL)
        result.notes.append(f"killed with {at_kill} of {size} at the provider")
        _calm(sandbox)
        for name, pid in old.items():
            wait_for_new_worker(stack, pid, name=name)
        return _finish(result, sandbox, batch.engine, ids, started)
    finally:
        batch.close()


@supervised
def redis_restart(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
    """The broker (private Redis, no persistence) restarted on its port mid-batch."""
    result = ScenarioResult("Redis restart", "Redis stopped 1 s mid-batch, queues lost", size)
    batch, started = Batch(stack), time.monotonic()
    try:
        _slow_down(sandbox, 0.05)
        ids = batch.send(size)
        at_restart = _mid_batch(sandbox, ids, "the restart")
        if stack.redis is None:
            raise RuntimeError("the stack has no Redis handle")
        restart_redis(stack.redis, downtime=1.0)
        result.notes.append(f"restarted with {at_restart} of {size} at the provider")
        _calm(sandbox)
        return _finish(result, sandbox, batch.engine, ids, started)
    finally:
        batch.close()


@supervised
def provider_storm(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
    """Timeouts, 500/503, 429 with Retry-After, lost answers and Octopush 153, then calm."""
    result = ScenarioResult(
        "provider storm",
        "timeouts, 500, 503, 429 + Retry-After, lost answers, Octopush 153 for 3 s",
        size,
    )
    storm: dict[str, Any] = {
        "rate_503": 0.15,
        "rate_429": 0.15,
        "retry_after": 0.5,
        "rate_500": 0.1,
        "rate_timeout": 0.05,
        "hang_seconds": 2.5,
        "rate_drop_after": 0.05,
    }
    batch, started = Batch(stack), time.monotonic()
    try:
        sandbox.set_faults("octopush", **storm, rate_congestion=0.15)
        sandbox.set_faults("primotexto", **storm)
        ids = batch.send(size, interleave=True)
        time.sleep(3.0)
        requests = dict(sandbox.core.request_counts)
        _calm(sandbox)
        result.notes.append(f"requests during the storm: {requests}")
        return _finish(result, sandbox, batch.engine, ids, started)
    finally:
        batch.close()


def _releases(engine: Engine, ids: Sequence[str]) -> dict[str, int]:
    """How many times each message was released (``scheduled → queued``)."""
    events = delivery_events_table
    counts: dict[str, int] = dict.fromkeys(ids, 0)
    with session_scope(engine) as session:
        for chunk in chunks(list(ids)):
            query = (
                select(events.c.message_id, func.count())
                .where(
                    events.c.message_id.in_(chunk),
                    events.c.from_status == MessageStatus.SCHEDULED,
                    events.c.to_status == MessageStatus.QUEUED,
                )
                .group_by(events.c.message_id)
            )
            counts.update({str(m): int(n) for m, n in session.execute(query)})
    return counts


@supervised
def two_beats(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
    """A second beat started beside the first: every pass runs twice, each send once."""
    result = ScenarioResult("two beats", "two beat processes release the same deferred batch", size)
    batch, started = Batch(stack), time.monotonic()
    stack.start_beat("beat2")
    try:
        ids = batch.send(size, send_at=datetime.now(UTC) + timedelta(seconds=2))
        finished = _finish(result, sandbox, batch.engine, ids, started)
        releases = _releases(batch.engine, ids)
        finished.checks["each released once"] = all(n == 1 for n in releases.values())
        finished.notes.append(f"releases per message: {sorted(set(releases.values()))}")
        return finished
    finally:
        stack.kill("beat2", signal.SIGTERM)
        batch.close()


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events in any interval of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] < at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@supervised
def slow_provider_rate_limited(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
    """Afilnet answering in 0.3 s with its account's limit (8/s, burst 2) saturated."""
    count_ = max(12, size // 4)
    result = ScenarioResult(
        "slow provider, rate limit saturated",
        f"Afilnet SMS answering in 0.3 s; limit {LIMITED.rate:g}/s burst {LIMITED.burst}",
        count_,
    )
    batch, started = Batch(stack), time.monotonic()
    try:
        from postier.dispatch.producer import SmsRequest

        sandbox.set_faults("afilnet", latency=0.3)
        numbers = batch.numbers(count_)
        ids = batch.enqueue(
            [SmsRequest(n, f"Rappel {i}", provider="afilnet") for i, n in enumerate(numbers)]
        )
        finished = _finish(result, sandbox, batch.engine, ids, started)
        times = [float(r["accepted_at"]) for r in sandbox.records("afilnet")]
        peak = max_in_window(times, 1.0)
        # over any second at most burst + rate*1 requests (GCRA); one more for clock edges
        allowed = int(LIMITED.burst + LIMITED.rate) + 1
        finished.checks["rate limit held"] = peak <= allowed
        finished.notes.append(f"most sends in one second: {peak} (allowed {allowed})")
        _calm(sandbox)
        return finished
    finally:
        batch.close()


def postgres_restart(
    sandbox: Sandbox,
    workdir: Path,
    sandbox_url: str,
    size: int,
    server_url: str | None,
    *,
    private_cluster: bool = True,
) -> ScenarioResult:
    """The PostgreSQL ledger's server restarted mid-batch (a private cluster of our own).

    ``private_cluster=False`` (or no server binaries): a fresh database of the server at
    ``server_url`` instead, every connection to it cut mid-batch.
    """
    from benchmarks.throughput.postgres import fresh_database, server_answers, terminate_connections

    unavailable = PrivateCluster.unavailable() if private_cluster else "not asked for"
    if unavailable is None:
        fault = "private PostgreSQL cluster restarted (pg_ctl restart -m fast) mid-batch"
    else:
        fault = "fresh database, every connection cut (pg_terminate_backend) mid-batch"
    result = ScenarioResult("PostgreSQL restart", fault, size)
    started = time.monotonic()
    if unavailable is None:
        with (
            PrivateCluster() as cluster,
            chaos_stack(workdir, sandbox_url, database_url=cluster.url, name="stack-pg") as stack,
        ):
            return _pg_batch(result, sandbox, stack, size, started, cluster.restart)
    if server_url is None or server_answers(server_url) is not None:
        result.error = f"no private cluster ({unavailable}) and no PostgreSQL server"
        return result
    result.notes.append(f"no private cluster: {unavailable}")
    with (
        fresh_database(server_url, prefix="postier_chaos") as url,
        chaos_stack(workdir, sandbox_url, database_url=url, name="stack-pg") as stack,
    ):
        from benchmarks.throughput.postgres import admin_engine

        admin = admin_engine(server_url)
        database = url.rsplit("/", 1)[-1]
        try:
            return _pg_batch(
                result,
                sandbox,
                stack,
                size,
                started,
                lambda: terminate_connections(admin, database),
            )
        finally:
            admin.dispose()


def _pg_batch(
    result: ScenarioResult,
    sandbox: Sandbox,
    stack: Stack,
    size: int,
    started: float,
    fault: Callable[[], object],
) -> ScenarioResult:
    batch = Batch(stack)
    try:
        with Supervisor(stack) as supervisor:
            _slow_down(sandbox, 0.05)
            ids = batch.send(size)
            at_fault = _mid_batch(sandbox, ids, "the restart")
            fault()
            result.notes.append(f"fault with {at_fault} of {size} at the provider")
            _calm(sandbox)
            _finish(result, sandbox, batch.engine, ids, started)
        result.notes.extend(supervisor.restarts)
        return result
    finally:
        batch.close()


@dataclass(frozen=True, slots=True)
class OutageTimes:
    """What ``default_provider_outage`` measured, in seconds."""

    #: producer call → ``sent``, median, of the first and of the later half of the codes
    #: produced during the outage
    first_half_median: float
    later_half_median: float
    #: outage start → the first message rerouted to the fallback
    to_reroute: float | None
    #: outage end → the first message sent by the recovered provider
    to_return: float | None


def _sent_at(engine: Engine, ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """Each message's ``sent`` time (Unix seconds) and the provider it was sent by."""
    events, messages = delivery_events_table, messages_table
    found: dict[str, tuple[float, str]] = {}
    with session_scope(engine) as session:
        for chunk in chunks(list(ids)):
            query = (
                select(events.c.message_id, func.min(events.c.at), messages.c.provider)
                .join(messages, messages.c.id == events.c.message_id)
                .where(events.c.message_id.in_(chunk), events.c.to_status == MessageStatus.SENT)
                .group_by(events.c.message_id, messages.c.provider)
            )
            for message_id, at, provider in session.execute(query):
                found[str(message_id)] = (_as_utc(at).timestamp(), str(provider))
    return found


def _first_reroute(engine: Engine, ids: Sequence[str], provider: str) -> float | None:
    events = delivery_events_table
    firsts: list[float] = []
    with session_scope(engine) as session:
        for chunk in chunks(list(ids)):
            query = select(func.min(events.c.at)).where(
                events.c.message_id.in_(chunk),
                events.c.detail.startswith(f"reroute {provider} -> "),
            )
            at = session.execute(query).scalar_one_or_none()
            if at is not None:
                firsts.append(_as_utc(at).timestamp())
    return min(firsts) if firsts else None


def _as_utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def outage_times(
    engine: Engine,
    produced: Sequence[tuple[str, float]],
    started: float,
    ended: float,
    provider: str,
) -> OutageTimes:
    """Measure a stream of codes ``(id, producer call time)`` across an outage of
    ``provider`` from ``started`` to ``ended`` (Unix seconds)."""
    sent = _sent_at(engine, [message_id for message_id, _ in produced])
    during = [(m, at) for m, at in produced if started <= at < ended and m in sent]
    half = len(during) // 2
    latencies = [sent[m][0] - at for m, at in during]
    reroute = _first_reroute(engine, [m for m, _ in produced], provider)
    returned = [t for t, by in sent.values() if by == provider and t >= ended]
    return OutageTimes(
        first_half_median=_median(latencies[:half]),
        later_half_median=_median(latencies[half:]),
        to_reroute=reroute - started if reroute is not None else None,
        to_return=min(returned) - ended if returned else None,
    )


def provider_outage(outage: float) -> Scenario:
    """The scenario of an outage of the default SMS provider lasting ``outage`` seconds."""

    @supervised
    def default_provider_outage(sandbox: Sandbox, stack: Stack, size: int) -> ScenarioResult:
        return _outage(sandbox, stack, size, outage)

    return default_provider_outage


def _outage(sandbox: Sandbox, stack: Stack, size: int, outage: float) -> ScenarioResult:
    """The default SMS provider (Primotexto) answers 503 to everything for ``outage`` seconds,
    then recovers, while one-time codes are produced one by one.

    Health routing must reroute the codes to the fallback within seconds (the later half of
    those produced during the outage reach ``sent`` in under a second, median) and bring the
    traffic back to the recovered provider within one cool-down.
    """
    provider = stack.settings.routing.sms_notification
    health = stack.settings.health
    result = ScenarioResult(
        "default provider outage",
        f"{provider} answers 503 to every request for {outage:g} s, then recovers",
        size,
    )
    batch, began = Batch(stack), time.monotonic()
    # codes through the outage and one cool-down after it (and a little more)
    spacing = (outage + health.cool_down + 3.0) / size
    produced: list[tuple[str, float]] = []
    try:
        numbers = batch.numbers(size)
        started = time.time()
        sandbox.set_faults(provider, rate_503=1.0, retry_after=None)
        ended: float | None = None
        for index, number in enumerate(numbers):
            due = started + index * spacing
            time.sleep(max(0.0, due - time.time()))
            if ended is None and time.time() >= started + outage:
                sandbox.set_faults(provider)
                ended = time.time()
            at = time.time()
            handle = batch.producer.send_sms(number, f"Votre code : {300_000 + index}")
            produced.append((handle.id, at))
        if ended is None:
            sandbox.set_faults(provider)
            ended = time.time()
        ids = [message_id for message_id, _ in produced]
        finished = _finish(result, sandbox, batch.engine, ids, began)
        times = outage_times(batch.engine, produced, started, ended, provider)
        finished.checks["later codes sent in < 1 s (median)"] = times.later_half_median < 1.0
        finished.checks["rerouted"] = times.to_reroute is not None
        finished.checks["back within one cool-down"] = (
            times.to_return is not None and times.to_return <= health.cool_down + 2 * spacing
        )
        finished.notes.append(
            f"producer call → sent, median: first half {times.first_half_median:.2f} s, "
            f"later half {times.later_half_median:.2f} s"
        )
        finished.notes.append(
            "time to reroute "
            + (f"{times.to_reroute:.2f} s" if times.to_reroute is not None else "never")
            + ", time to return "
            + (f"{times.to_return:.2f} s" if times.to_return is not None else "never")
            + f" (cool-down {health.cool_down:g} s)"
        )
        return finished
    finally:
        _calm(sandbox)
        batch.close()


#: the scenarios that share one SQLite stack, in the order they run
SHARED_STACK: tuple[Scenario, ...] = (
    worker_sigkill,
    redis_restart,
    provider_storm,
    two_beats,
    slow_provider_rate_limited,
    provider_outage(OUTAGE_SECONDS),
)
