"""The measures of the benchmark, each against the same sandbox process and the same Redis.

- ``run_baseline``: the plain Celery app of ``benchmarks.throughput.baseline`` drains N one-message
  tasks (prefork pool), timed from the first publish to the provider's last acceptance.
- ``run_end_to_end``: Postier's stack (``postier.stack``: worker, beat) on a ledger; one
  ``send_many`` of N SMS, timed from the call to the last ledger ``sent`` event.
- ``run_bulk``: the duration of one ``send_many`` call of many messages (rows stored and
  tasks published), the worker running.
- ``run_deferred``: many scheduled messages due over a window; lateness of each is its
  ledger ``sent`` time minus its ``send_at``.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from benchmarks.throughput import baseline, procfs
from benchmarks.throughput.profiling import Profile, Sampler
from benchmarks.throughput.provider import SandboxLoad, SandboxProcess
from postier.config import RateLimit, Settings
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import MessageStatus, delivery_events_table, messages_table
from postier.stack import BULK_WORKER, TRANSACTIONAL_WORKER, Stack, StackOptions

#: what counts as done for an end-to-end measure: the provider accepted, the ledger says so
DONE = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
)
SETTLED = (*DONE, MessageStatus.FAILED, MessageStatus.UNKNOWN, MessageStatus.CANCELLED)
#: the text of every benchmark SMS of the "one text" workload (a campaign's)
SAME_TEXT = "Soldes d'hiver : -30% sur tout le magasin ce week-end."


def bench_numbers(count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct valid French mobile numbers (E.164)."""
    return [f"+336{10_000_000 + start + i:08d}" for i in range(count)]


def bench_texts(count: int, *, same: bool) -> list[str]:
    """The texts of the workload: one text for all, or a personalised one each."""
    if same:
        return [SAME_TEXT] * count
    return [f"Bonjour, votre code de connexion est {100_000 + i}." for i in range(count)]


def bench_settings() -> Settings:
    """The stack's settings: defaults, except rate limits far above what is measured.

    The baseline has no rate limit; the benchmark measures the dispatcher, not the limit
    (the chaos scenario "slow provider, rate limit saturated" covers the limiter).
    """
    unlimited = RateLimit(rate=1_000_000.0, burst=100_000)
    return Settings(
        _env_file=None,
        rate_limits={name: unlimited for name in ("afilnet", "primotexto", "octopush")},
    )


def wait_until(
    condition: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str
) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Usage:
    """CPU seconds and peak memory of the processes of one measure."""

    worker_cpu: float = 0.0
    other_cpu: float = 0.0
    #: the largest worker's peak (each worker is its own deployment unit)
    worker_peak_mib: float = 0.0
    beat_peak_mib: float = 0.0
    #: every worker's peak, by role (main process and pool summed)
    worker_peaks: dict[str, float] = field(default_factory=dict)
    #: every worker's memory at the end of the measure, shared pages counted once (PSS)
    worker_pss: dict[str, float] = field(default_factory=dict)


@dataclass
class Measure:
    """One timed run: how many messages, how long, and what it cost."""

    messages: int
    seconds: float
    usage: Usage = field(default_factory=Usage)
    #: seconds of the enqueue step alone (the producer call or the publishing loop)
    enqueue_seconds: float = 0.0
    profile: Profile | None = None
    notes: list[str] = field(default_factory=list)
    #: the sandbox's CPU and the provider requests it served over the measured window
    sandbox: SandboxLoad | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def worker_cpu_per_message_ms(self) -> float:
        return 1000 * self.usage.worker_cpu / self.messages if self.messages else 0.0

    @property
    def sandbox_cpu_per_request_ms(self) -> float | None:
        return self.sandbox.cpu_per_request_ms if self.sandbox is not None else None

    @property
    def total_cpu_per_message_ms(self) -> float:
        total = self.usage.worker_cpu + self.usage.other_cpu
        return 1000 * total / self.messages if self.messages else 0.0


@dataclass
class Lateness:
    """How late deferred sends went out, in seconds past their ``send_at``."""

    messages: int
    p50: float
    p99: float
    worst: float
    #: messages due per second over the window
    due_rate: float


@dataclass
class Environment:
    """What every measure shares: a private Redis, the sandbox process, a work directory."""

    workdir: Path
    redis_url: str
    redis_pid: int | None
    sandbox: SandboxProcess
    #: the bulk worker's prefork processes; 0: the stack's default
    bulk_processes: int = 0

    def flush_broker(self) -> None:
        """Empty the private Redis: no task of one measure reaches the next."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()

    def shared_cpu(self) -> float:
        """CPU seconds of the sandbox, Redis and this process (the producer) so far."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        total = own.ru_utime + own.ru_stime + procfs.cpu_seconds(self.sandbox.pid)
        if self.redis_pid is not None:
            total += procfs.cpu_seconds(self.redis_pid)
        return total


# -- the baseline ---------------------------------------------------------------------------


def _child_env(environment: Environment) -> dict[str, str]:
    env = dict(os.environ)
    env["POSTIER_REDIS_URL"] = environment.redis_url
    env["POSTIER_SANDBOX_URL"] = environment.sandbox.url
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _wait_for_ping(app: Celery, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the worker did not answer a ping")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def run_baseline(
    environment: Environment, messages: int, concurrency: int = 0, *, latency: float = 0.0
) -> Measure:
    """Drain ``messages`` one-message tasks through the baseline app.

    The queue is filled first and the worker started after, so the rate is the drain alone:
    ``messages - 1`` over the time from the provider's first acceptance to its last (the
    baseline's most favourable figure, as in the issue's hand measure). ``latency``: seconds
    the sandbox waits before each answer, as a provider across the internet does.
    """
    environment.flush_broker()
    environment.sandbox.reset()
    if latency > 0:
        environment.sandbox.set_faults("octopush", latency=latency)
    processes = concurrency or os.cpu_count() or 2
    app = Celery("baseline-producer", broker=environment.redis_url, set_as_current=False)
    numbers = bench_numbers(messages)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for number in numbers:
            app.send_task(
                baseline.TASK, args=[number, SAME_TEXT], queue=baseline.QUEUE, producer=producer
            )
    enqueued = time.perf_counter() - started
    log = open(environment.workdir / "baseline-worker.log", "ab")  # noqa: SIM115
    sandbox_before = environment.sandbox.snapshot()
    worker = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.throughput.baseline",
            "worker",
            "-Q",
            baseline.QUEUE,
            "--pool",
            "prefork",
            "--concurrency",
            str(processes),
            "--loglevel",
            "warning",
            "-n",
            "baseline@%h",
        ],
        env=_child_env(environment),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        shared_before = environment.shared_cpu()
        wait_until(
            lambda: (
                environment.sandbox.request_count("octopush") >= messages
                or worker.poll() is not None
            ),
            timeout=60 + messages / 50 + messages * latency,
            what="baseline drain",
        )
        sandbox_load = environment.sandbox.load_since(sandbox_before)
        if worker.poll() is not None:
            raise RuntimeError(f"the baseline worker exited with {worker.returncode}")
        usage = procfs.usage(worker.pid)
        shared = environment.shared_cpu() - shared_before
        records = environment.sandbox.records("octopush")
        times = sorted(float(record["accepted_at"]) for record in records)
        measure = Measure(
            messages=messages - 1,
            seconds=times[-1] - times[0],
            enqueue_seconds=enqueued,
            usage=Usage(
                # the worker's start-up is in its CPU time: a small overestimate
                worker_cpu=usage.cpu_seconds * (messages - 1) / messages,
                other_cpu=shared,
                worker_peak_mib=usage.peak_rss_mib,
            ),
            sandbox=sandbox_load,
        )
        measure.notes.append(
            f"prefork x{processes}; enqueueing the {messages} tasks took {enqueued:.1f} s"
        )
        if len({record["recipient"] for record in records}) != messages:
            measure.notes.append(f"the provider recorded {len(records)} sends for {messages}")
        return measure
    finally:
        _stop_group(worker)
        app.close()
        log.close()


# -- Postier --------------------------------------------------------------------------------


@contextmanager
def postier_stack(
    environment: Environment,
    name: str,
    database_url: str | None,
    *,
    pool: str,
    concurrency: int,
    settings: Settings | None = None,
) -> Iterator[Stack]:
    """Postier's worker and beat on a fresh ledger (SQLite in the work directory by default)."""
    environment.flush_broker()
    environment.sandbox.reset()
    workdir = environment.workdir / name
    shutil.rmtree(workdir, ignore_errors=True)
    options = StackOptions(
        workdir=workdir,
        database_url=database_url,
        redis_url=environment.redis_url,
        sandbox_url=environment.sandbox.url,
        flower=False,
        webhooks=False,
        beat=True,
        worker_pool=pool,
        worker_concurrency=concurrency,
        bulk_worker_concurrency=environment.bulk_processes,
        settings=settings or bench_settings(),
        log_level="warning",
    )
    stack = Stack(options)
    try:
        stack.start()
        if not stack.wait_for_worker(timeout=60):
            raise RuntimeError(f"the worker did not answer; see {workdir}/worker.log")
        yield stack
    finally:
        stack.stop()


def _count_done(engine: Engine, campaign: str) -> tuple[int, int]:
    """(done, settled) messages of ``campaign``: ``sent`` or beyond, and in any final state."""
    messages = messages_table
    with session_scope(engine) as session:
        rows = session.execute(
            select(messages.c.status, func.count())
            .where(messages.c.campaign_id == campaign)
            .group_by(messages.c.status)
        ).all()
    counts = {MessageStatus(status): int(count) for status, count in rows}
    done = sum(counts.get(status, 0) for status in DONE)
    settled = sum(counts.get(status, 0) for status in SETTLED)
    return done, settled


def _last_sent_at(engine: Engine, campaign: str) -> datetime:
    events, messages = delivery_events_table, messages_table
    with session_scope(engine) as session:
        last = session.execute(
            select(func.max(events.c.at))
            .select_from(events.join(messages, messages.c.id == events.c.message_id))
            .where(messages.c.campaign_id == campaign, events.c.to_status == MessageStatus.SENT)
        ).scalar_one()
    if last is None:
        raise RuntimeError(f"no message of {campaign} was sent")
    if isinstance(last, str):  # SQLite's max() of the stored text
        last = datetime.fromisoformat(last)
    when: datetime = last
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _worker_pids(stack: Stack) -> dict[str, int]:
    """The main process of each worker of the stack (one per lane)."""
    return {
        name: process.pid
        for name, process in stack.processes.items()
        if name in (TRANSACTIONAL_WORKER, BULK_WORKER)
    }


def _pids(stack: Stack, role: str) -> int:
    process = stack.processes.get(role)
    if process is None:
        raise RuntimeError(f"no {role} in the stack")
    return process.pid


def run_end_to_end(
    environment: Environment,
    name: str,
    database_url: str | None,
    messages: int,
    *,
    same_text: bool,
    pool: str,
    concurrency: int,
    profile_seconds: float = 0.0,
    latency: float = 0.0,
) -> Measure:
    """One ``send_many`` of ``messages`` SMS through Postier, timed to the last ledger ``sent``.

    A ``send_many`` of this size takes the bulk lane: its worker's CPU is the measure's (the
    transactional worker's, idle here, is counted too). ``latency``: the sandbox's answer delay.
    """
    from postier.dispatch.producer import Producer, SmsRequest

    with postier_stack(
        environment, name, database_url, pool=pool, concurrency=concurrency
    ) as stack:
        if latency > 0:
            environment.sandbox.set_faults("octopush", latency=latency)
        engine = make_engine(stack.database_url)
        producer = Producer(stack.settings, engine=engine)
        campaign = f"bench-{name}"[:32]  # the column holds 32 characters
        requests = [
            SmsRequest(number, text, provider="octopush", campaign_id=campaign)
            for number, text in zip(
                bench_numbers(messages), bench_texts(messages, same=same_text), strict=True
            )
        ]
        workers = _worker_pids(stack)
        beat_pid = _pids(stack, "beat")
        worker_before = sum(procfs.usage(pid).cpu_seconds for pid in workers.values())
        beat_before = procfs.cpu_seconds(beat_pid)
        shared_before = environment.shared_cpu()
        sandbox_before = environment.sandbox.snapshot()
        started = datetime.now(UTC)
        result = producer.send_many(requests)
        enqueued = (datetime.now(UTC) - started).total_seconds()
        if result.rejected:
            raise RuntimeError(f"the producer refused {len(result.rejected)} benchmark messages")
        sampler = Sampler(workers[BULK_WORKER], profile_seconds) if profile_seconds > 0 else None
        settled = 0
        # each worker tree's memory, shared pages counted once, at its highest while draining
        pss = dict.fromkeys(workers, 0.0)

        def finished() -> bool:
            nonlocal settled
            for role, pid in workers.items():
                pss[role] = max(pss[role], procfs.tree_pss_mib(pid))
            _, settled = _count_done(engine, campaign)
            return settled >= messages

        wait_until(finished, timeout=120 + messages / 20, interval=0.25, what=f"{name} drain")
        sandbox_load = environment.sandbox.load_since(sandbox_before)
        each = {name: procfs.usage(pid) for name, pid in workers.items()}
        for role, pid in workers.items():
            pss[role] = max(pss[role], procfs.tree_pss_mib(pid))
        measure = Measure(
            messages=messages,
            seconds=(_last_sent_at(engine, campaign) - started).total_seconds(),
            enqueue_seconds=enqueued,
            usage=Usage(
                worker_cpu=sum(u.cpu_seconds for u in each.values()) - worker_before,
                other_cpu=environment.shared_cpu()
                - shared_before
                + procfs.cpu_seconds(beat_pid)
                - beat_before,
                worker_peak_mib=max(u.peak_rss_mib for u in each.values()),
                beat_peak_mib=procfs.peak_rss_mib(beat_pid),
                worker_peaks={name: u.peak_rss_mib for name, u in each.items()},
                worker_pss=pss,
            ),
            profile=sampler.result() if sampler is not None else None,
            sandbox=sandbox_load,
        )
        done, _ = _count_done(engine, campaign)
        if done < messages:
            measure.notes.append(f"{messages - done} of {messages} did not reach sent")
        engine.dispose()
        return measure


def run_bulk(
    environment: Environment,
    messages: int,
    *,
    pool: str,
    concurrency: int,
    database_url: str | None = None,
) -> Measure:
    """The duration of one ``send_many`` of ``messages`` SMS (stored and published), on the
    ledger at ``database_url`` (SQLite in the work directory by default)."""
    from postier.dispatch.producer import Producer, SmsRequest

    name = "bulk" if database_url is None else "bulk-postgresql"
    with postier_stack(
        environment, name, database_url, pool=pool, concurrency=concurrency
    ) as stack:
        engine = make_engine(stack.database_url)
        producer = Producer(stack.settings, engine=engine)
        requests = [
            SmsRequest(number, SAME_TEXT, provider="octopush", campaign_id="bench-bulk")
            for number in bench_numbers(messages)
        ]
        started = time.perf_counter()
        result = producer.send_many(requests)
        seconds = time.perf_counter() - started
        measure = Measure(messages=len(result.accepted), seconds=seconds, enqueue_seconds=seconds)
        if result.rejected:
            measure.notes.append(f"{len(result.rejected)} refused")
        engine.dispose()
        return measure


def lateness_of(engine: Engine, campaign: str) -> list[float]:
    """Seconds between each sent message's ``send_at`` and its ledger ``sent`` event."""
    events, messages = delivery_events_table, messages_table
    with session_scope(engine) as session:
        rows = session.execute(
            select(messages.c.send_at, events.c.at)
            .select_from(events.join(messages, messages.c.id == events.c.message_id))
            .where(
                and_(
                    messages.c.campaign_id == campaign,
                    events.c.to_status == MessageStatus.SENT,
                )
            )
        ).all()
    return [(sent - due).total_seconds() for due, sent in rows if due is not None]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def run_deferred(
    environment: Environment,
    messages: int,
    span: float,
    window: float,
    *,
    pool: str,
    concurrency: int,
    lead: float,
) -> Lateness:
    """``messages`` scheduled with send times spread over ``span`` seconds (from ``lead``
    seconds on); the lateness of those due in the first ``window`` seconds.

    The rest of the backlog stays scheduled: the release query must find the due rows among
    all of them, which is what a large backlog costs.
    """
    from postier.dispatch.producer import Producer, SmsRequest

    with postier_stack(environment, "deferred", None, pool=pool, concurrency=concurrency) as stack:
        engine = make_engine(stack.database_url)
        producer = Producer(stack.settings, engine=engine)
        campaign = "bench-deferred"
        first = datetime.now(UTC) + timedelta(seconds=lead)
        step = span / max(1, messages - 1)
        timed = min(messages, int(window / step) + 1)
        requests = [
            SmsRequest(
                number,
                SAME_TEXT,
                provider="octopush",
                campaign_id=campaign if i < timed else f"{campaign}-later",
                send_at=first + timedelta(seconds=i * step),
            )
            for i, number in enumerate(bench_numbers(messages))
        ]
        result = producer.send_many(requests)
        late_rows = sum(1 for h in result.accepted if h.status != MessageStatus.SCHEDULED)
        remaining = (first - datetime.now(UTC)).total_seconds() + window
        wait_until(
            lambda: _count_done(engine, campaign)[1] >= timed,
            timeout=max(0.0, remaining) + 60 + timed / 100,
            interval=0.5,
            what="deferred sends",
        )
        values = lateness_of(engine, campaign)
        engine.dispose()
    if late_rows:
        raise RuntimeError(f"{late_rows} rows were due before they were stored: raise the lead")
    return Lateness(
        messages=len(values),
        p50=percentile(values, 0.50),
        p99=percentile(values, 0.99),
        worst=max(values) if values else float("nan"),
        due_rate=(timed - 1) / window if window > 0 else float("inf"),
    )


@dataclass
class CampaignMeasure:
    """A campaign created from application code, fanned out and sent by the workers."""

    recipients: int
    #: the producer's ``create`` call
    create_seconds: float
    #: from ``create`` to the last message row written by the fan-out
    fan_out: Measure
    #: from ``create`` to the last ledger ``sent``
    end_to_end: Measure


def _campaign_rows(engine: Engine, campaign: str) -> int:
    messages = messages_table
    with session_scope(engine) as session:
        count = session.execute(
            select(func.count()).select_from(messages).where(messages.c.campaign_id == campaign)
        ).scalar_one()
    return int(count)


def run_campaign(
    environment: Environment, recipients: int, *, pool: str, concurrency: int
) -> CampaignMeasure:
    """One notification campaign (one text, Octopush) to ``recipients`` numbers, by list.

    Notifications, so that French quiet hours (marketing only) never hold the measure.
    """
    from postier.campaigns.producer import CampaignProducer

    with postier_stack(environment, "campaign", None, pool=pool, concurrency=concurrency) as stack:
        engine = make_engine(stack.database_url)
        producer = CampaignProducer(stack.settings, engine=engine)
        numbers = bench_numbers(recipients)
        started = datetime.now(UTC)
        handle = producer.create(
            "bench campaign",
            text=SAME_TEXT,
            recipients=numbers,
            category="notification",
            provider="octopush",
        )
        created = (datetime.now(UTC) - started).total_seconds()
        wait_until(
            lambda: _campaign_rows(engine, handle.id) >= recipients,
            timeout=120 + recipients / 50,
            interval=0.1,
            what="campaign fan-out",
        )
        fanned = (datetime.now(UTC) - started).total_seconds()
        wait_until(
            lambda: _count_done(engine, handle.id)[1] >= recipients,
            timeout=120 + recipients / 20,
            interval=0.25,
            what="campaign sends",
        )
        sent = (_last_sent_at(engine, handle.id) - started).total_seconds()
        engine.dispose()
    return CampaignMeasure(
        recipients=recipients,
        create_seconds=created,
        fan_out=Measure(messages=recipients, seconds=fanned, enqueue_seconds=created),
        end_to_end=Measure(messages=recipients, seconds=sent, enqueue_seconds=created),
    )


# -- the asyncio peer -------------------------------------------------------------------------

PEER_LIST = "benchmarks.throughput.peer"


def run_peer(
    environment: Environment, messages: int, *, processes: int = 2, latency: float = 0.0
) -> Measure:
    """Drain ``messages`` jobs with the asyncio peer (``peer.py``): ``processes`` processes of
    16 requests in flight each, timed like the baseline (first to last acceptance)."""
    environment.flush_broker()
    environment.sandbox.reset()
    if latency > 0:
        environment.sandbox.set_faults("octopush", latency=latency)
    client = redis.Redis.from_url(environment.redis_url)
    numbers = bench_numbers(messages)
    texts = bench_texts(messages, same=False)
    with client.pipeline(transaction=False) as pipe:
        for number, text in zip(numbers, texts, strict=True):
            pipe.lpush(PEER_LIST, f"{number}\t{text}")
        pipe.execute()
    client.close()
    log = open(environment.workdir / "peer.log", "ab")  # noqa: SIM115 - owned by the children
    sandbox_before = environment.sandbox.snapshot()
    started = [
        subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "benchmarks.throughput.peer",
                environment.redis_url,
                environment.sandbox.url,
                PEER_LIST,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(processes)
    ]
    try:
        shared_before = environment.shared_cpu()
        wait_until(
            lambda: (
                environment.sandbox.request_count("octopush") >= messages
                or all(p.poll() is not None for p in started)
            ),
            timeout=60 + messages / 20,
            what="asyncio peer drain",
        )
        sandbox_load = environment.sandbox.load_since(sandbox_before)
        cpu = sum(procfs.usage(p.pid).cpu_seconds for p in started)
        peak = sum(procfs.usage(p.pid).peak_rss_mib for p in started)
        shared = environment.shared_cpu() - shared_before
        records = environment.sandbox.records("octopush")
        times = sorted(float(record["accepted_at"]) for record in records)
        measure = Measure(
            messages=len(times) - 1,
            seconds=times[-1] - times[0] if len(times) > 1 else 0.0,
            usage=Usage(worker_cpu=cpu, other_cpu=shared, worker_peak_mib=peak),
            sandbox=sandbox_load,
        )
        measure.notes.append(f"asyncio, {processes} processes x 16 requests in flight")
        if len(times) < messages:
            measure.notes.append(f"the provider recorded {len(times)} sends for {messages}")
        return measure
    finally:
        for process in started:
            _stop_group(process)
        log.close()


# -- the transactional lane ---------------------------------------------------------------------


@dataclass
class TransactionalLatency:
    """Codes sent one by one, idle and while a bulk backlog drains; the bulk's own rate."""

    idle: list[float]
    loaded: list[float]
    bulk_alone: Measure
    bulk_with_codes: Measure
    #: codes of the loaded run sent after the bulk had finished (they did not test the lane)
    after_bulk: int = 0

    @staticmethod
    def summary(values: Sequence[float]) -> tuple[float, float, float]:
        """p50, p99 and max of ``values``, in seconds."""
        return percentile(values, 0.5), percentile(values, 0.99), max(values)


def _sent_at(engine: Engine, message_id: str) -> datetime | None:
    events = delivery_events_table
    with session_scope(engine) as session:
        found = session.execute(
            select(events.c.at).where(
                events.c.message_id == message_id, events.c.to_status == MessageStatus.SENT
            )
        ).scalar_one_or_none()
    if found is None:
        return None
    if isinstance(found, str):
        found = datetime.fromisoformat(found)
    when: datetime = found
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _code_latency(engine: Engine, producer: Any, number: str, index: int) -> float:
    """Send one code (the producer call) and wait for its ledger ``sent``; the seconds between."""
    started = datetime.now(UTC)
    handle = producer.send_sms(number, f"Votre code : {100_000 + index}", provider="octopush")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sent = _sent_at(engine, handle.id)
        if sent is not None:
            return (sent - started).total_seconds()
        # the latency is read from the event's own time, not from this poll: polling every
        # 5 ms cost the harness about 6 % of a core for the whole bulk drain it measures
        time.sleep(0.025)
    raise TimeoutError(f"code {index} not sent after 60 s")


def _bulk_requests(messages: int, start: int, campaign: str) -> list[Any]:
    from postier.dispatch.producer import SmsRequest

    return [
        SmsRequest(number, text, provider="octopush", campaign_id=campaign)
        for number, text in zip(
            bench_numbers(messages, start=start), bench_texts(messages, same=False), strict=True
        )
    ]


def run_transactional(
    environment: Environment,
    *,
    codes: int,
    bulk: int,
    pool: str,
    concurrency: int,
    latency: float,
    gap: float = 0.1,
) -> TransactionalLatency:
    """Codes (producer call → ledger ``sent``) on an idle stack, then while ``bulk``
    personalised messages drain; and the bulk's rate alone and with the codes going through.

    Every code is sent after the previous one reached ``sent`` (``gap`` seconds later), as a
    login page would; all go to the same provider as the bulk, at the same ``latency``.
    """
    from postier.dispatch.producer import Producer

    with postier_stack(environment, "lanes", None, pool=pool, concurrency=concurrency) as stack:
        if latency > 0:
            environment.sandbox.set_faults("octopush", latency=latency)
        engine = make_engine(stack.database_url)
        producer = Producer(stack.settings, engine=engine)
        code_numbers = bench_numbers(2 * codes, start=5_000_000)
        idle = []
        for index in range(codes):
            idle.append(_code_latency(engine, producer, code_numbers[index], index))
            time.sleep(gap)

        def drain(campaign: str, start: int, with_codes: bool) -> tuple[Measure, list[float], int]:
            requests = _bulk_requests(bulk, start, campaign)
            began = datetime.now(UTC)
            result = producer.send_many(requests)
            if result.rejected:
                raise RuntimeError(f"{len(result.rejected)} bulk messages refused")
            loaded: list[float] = []
            after = 0
            if with_codes:
                for index in range(codes, 2 * codes):
                    loaded.append(_code_latency(engine, producer, code_numbers[index], index))
                    done, _ = _count_done(engine, campaign)
                    after += int(done >= bulk)
                    time.sleep(gap)
            wait_until(
                lambda: _count_done(engine, campaign)[1] >= bulk,
                timeout=120 + bulk / 20,
                interval=0.25,
                what=f"{campaign} drain",
            )
            seconds = (_last_sent_at(engine, campaign) - began).total_seconds()
            return Measure(messages=bulk, seconds=seconds), loaded, after

        alone, _, _ = drain("bench-bulk-alone", 1_000_000, with_codes=False)
        with_codes, loaded, after = drain("bench-bulk-codes", 2_000_000, with_codes=True)
        engine.dispose()
        return TransactionalLatency(idle, loaded, alone, with_codes, after)
