"""Messages per (provider, status), kept by the database itself: reading them costs a few rows.

A ``COUNT`` over the live rows costs the live set, and counting every state costs the ledger
(12 s at 5 million messages on SQLite): the metrics count every 30 s on every worker. So the
counts are kept as each row moves, by triggers on ``messages`` that migration 0008 creates;
every write is counted, whichever code makes it (a transition, a bulk insert, the retention
pass's deletes, a person's hand-made ``UPDATE``), in the writer's own transaction:

- SQLite: row triggers add ±1 to ``message_counts`` directly. SQLite has one writer at a time,
  so a counter row is never contended, and no deadlock can come of it.
- PostgreSQL: statement triggers append one row per (provider, status) a statement changed,
  with the net change, to ``message_count_deltas``: insert-only, so concurrent workers never
  wait on a counter row (an ``UPDATE`` of shared counter rows would serialize every worker
  on them and could deadlock two transactions that move rows in opposite directions).
  ``fold_counts`` (beat's ``fold-ledger-counts`` pass) moves them into ``message_counts``
  in small transactions.

``counted`` reads ``message_counts`` plus the deltas not yet folded in one statement, hence
one snapshot: the counts are exact, as of that snapshot, on both backends. Its cost is the
counter rows (providers × statuses) plus the deltas written since the last fold: the write
rate's, never the ledger's size. ``recount`` rebuilds them from a full ``COUNT`` (the
migration does it once; the scale benchmark's loader after writing rows with triggers off).
A NULL provider is counted under ``""``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from sqlalchemy import Engine, func, select, text, union_all
from sqlalchemy.orm import Session

from postier.ledger.models import (
    MessageStatus,
    message_count_deltas_table,
    message_counts_table,
    messages_table,
)

#: delta rows one fold transaction moves (PostgreSQL): a few milliseconds each
FOLD_BATCH: Final = 5000

_FOLD_SQL: Final = text(
    """
    WITH moved AS (
        DELETE FROM message_count_deltas
        WHERE id IN (
            SELECT id FROM message_count_deltas ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
        )
        RETURNING provider, status, delta
    ), folded AS (
        INSERT INTO message_counts (provider, status, total)
        SELECT provider, status, sum(delta) FROM moved
        GROUP BY provider, status ORDER BY provider, status
        ON CONFLICT (provider, status) DO UPDATE SET total = message_counts.total + excluded.total
        RETURNING 1
    )
    SELECT count(*) FROM moved
    """
)


def counted(
    session: Session, statuses: Collection[MessageStatus] | None = None
) -> list[tuple[str | None, MessageStatus, int]]:
    """``(provider, status, count)`` for every pair with messages, exact as of one snapshot;
    only ``statuses`` when given."""
    counts, deltas = message_counts_table, message_count_deltas_table
    both = union_all(
        select(counts.c.provider, counts.c.status, counts.c.total.label("n")),
        select(deltas.c.provider, deltas.c.status, deltas.c.delta.label("n")),
    ).subquery()
    query = select(both.c.provider, both.c.status, func.sum(both.c.n)).group_by(
        both.c.provider, both.c.status
    )
    if statuses is not None:
        query = query.where(both.c.status.in_(sorted(MessageStatus(s).value for s in statuses)))
    return [
        (provider or None, MessageStatus(status), int(total))
        for provider, status, total in session.execute(query)
        if total
    ]


def fold_counts(session: Session, limit: int = FOLD_BATCH) -> int:
    """Move up to ``limit`` deltas into ``message_counts`` (PostgreSQL); how many were moved.

    Two folds at once take disjoint deltas (``SKIP LOCKED``) and meet only on the counter rows,
    in one order. SQLite writes no deltas: nothing to do.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return int(session.execute(_FOLD_SQL, {"limit": limit}).scalar_one())


def fold_pending(engine: Engine, *, batch: int = FOLD_BATCH, max_batches: int = 100) -> int:
    """Beat's ``fold-ledger-counts`` pass: fold the deltas, ``batch`` per transaction, until
    none is left (or ``max_batches`` were folded); how many were folded."""
    from postier.ledger.db import session_scope

    folded = 0
    for _ in range(max_batches):
        with session_scope(engine) as session:
            moved = fold_counts(session, batch)
        folded += moved
        if moved < batch:
            break
    return folded


def recount(session: Session) -> None:
    """Set every counter from a ``COUNT`` of ``messages`` (reads the whole ledger).

    For a ledger whose rows were written with the triggers off. On PostgreSQL, writers of
    ``messages`` wait meanwhile (a table lock until the caller commits): a move made between
    the count and the commit would otherwise be counted twice, or not at all.
    """
    counts, messages = message_counts_table, messages_table
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE"))
    session.execute(message_count_deltas_table.delete())
    session.execute(counts.delete())
    provider = func.coalesce(messages.c.provider, "")
    session.execute(
        counts.insert().from_select(
            ["provider", "status", "total"],
            select(provider, messages.c.status, func.count()).group_by(provider, messages.c.status),
        )
    )


__all__ = ["FOLD_BATCH", "counted", "fold_counts", "fold_pending", "recount"]
