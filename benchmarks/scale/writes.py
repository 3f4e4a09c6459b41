"""SQLite: how long a one-row write waits while beat's passes run back to back.

SQLite has one write lock for the whole file: a pass that holds it while it walks many rows
makes every producer and worker wait. A child process runs every periodic pass in a loop,
committing as beat does (harsher than beat, which runs each on its period); this process
meanwhile stores one message at a time, as ``send_sms`` does, and times each, split into its
INSERT (which waits for the write lock) and its COMMIT (which runs SQLite's automatic
checkpoint when it takes the log past 1,000 pages). The rows it stores are deleted at the end.
"""

from __future__ import annotations

import multiprocessing
import os
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
    #: the worst INSERT (waiting for the write lock, then writing) and the worst COMMIT (ms)
    max_insert_ms: float = 0.0
    max_commit_ms: float = 0.0
    #: the largest the ``-wal`` file grew during the run (bytes)
    max_wal_bytes: int = 0
    #: writes slower than ``SLOW_WRITE_MS``, by the beat loop's step they overlapped
    slow_writes_during: dict[str, int] = field(default_factory=dict)


#: a step of the beat loop longer than this is noted, to be matched with the slow writes
_NOTED_MS = 5.0
#: a write slower than this is matched with the beat loop's steps it overlapped
SLOW_WRITE_MS = 25.0
#: the longest hold of each pass; the (name, start, end) of each step longer than _NOTED_MS
_Steps = tuple[dict[str, float], list[tuple[str, float, float]]]


def slow_writes_by_step(
    writes: list[tuple[float, float]], spans: list[tuple[str, float, float]]
) -> dict[str, int]:
    """For the writes slower than ``SLOW_WRITE_MS``, how many overlapped each step (a write
    may overlap several); ``"nothing noted"`` counts those that overlapped none."""
    found: dict[str, int] = defaultdict(int)
    for began, ended in writes:
        if (ended - began) * 1000.0 <= SLOW_WRITE_MS:
            continue
        names = {name for name, start, end in spans if start < ended and end > began}
        for name in names or {"nothing noted"}:
            found[name] += 1
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _beat_loop(
    url: str,
    now: datetime,
    started: Event,
    stop: Event,
    loops: Synchronized[int],
    holds: multiprocessing.Queue[_Steps],
) -> None:
    """Every periodic pass, committed as the pass commits, until ``stop``; then the rows it
    moved are put back, so a kept ledger measures the same next time. The longest each pass
    held a transaction open, and when each step longer than ``_NOTED_MS`` ran, go to
    ``holds``."""
    engine = make_engine(url)
    collector = LedgerCollector(url, 0.0)
    released: list[str] = []
    checked: dict[str, datetime | None] = {}
    longest: dict[str, float] = defaultdict(float)
    spans: list[tuple[str, float, float]] = []

    @contextmanager
    def held(name: str, *, writes: bool = True) -> Iterator[None]:
        began = time.perf_counter()
        yield
        ended = time.perf_counter()
        if writes:
            longest[name] = max(longest[name], (ended - began) * 1000.0)
        if (ended - began) * 1000.0 > _NOTED_MS:
            spans.append((name, began, ended))

    started.set()
    try:
        while not stop.is_set():
            with held("release due rows"), session_scope(engine) as session:
                released += release_due(session, now, limit=5000)
            with held("delivery poll: read", writes=False), session_scope(engine) as session:
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
            with held("metrics' count", writes=False):
                collector.counts()
            with held("planner statistics"):
                optimize(engine)
            with held("counts folded"):
                fold_pending(engine)
            with held("other passes' reads", writes=False), session_scope(engine) as session:
                undispatched_inbound(session, 500)
                unpublished(session, now - timedelta(seconds=120), 5000)
                stuck_sending(session, now - timedelta(seconds=120), 500)
                unsettled_batch_tags(
                    session, now - timedelta(seconds=30), now - timedelta(hours=24)
                )
            with loops.get_lock():
                loops.value += 1
    finally:
        holds.put(({name: round(ms, 3) for name, ms in longest.items()}, spans))
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
    url: str,
    now: datetime,
    *,
    seconds: float = 10.0,
    interval: float = 0.02,
) -> WriteLatency:
    """Store one message every ``interval`` for ``seconds`` while the passes loop; the waits."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    loops = context.Value("i", 0)
    holds: multiprocessing.Queue[_Steps] = context.Queue()
    child = context.Process(target=_beat_loop, args=(url, now, started, stop, loops, holds))
    engine = make_engine(url)
    wal = f"{engine.url.database}-wal"
    with engine.connect() as connection:  # start from an empty log, before the loop starts
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    child.start()
    durations: list[float] = []
    inserts: list[float] = []
    commits: list[float] = []
    spans: list[tuple[float, float]] = []
    wal_bytes = 0
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
                inserted = time.perf_counter()
            ended = time.perf_counter()
            durations.append((ended - began) * 1000.0)
            spans.append((began, ended))
            inserts.append((inserted - began) * 1000.0)
            commits.append((ended - inserted) * 1000.0)
            wal_bytes = max(wal_bytes, _size(wal))
            stop.wait(interval)
    finally:
        stop.set()
        try:
            longest_hold, steps = holds.get(timeout=60)
        except queue.Empty:  # the child never started (the error above says why)
            longest_hold, steps = {}, []
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
        max_insert_ms=max(inserts),
        max_commit_ms=max(commits),
        max_wal_bytes=wal_bytes,
        slow_writes_during=slow_writes_by_step(spans, steps),
    )


__all__ = ["WriteLatency", "slow_writes_by_step", "write_latency"]
