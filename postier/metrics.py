"""Prometheus metrics of the workers, served on ``/metrics`` by each worker's main process.

What is measured, and where:

- ``postier_messages_total{provider,state}``: messages a worker moved to ``state`` (sent,
  scheduled for a retry or after a rate limit, unknown, failed, queued for a fallback provider),
  counted at the dispatcher's call sites (``postier.dispatch.sending``), and the final states a
  delivery poll or a receipt settles (delivered, undelivered, expired;
  ``postier.dispatch.polling``): the final totals, which the ledger gauge leaves out;
- ``postier_send_duration_seconds{provider}``: the provider call, success or not;
- ``postier_send_retries_total{provider}``: attempts that ended in a scheduled retry;
- ``postier_rate_limit_wait_seconds{provider}``: time spent waiting for a rate-limit token
  (0 when none was needed), and ``postier_rate_limit_deferrals_total{provider}``: sends put back
  to ``scheduled`` because the wait was longer than ``rate_limit_max_block``;
- ``postier_lane_wait_seconds{lane}``: how long a message waited from its hand-over to the
  broker until a worker claimed it, per lane (transactional, bulk: ``postier.dispatch.lanes``);
- ``postier_callbacks_total{kind,outcome}``: callback attempts delivered, retried or given
  up, and ``postier_callback_latency_seconds{kind}``: from the move to the application's
  acknowledgement (``postier.dispatch.callbacks``);
- ``postier_tasks_total{task,state}``: Celery tasks run, from the ``task_postrun`` signal, and
  ``postier_queue_consumed_total{queue}``: the same tasks by the queue they came from (its
  routing key), so an alert sees a queue that fills while no worker takes from it;
- ``postier_queue_depth{queue}`` (``postier.send`` is the transactional lane, ``postier.bulk``
  the bulk lane) and ``postier_queue_unacked``: Redis ``LLEN`` of the send
  queues (every priority level) and the broker's unacknowledged deliveries, read at scrape time;
- ``postier_ledger_messages{provider,state}``: ledger rows in a live state (scheduled, queued,
  sending, sent, unknown) by provider, read at most every ``metrics.ledger_interval``
  seconds from the counters the database keeps (``postier.ledger.counts``): a few rows,
  whatever the size of the ledger or of its live set (counting rows took 12 s at 5 million
  messages on SQLite);
- ``postier_provider_health{provider,state}``: 1 for each provider account's current health
  state (closed, open, half_open), 0 for the others, read from Redis at scrape time
  (``postier.dispatch.health``); ``postier_provider_health_changes_total{provider,state}``:
  changes this worker made; ``postier_reroutes_total{provider,fallback}``: messages sent to
  the fallback because their provider was unhealthy;
- ``postier_ledger_oldest_unknown_timestamp_seconds``: when the oldest ``unknown`` message
  last moved (absent when there is none), from the same partial index, so an alert sees an
  ambiguous send nobody settled;
- ``postier_beat_last_publish_timestamp_seconds``: beat's last hand-over of a periodic task to
  the broker (``postier.dispatch.heartbeat``), read from Redis at scrape time;
- ``postier_provider_balance{provider,unit}`` and
  ``postier_provider_balance_timestamp_seconds{provider}``: each configured account's funds
  as beat's balance pass last read them (``postier.dispatch.balances``), from Redis.

The ledger, queue, health, beat and balance families are cluster-wide: every worker reports the
same numbers, so dashboards take ``max`` over instances rather than ``sum``.

A prefork pool runs tasks in child processes: the worker's main process then switches
``prometheus_client`` to its multiprocess mode (a directory of per-process files, aggregated
at scrape time) before the pool forks. The threads, solo and gevent pools run tasks in the main
process and use one plain registry. Either way the exporter is started by the ``worker_init``
signal in the main process, so ``celery -A worker worker`` needs nothing more.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from postier import tasknames
from postier.config import Settings, get_settings

log = logging.getLogger(__name__)

#: delivery latency of callbacks: immediate ones take under a second, retried ones hours
CALLBACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0, 86400.0)
#: provider calls: a fast answer is tens of ms, the read timeout is 10 s by default
SEND_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: rate-limit waits: none (a Redis round trip), then up to ``rate_limit_max_block``
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: enqueue → claim: a code should be claimed within milliseconds; bulk may wait minutes
LANE_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)
#: kombu's Redis transport keeps one list per priority step: ``queue``, ``queue\x06\x163``, …
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_UNACKED_KEY = "unacked"
#: the label of a message whose provider is not known yet
NO_PROVIDER = "none"


class DispatchMetrics:
    """The metric objects the dispatcher and the task signals record into.

    ``registry=None`` leaves them unregistered, as the multiprocess mode wants (its collector
    reads the per-process files instead).
    """

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.messages = Counter(
            "postier_messages",
            "Messages a worker moved to a state, by provider.",
            ["provider", "state"],
            registry=registry,
        )
        self.send_duration = Histogram(
            "postier_send_duration_seconds",
            "Duration of provider send calls, whatever their outcome.",
            ["provider"],
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "postier_send_retries",
            "Send attempts that ended in a scheduled retry.",
            ["provider"],
            registry=registry,
        )
        self.rate_limit_wait = Histogram(
            "postier_rate_limit_wait_seconds",
            "Time spent waiting for a rate-limit token before a send (0 when none was needed).",
            ["provider"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.rate_limit_deferrals = Counter(
            "postier_rate_limit_deferrals",
            "Sends put back to scheduled because the rate-limit wait exceeded the block limit.",
            ["provider"],
            registry=registry,
        )
        self.lane_wait = Histogram(
            "postier_lane_wait_seconds",
            "Time from a message's hand-over to the broker to its claim by a worker, per lane.",
            ["lane"],
            buckets=LANE_WAIT_BUCKETS,
            registry=registry,
        )
        self.health_changes = Counter(
            "postier_provider_health_changes",
            "Provider health state changes this worker made, by the state entered.",
            ["provider", "state"],
            registry=registry,
        )
        self.reroutes = Counter(
            "postier_reroutes",
            "Messages rerouted to the fallback because their provider was unhealthy.",
            ["provider", "fallback"],
            registry=registry,
        )
        self.callbacks = Counter(
            "postier_callbacks",
            "Callback attempts by outcome: delivered, retried (failed, tried again later) or"
            " given_up (failed past callbacks.max_age).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.callback_latency = Histogram(
            "postier_callback_latency_seconds",
            "Time from a status move (or inbound message) to its event's acknowledgement.",
            ["kind"],
            buckets=CALLBACK_BUCKETS,
            registry=registry,
        )
        self.tasks = Counter(
            "postier_tasks",
            "Celery tasks run by this worker, by task name and final state.",
            ["task", "state"],
            registry=registry,
        )
        self.consumed = Counter(
            "postier_queue_consumed",
            "Tasks this worker took from a broker queue and finished, whatever their outcome.",
            ["queue"],
            registry=registry,
        )


#: the metrics of a process that runs tasks in itself (threads/solo pool, tests, producers)
PROCESS_REGISTRY = CollectorRegistry()
_lock = threading.Lock()
_metrics: DispatchMetrics | None = None
_multiprocess = False


def get_metrics() -> DispatchMetrics:
    """This process's metrics, created on first use (after the worker chose its mode)."""
    global _metrics
    found = _metrics
    if found is not None:
        return found
    with _lock:
        if _metrics is None:
            _metrics = DispatchMetrics(None if _multiprocess else PROCESS_REGISTRY)
        return _metrics


def _label(provider: str | None) -> str:
    return provider or NO_PROVIDER


# -- the dispatcher's call sites -------------------------------------------------------------------
def count_message(provider: str | None, state: Any) -> None:
    """One message moved to ``state`` (a ``MessageStatus`` or its value) with ``provider``;
    ``None`` (the row had moved on already) counts nothing."""
    if state is not None:
        get_metrics().messages.labels(_label(provider), str(getattr(state, "value", state))).inc()


def count_retry(provider: str | None) -> None:
    """An attempt ended in a retry scheduled for later (also a message moved to scheduled)."""
    found = get_metrics()
    found.retries.labels(_label(provider)).inc()
    found.messages.labels(_label(provider), "scheduled").inc()


def count_deferral(provider: str | None) -> None:
    """A send was put back because its rate-limit wait was too long to block for (also a
    message moved to scheduled)."""
    found = get_metrics()
    found.rate_limit_deferrals.labels(_label(provider)).inc()
    found.messages.labels(_label(provider), "scheduled").inc()


def observe_lane_wait(
    lane: Any, published_at: datetime | None, claimed_at: datetime | None
) -> None:
    """A message of ``lane`` handed to the broker at ``published_at`` was claimed at
    ``claimed_at`` (nothing is observed when either is unknown)."""
    if published_at is None or claimed_at is None:
        return
    waited = max(0.0, (claimed_at - published_at).total_seconds())
    get_metrics().lane_wait.labels(str(getattr(lane, "value", lane))).observe(waited)


def count_health_change(provider: str, state: str) -> None:
    """A provider's health state changed to ``state`` (closed, open, half_open)."""
    get_metrics().health_changes.labels(_label(provider), state).inc()


def count_reroute(provider: str, fallback: str) -> None:
    """A message of an unhealthy ``provider`` went to ``fallback`` (also a queued message)."""
    found = get_metrics()
    found.reroutes.labels(_label(provider), _label(fallback)).inc()
    found.messages.labels(_label(fallback), "queued").inc()


def count_callback(kind: str, outcome: str, latency: float | None = None) -> None:
    """One callback attempt of an event of ``kind`` ended in ``outcome`` (delivered, retried,
    given_up); ``latency``: seconds from the event to its acknowledgement, when delivered."""
    found = get_metrics()
    found.callbacks.labels(kind, outcome).inc()
    if latency is not None:
        found.callback_latency.labels(kind).observe(max(0.0, latency))


@contextmanager
def time_send(provider: str | None) -> Iterator[None]:
    """Observe the duration of the provider call in the block, even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        get_metrics().send_duration.labels(_label(provider)).observe(time.perf_counter() - started)


@contextmanager
def time_rate_limit(provider: str | None) -> Iterator[None]:
    """Observe how long taking a rate-limit token blocked."""
    started = time.perf_counter()
    try:
        yield
    finally:
        get_metrics().rate_limit_wait.labels(_label(provider)).observe(
            time.perf_counter() - started
        )


# -- scrape-time collectors ------------------------------------------------------------------------
def queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps for ``queue``, one per priority step."""
    return [
        queue if step == 0 else f"{queue}{KOMBU_PRIORITY_SEP}{step}"
        for step in KOMBU_PRIORITY_STEPS
    ]


class QueueDepthCollector(Collector):
    """``LLEN`` of every send queue and the size of the broker's unacked hash, per scrape."""

    def __init__(self, client: redis.Redis, queues: Sequence[str] = tasknames.ALL_QUEUES) -> None:
        self.client = client
        self.queues = tuple(queues)

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "postier_queue_depth",
            "Tasks waiting in a broker queue (Redis LLEN over its priority lists).",
            labels=["queue"],
        )
        unacked = GaugeMetricFamily(
            "postier_queue_unacked",
            "Tasks delivered to a worker and not yet acknowledged (every queue).",
        )
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                pipe.hlen(KOMBU_UNACKED_KEY)
                sizes = [int(size) for size in pipe.execute()]
        except (redis.RedisError, OSError) as exc:
            log.warning("queue depth not read", extra={"error": str(exc)})
            return
        steps = len(KOMBU_PRIORITY_STEPS)
        for index, queue in enumerate(self.queues):
            depth.add_metric([queue], sum(sizes[index * steps : (index + 1) * steps]))
        unacked.add_metric([], sizes[-1])
        yield depth
        yield unacked


class LedgerCollector(Collector):
    """Live ledger rows by provider and state, counted at most every ``interval`` seconds.

    Read from the ledger's counters (``count_live_by_provider``), cached between scrapes:
    every worker reports it, and a scrape must stay cheap. Final states are not reported
    here: ``postier_messages_total`` has their totals.
    """

    def __init__(self, database_url: str, interval: float) -> None:
        from postier.ledger.db import make_engine

        self.engine = make_engine(database_url)
        self.interval = interval
        self._cached: list[tuple[str, str, int]] | None = None
        self._cached_at = 0.0
        self._oldest: datetime | None = None
        self._oldest_at = 0.0
        self._lock = threading.Lock()

    def counts(self) -> list[tuple[str, str, int]]:
        """``(provider, state, count)`` of the live rows, from the cache when it is fresh."""
        from sqlalchemy.orm import Session

        from postier.ledger.queries import count_live_by_provider

        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached_at < self.interval:
                return self._cached
            with Session(self.engine) as session:
                rows = [
                    (_label(provider), status.value, count)
                    for provider, status, count in count_live_by_provider(session)
                ]
            self._cached, self._cached_at = rows, now
            return rows

    def oldest_unknown(self) -> datetime | None:
        """When the oldest ``unknown`` row last moved, from the cache when it is fresh.

        ``min(updated_at)`` over the ``unknown`` entries of ``ix_messages_live``: the cost is
        the unknown rows', a handful, whatever the ledger's size.
        """
        from sqlalchemy.orm import Session

        from postier.ledger.models import MessageStatus
        from postier.ledger.queries import oldest_update_in

        with self._lock:
            now = time.monotonic()
            if self._oldest_at and now - self._oldest_at < self.interval:
                return self._oldest
            with Session(self.engine) as session:
                found = oldest_update_in(session, MessageStatus.UNKNOWN)
            self._oldest, self._oldest_at = found, now
            return found

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "postier_ledger_messages",
            "Messages in a live state in the ledger, by provider (the same on every worker;"
            " final totals: postier_messages_total).",
            labels=["provider", "state"],
        )
        from sqlalchemy.exc import SQLAlchemyError

        try:
            rows = self.counts()
        except SQLAlchemyError as exc:
            log.warning("ledger counts not read", extra={"error": str(exc)})
            return
        for provider, state, count in rows:
            family.add_metric([provider, state], count)
        yield family
        try:
            oldest = self.oldest_unknown()
        except SQLAlchemyError as exc:
            log.warning("oldest unknown message not read", extra={"error": str(exc)})
            return
        if oldest is not None:
            yield GaugeMetricFamily(
                "postier_ledger_oldest_unknown_timestamp_seconds",
                "Unix time the oldest message in the unknown state got there (absent: none).",
                value=_aware(oldest).timestamp(),
            )


def _aware(moment: datetime) -> datetime:
    """``moment`` in UTC when a backend returned it without its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class BeatCollector(Collector):
    """Beat's last publish, read from Redis per scrape (``postier.dispatch.heartbeat``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterable[Metric]:
        from postier.dispatch.heartbeat import last_publish

        try:
            found = last_publish(self.client)
        except (redis.RedisError, OSError) as exc:
            log.warning("beat heartbeat not read", extra={"error": str(exc)})
            return
        if found is None:
            return
        yield GaugeMetricFamily(
            "postier_beat_last_publish_timestamp_seconds",
            "Unix time of beat's last hand-over of a periodic task to the broker.",
            value=found,
        )


class BalanceCollector(Collector):
    """Each configured provider account's funds as beat's pass last read them (Redis)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterable[Metric]:
        from postier.dispatch.balances import stored_balances

        try:
            balances = stored_balances(self.client)
        except (redis.RedisError, OSError) as exc:
            log.warning("provider balances not read", extra={"error": str(exc)})
            return
        amount = GaugeMetricFamily(
            "postier_provider_balance",
            "A provider account's funds in their unit (credits, euro), as last read.",
            labels=["provider", "unit"],
        )
        read_at = GaugeMetricFamily(
            "postier_provider_balance_timestamp_seconds",
            "Unix time of the last successful reading of a provider account's balance.",
            labels=["provider"],
        )
        for balance in balances:
            amount.add_metric([balance.provider, balance.unit], float(balance.amount))
            read_at.add_metric([balance.provider], balance.read_at)
        yield amount
        yield read_at


class HealthCollector(Collector):
    """Each SMS and WhatsApp provider account's health state, read from Redis per scrape."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        from postier.dispatch.health import ProviderHealth

        self.health = ProviderHealth(client, settings)

    def collect(self) -> Iterable[Metric]:
        from postier.dispatch.health import HealthState
        from postier.dispatch.routing import SMS_PROVIDERS

        family = GaugeMetricFamily(
            "postier_provider_health",
            "1 for the provider account's current health state, 0 for the others.",
            labels=["provider", "state"],
        )
        try:
            states = {provider: self.health.state(provider) for provider in SMS_PROVIDERS}
        except (redis.RedisError, OSError) as exc:
            log.warning("provider health not read", extra={"error": str(exc)})
            return
        for provider, current in states.items():
            for state in HealthState:
                family.add_metric([provider, state.value], float(state is current))
        yield family


# -- the exporter ----------------------------------------------------------------------------------
@dataclass
class Exporter:
    """A running /metrics endpoint and what it owns."""

    registry: CollectorRegistry
    port: int
    server: Any
    thread: threading.Thread
    multiprocess_dir: Path | None = None
    #: a temporary multiprocess directory to remove on stop
    owned_dir: bool = False
    collectors: list[Collector] = field(default_factory=list)

    def stop(self) -> None:
        """Stop serving; remove a temporary multiprocess directory."""
        self.server.shutdown()
        self.server.server_close()
        for collector in self.collectors:
            if self.registry is PROCESS_REGISTRY:
                PROCESS_REGISTRY.unregister(collector)
        if self.owned_dir and self.multiprocess_dir is not None:
            shutil.rmtree(self.multiprocess_dir, ignore_errors=True)


def use_multiprocess_mode(directory: str | None) -> Path:
    """Switch this process (and the children it forks) to prometheus_client's multiprocess mode.

    Called before the pool forks and before any metric exists. ``PROMETHEUS_MULTIPROC_DIR`` is
    where prometheus_client's per-process files go (it reads the variable itself); its value
    class is chosen when the library is imported, so it is switched here explicitly. Files of a
    previous run are removed: counters restart with the worker, as Prometheus expects.
    """
    global _multiprocess, _metrics
    path = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="postier-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    with _lock:
        _multiprocess = True
        _metrics = None
    return path


def start_exporter(settings: Settings, *, multiprocess: bool = False) -> Exporter | None:
    """Serve /metrics on ``settings.metrics.host:port``; None when disabled or the port is taken.

    A taken port is logged, not raised: a second worker on the same host without its own
    ``POSTIER_METRICS__PORT`` still sends messages.
    """
    config = settings.metrics
    if not config.enabled:
        return None
    directory: Path | None = None
    if multiprocess:
        directory = use_multiprocess_mode(config.multiprocess_dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    else:
        registry = PROCESS_REGISTRY
        get_metrics()
    # a scrape must answer even when Redis does not: short timeouts, the depth left out
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    collectors: list[Collector] = [
        QueueDepthCollector(client),
        BeatCollector(client),
        BalanceCollector(client),
    ]
    if settings.health.enabled:
        collectors.append(HealthCollector(client, settings))
    if config.ledger_interval > 0:
        collectors.append(LedgerCollector(settings.database_url, config.ledger_interval))
    for collector in collectors:
        registry.register(collector)
    try:
        server, thread = start_http_server(config.port, addr=config.host, registry=registry)
    except OSError as exc:
        log.warning(
            "metrics endpoint not started",
            extra={"port": config.port, "error": str(exc)},
        )
        if registry is PROCESS_REGISTRY:
            for collector in collectors:
                PROCESS_REGISTRY.unregister(collector)
        return None
    port = int(server.server_port)
    log.info("metrics on http://%s:%d/metrics", config.host, port)
    return Exporter(
        registry=registry,
        port=port,
        server=server,
        thread=thread,
        multiprocess_dir=directory,
        owned_dir=multiprocess and not config.multiprocess_dir,
        collectors=collectors,
    )


# -- Celery wiring ---------------------------------------------------------------------------------
_exporter: Exporter | None = None


def _is_prefork(pool_cls: Any) -> bool:
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool

    implementation = get_implementation(pool_cls)
    return isinstance(implementation, type) and issubclass(implementation, TaskPool)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    global _exporter
    prefork = _is_prefork(getattr(sender, "pool_cls", None) or "prefork")
    _exporter = start_exporter(get_settings(), multiprocess=prefork)


def _on_worker_shutdown(**_: Any) -> None:
    global _exporter
    if _exporter is not None:
        _exporter.stop()
        _exporter = None


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if _multiprocess:
        mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def _on_task_postrun(task: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(task, "name", None) or "unknown"
    found = get_metrics()
    found.tasks.labels(name, state or "UNKNOWN").inc()
    queue = task_queue(task)
    if queue is not None:
        found.consumed.labels(queue).inc()


def task_queue(task: Any) -> str | None:
    """The queue a running task was taken from: its delivery's routing key (each of Postier's
    queues is bound under its own name); None when the task was not delivered by a broker."""
    info = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    key = info.get("routing_key") if isinstance(info, dict) else None
    return str(key) if key else None


def connect_worker_signals() -> None:
    """Start the exporter with the worker and count tasks; idempotent (``dispatch_uid``)."""
    from celery import signals

    signals.worker_init.connect(_on_worker_init, dispatch_uid="postier.metrics.init", weak=False)
    signals.worker_shutdown.connect(
        _on_worker_shutdown, dispatch_uid="postier.metrics.shutdown", weak=False
    )
    signals.worker_process_shutdown.connect(
        _on_process_shutdown, dispatch_uid="postier.metrics.process_shutdown", weak=False
    )
    signals.task_postrun.connect(
        _on_task_postrun, dispatch_uid="postier.metrics.postrun", weak=False
    )


__all__ = [
    "PROCESS_REGISTRY",
    "BalanceCollector",
    "BeatCollector",
    "DispatchMetrics",
    "Exporter",
    "HealthCollector",
    "LedgerCollector",
    "QueueDepthCollector",
    "connect_worker_signals",
    "count_deferral",
    "count_health_change",
    "count_message",
    "count_reroute",
    "count_retry",
    "get_metrics",
    "observe_lane_wait",
    "queue_keys",
    "start_exporter",
    "task_queue",
    "time_rate_limit",
    "time_send",
    "use_multiprocess_mode",
]
