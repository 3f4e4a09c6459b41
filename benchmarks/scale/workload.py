"""The database work measured: every periodic pass of beat and the metrics, and the lookups.

Each entry calls Postier's own function, as the pass or the command does, on a session whose
transaction is rolled back afterwards, so a pass that moves rows (a release) finds the same
rows on every repetition. Passes are timed at the load's "now", so the working set is the one
the loader made (``DUE_NOW`` due rows, the ``sent`` rows within the receipt window, …).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from benchmarks.scale.plans import Plan, captured, explain
from postier.config import DispatchSettings
from postier.dispatch.polling import apply_receipt
from postier.ledger import queries
from postier.ledger.counts import fold_counts
from postier.ledger.db import optimize
from postier.ledger.models import LIVE_STATUSES, MessageStatus, messages_table
from postier.metrics import LedgerCollector
from postier.providers.results import DeliveryState, Provider, StatusReport

Kind = Literal["pass", "lookup", "listing"]

#: what each kind must stay under at 5M messages (ms), per the issue's targets
TARGET_MS: Final[dict[str, float]] = {"pass": 20.0, "lookup": 5.0, "listing": 20.0}
#: the periodic passes' periods, as the default settings make them
_DISPATCH = DispatchSettings()


@dataclass(frozen=True, slots=True)
class Targets:
    """Rows the lookups look for, found once the ledger is loaded."""

    now: datetime
    message_id: str
    idempotency_key: str
    provider: str
    provider_message_id: str
    recipient: str
    recipient_hash: str


@dataclass(frozen=True, slots=True)
class Query:
    """One measured piece of database work."""

    name: str
    kind: Kind
    #: how often it runs ("" for what a person or a provider's callback triggers)
    period: str
    run: Callable[[Engine, Session, Targets], object]

    @property
    def target_ms(self) -> float:
        return TARGET_MS[self.kind]


@dataclass(frozen=True, slots=True)
class Timing:
    """The query's durations over the repetitions, in milliseconds."""

    median_ms: float
    p90_ms: float
    max_ms: float
    plan: Plan
    #: statements sent to the database by one run (0: nothing to do on this backend)
    statements: int
    #: median CPU time of this process (ms): on SQLite the database work itself, whatever
    #: the other processes of a shared machine do; on PostgreSQL only the client's part
    cpu_ms: float = 0.0


def _every(seconds: float) -> str:
    return f"{seconds:g} s"


def _collector(engine: Engine) -> LedgerCollector:
    collector = _collectors.get(id(engine))
    if collector is None or collector.engine is not engine:
        collector = LedgerCollector(engine.url.render_as_string(hide_password=False), 0.0)
        # the measured engine, so the plan capture sees the collector's statements
        collector.engine.dispose()
        collector.engine = engine
        _collectors[id(engine)] = collector
    return collector


def _metrics_counts(engine: Engine, _session: Session, _t: Targets) -> object:
    return _collector(engine).counts()


def _metrics_oldest_unknown(engine: Engine, _session: Session, _t: Targets) -> object:
    return _collector(engine).oldest_unknown()


#: one metrics collector per measured engine (made on the first, unmeasured, run)
_collectors: dict[int, LedgerCollector] = {}


def _unknown_receipt(engine: Engine, _session: Session, t: Targets) -> object:
    report = StatusReport(
        provider=Provider(t.provider),
        message_id="not-a-known-id:1",
        state=DeliveryState.DELIVERED,
        provider_status="DELIVERED",
    )
    return apply_receipt(engine, report, t.recipient)


QUERIES: Final[tuple[Query, ...]] = (
    Query(
        "release due rows",
        "pass",
        _every(_DISPATCH.release_interval),
        lambda _e, s, t: queries.release_due(s, t.now, limit=5000),
    ),
    Query(
        "rows awaiting delivery state",
        "pass",
        _every(_DISPATCH.poll_delivery_interval),
        lambda _e, s, t: queries.awaiting_delivery(
            s, t.now - timedelta(seconds=_DISPATCH.poll_delivery_interval), 500
        ),
    ),
    Query(
        "metrics' ledger count",
        "pass",
        "30 s, each worker",
        _metrics_counts,
    ),
    Query(
        "metrics' oldest unknown message",
        "pass",
        "30 s, each worker",
        _metrics_oldest_unknown,
    ),
    Query(
        "inbound rows not yet handed to the hook",
        "pass",
        _every(_DISPATCH.poll_inbox_interval),
        lambda _e, s, _t: queries.undispatched_inbound(s, 500),
    ),
    Query(
        "queued rows to republish",
        "pass",
        _every(_DISPATCH.republish_interval),
        lambda _e, s, t: queries.unpublished(
            s, t.now - timedelta(seconds=_DISPATCH.republish_after), 5000
        ),
    ),
    Query(
        "sends stuck in sending",
        "pass",
        _every(_DISPATCH.reap_interval),
        lambda _e, s, t: queries.stuck_sending(
            s, t.now - timedelta(seconds=_DISPATCH.stuck_after), 500
        ),
    ),
    Query(
        "campaign batches to settle",
        "pass",
        "15 s",
        lambda _e, s, t: queries.unsettled_batch_tags(
            s, t.now - timedelta(seconds=30), t.now - timedelta(hours=24)
        ),
    ),
    Query(
        "message by id",
        "lookup",
        "",
        lambda _e, s, t: queries.get_message(s, t.message_id),
    ),
    Query(
        "message by idempotency key",
        "lookup",
        "",
        lambda _e, s, t: queries.get_by_idempotency_key(s, t.idempotency_key),
    ),
    Query(
        "receipt matched by provider id",
        "lookup",
        "",
        lambda _e, s, t: queries.find_by_provider_message_id(
            s, t.provider, t.provider_message_id, recipient=t.recipient
        ),
    ),
    Query(
        "receipt whose id is not found (match by number)",
        "lookup",
        "",
        _unknown_receipt,
    ),
    Query(
        "a message's events",
        "lookup",
        "",
        lambda _e, s, t: queries.events_for(s, t.message_id),
    ),
    Query(
        "support page: messages to a number",
        "lookup",
        "",
        lambda _e, s, t: queries.messages_to_number(s, t.recipient, t.recipient_hash, limit=26),
    ),
    Query(
        "postier list --status failed",
        "listing",
        "",
        lambda _e, s, _t: queries.list_messages(s, status=MessageStatus.FAILED, limit=50),
    ),
    Query(
        "postier list (no filter)",
        "listing",
        "",
        lambda _e, s, _t: queries.list_messages(s, limit=50),
    ),
    Query(
        "postier list: counts of live states",
        "listing",
        "",
        lambda _e, s, _t: queries.count_by_status(s, statuses=LIVE_STATUSES),
    ),
    Query(
        "counts folded",
        "pass",
        _every(_DISPATCH.count_fold_interval),
        lambda _e, s, _t: fold_counts(s),
    ),
    Query(
        "planner statistics kept current",
        "pass",
        _every(_DISPATCH.optimize_interval),
        lambda e, _s, _t: optimize(e),
    ),
)


def find_targets(engine: Engine, now: datetime) -> Targets:
    """A delivered message with a provider id and a message with an idempotency key."""
    m = messages_table
    with Session(engine) as session:
        delivered = session.execute(
            select(m.c.id, m.c.provider, m.c.provider_message_id, m.c.recipient, m.c.recipient_hash)
            .where(m.c.id >= "8", m.c.provider_message_id.is_not(None))
            .order_by(m.c.id)
            .limit(1)
        ).one()
        key = session.execute(
            select(m.c.idempotency_key)
            .where(m.c.id >= "4", m.c.idempotency_key.is_not(None))
            .order_by(m.c.id)
            .limit(1)
        ).scalar_one()
    return Targets(
        now=now,
        message_id=str(delivered.id),
        idempotency_key=str(key),
        provider=str(delivered.provider),
        provider_message_id=str(delivered.provider_message_id),
        recipient=str(delivered.recipient),
        recipient_hash=str(delivered.recipient_hash),
    )


def measure(
    engine: Engine, query: Query, targets: Targets, *, repeat: int, warmup: int = 3
) -> Timing:
    """Median, p90 and worst of ``repeat`` runs (after ``warmup``), and the plan of one run."""
    for _ in range(warmup):
        _run_once(engine, query, targets)  # caches warm, the collector made
    with captured(engine) as statements:
        _run_once(engine, query, targets)
    plan = explain(engine, statements)
    runs = [_run_once(engine, query, targets) for _ in range(repeat)]
    durations = sorted(wall for wall, _ in runs)
    p90 = durations[min(len(durations) - 1, round(0.9 * (len(durations) - 1)))]
    cpu = statistics.median(used for _, used in runs)
    return Timing(statistics.median(durations), p90, durations[-1], plan, len(statements), cpu)


def _run_once(engine: Engine, query: Query, targets: Targets) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run."""
    session = Session(engine)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        query.run(engine, session, targets)
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    finally:
        session.rollback()
        session.close()
    return elapsed * 1000.0, used * 1000.0


__all__ = ["QUERIES", "TARGET_MS", "Query", "Targets", "Timing", "find_targets", "measure"]
