"""SQLite: how long a one-row write waits while beat's passes run back to back.

SQLite has one write lock for the whole file: a pass that holds it while it walks many rows
makes every producer and worker wait. A child process runs every periodic pass in a loop,
committing as beat does (harsher than beat, which runs each on its period); this process
meanwhile stores one message at a time, as ``send_sms`` does, and times each. The rows it
stores are deleted at the end.
"""

from __future__ import annotations

import multiprocessing
import queue
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from sqlalchemy import Engine, bindparam, delete, update

from postier.ledger.counts import fold_pending
from postier.ledger.db import in_short_transactions, make_engine, optimize, session_scope
from postier.ledger.models import (
    Channel,
    MessageKind,
    delivery_events_table,
    messages_table,
    new_message_id,
)
from postier.ledger.queries import (
    awaiting_delivery,
    insert_messages,
    mark_status_checked,
    release_due,
    stuck_sending,
    undispatched_inbound,
    unpublished,
    unsettled_batch_tags,
)
from postier.metrics import LedgerCollector


@dataclass(frozen=True, slots=True)
class WriteLatency:
    """One-row writes timed while the passes ran."""

    writes: int
    median_ms: float
    p99_ms: float
    max_ms: float
    #: passes the child completed meanwhile (each pass once = one loop)
    beat_loops: int
    #: per pass, the longest it held a write transaction open (ms): what a writer waits behind
    longest_hold_ms: dict[str, float] = field(default_factory=dict)


def _beat_loop(
    url: str,
    now: datetime,
    started: Event,
    stop: Event,
    loops: Synchronized[int],
    holds: multiprocessing.Queue[dict[str, float]],
) -> None:
    """Every periodic pass, committed as the pass commits, until ``stop``; then the rows it
    moved are put back, so a kept ledger measures the same next time. The longest each pass
    held a transaction open goes to ``holds``."""
    engine = make_engine(url)
    collector = LedgerCollector(url, 0.0)
    released: list[str] = []
    checked: dict[str, datetime | None] = {}
    longest: dict[str, float] = defaultdict(float)

    @contextmanager
    def held(name: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        longest[name] = max(longest[name], (time.perf_counter() - began) * 1000.0)

    started.set()
    try:
        while not stop.is_set():
            with held("release due rows"), session_scope(engine) as session:
                released += release_due(session, now, limit=5000)
            with session_scope(engine) as session:
                rows = awaiting_delivery(session, now - timedelta(seconds=5), 500)
            for row in rows:
                checked.setdefault(row.id, row.status_checked_at)
            with held("delivery poll: mark asked"):
                at = datetime.now(UTC)
                in_short_transactions(
                    engine,
                    [row.id for row in rows],
                    lambda session, ids: mark_status_checked(session, ids, at),  # noqa: B023
                )
            collector.counts()
            with held("planner statistics"):
                optimize(engine)
            with held("counts folded"):
                fold_pending(engine)
            with session_scope(engine) as session:
                undispatched_inbound(session, 500)
                unpublished(session, now - timedelta(seconds=120), 5000)
                stuck_sending(session, now - timedelta(seconds=120), 500)
                unsettled_batch_tags(
                    session, now - timedelta(seconds=30), now - timedelta(hours=24)
                )
            with loops.get_lock():
                loops.value += 1
    finally:
        holds.put({name: round(ms, 3) for name, ms in longest.items()})
        _put_back(engine, now, released, checked)
        collector.engine.dispose()
        engine.dispose()


def _put_back(
    engine: Engine, now: datetime, released: list[str], checked: dict[str, datetime | None]
) -> None:
    """Undo the loop's moves (bypassing the state machine: a benchmark's own rows)."""
    m = messages_table
    with session_scope(engine) as session:
        for start in range(0, len(released), 500):
            chunk = released[start : start + 500]
            session.execute(
                update(m)
                .where(m.c.id.in_(chunk))
                .values(status="scheduled", previous_status=None, send_at=now, published_at=None)
            )
            session.execute(
                delete(delivery_events_table).where(
                    delivery_events_table.c.message_id.in_(chunk),
                    delivery_events_table.c.to_status == "queued",
                    delivery_events_table.c.from_status == "scheduled",
                )
            )
        if checked:
            session.execute(
                update(m)
                .where(m.c.id == bindparam("message_id"))
                .values(status_checked_at=bindparam("checked_at")),
                [{"message_id": id_, "checked_at": at} for id_, at in checked.items()],
            )


def write_latency(
    url: str, now: datetime, *, seconds: float = 10.0, interval: float = 0.02
) -> WriteLatency:
    """Store one message every ``interval`` for ``seconds`` while the passes loop; the waits."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    loops = context.Value("i", 0)
    holds: multiprocessing.Queue[dict[str, float]] = context.Queue()
    child = context.Process(target=_beat_loop, args=(url, now, started, stop, loops, holds))
    child.start()
    engine = make_engine(url)
    durations: list[float] = []
    ids: list[str] = []
    try:
        if not started.wait(60):
            raise RuntimeError("the beat loop did not start")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = {
                "id": new_message_id(),
                "channel": Channel.SMS,
                "kind": MessageKind.SMS,
                "provider": "primotexto",
                "recipient": "+33612345678",
                "body": "Votre code : 123456",
            }
            began = time.perf_counter()
            with session_scope(engine) as session:
                ids.extend(insert_messages(session, [row]))
            durations.append((time.perf_counter() - began) * 1000.0)
            stop.wait(interval)
    finally:
        stop.set()
        try:
            longest_hold = holds.get(timeout=60)
        except queue.Empty:  # the child never started (the error above says why)
            longest_hold = {}
        child.join(60)
        with session_scope(engine) as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                session.execute(
                    delete(delivery_events_table).where(
                        delivery_events_table.c.message_id.in_(chunk)
                    )
                )
                session.execute(delete(messages_table).where(messages_table.c.id.in_(chunk)))
        engine.dispose()
    ordered = sorted(durations)
    return WriteLatency(
        writes=len(ordered),
        median_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        max_ms=ordered[-1],
        beat_loops=int(loops.value),
        longest_hold_ms=longest_hold,
    )


__all__ = ["WriteLatency", "write_latency"]
