"""Plans that cannot flip: the index a periodic query reads, named on SQLite.

SQLite picks among indexes by its statistics, or by fixed guesses when there are none; either
can send a query that should read a few rows into a walk of thousands, and a walk under the
write lock stalls every writer of the file. The queries beat and the workers run all day say
which index they read (``INDEXED BY``): SQLite then uses it or refuses the statement, it never
falls back to a scan. PostgreSQL has no such hint and needs none as much: its statistics are
kept by autovacuum, and the partial indexes make the intended plan the cheap one by far.
``tests/ledger/test_plans.py`` checks every such query's plan on both backends.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.selectable import Select

from postier.ledger.models import SQLITE_MESSAGES_PK, messages_table

_Statement = TypeVar("_Statement", bound=Select[Any] | UpdateBase)


def pinned(statement: _Statement, index: str, table: Table = messages_table) -> _Statement:
    """``statement`` reading ``table`` through ``index`` on SQLite (the hint is SQLite's only).

    The query's WHERE must let SQLite use the index (for a partial index, contain its
    predicate verbatim), or SQLite refuses it: a test's failure, never a silent scan.
    """
    hint = f"INDEXED BY {index}"
    if isinstance(statement, Select):
        return statement.with_hint(table, hint, dialect_name="sqlite")
    return statement.with_hint(hint, selectable=table, dialect_name="sqlite")


def by_primary_key(statement: _Statement) -> _Statement:
    """``statement`` on ``messages`` reaching its rows by id (an ``id = …``/``id IN …`` filter).

    Without it, ``UPDATE … WHERE id IN (…) AND status = 'scheduled'`` may be planned as a walk
    of every scheduled row, checking each against the list.
    """
    return pinned(statement, SQLITE_MESSAGES_PK)


def targets_ids(condition: ColumnElement[bool]) -> bool:
    """Whether ``condition`` is ``messages.id = …`` or ``messages.id IN (…)``."""
    return (
        isinstance(condition, BinaryExpression)
        and condition.left is messages_table.c.id
        and condition.operator in (operators.eq, operators.in_op)
    )


def ids_picked(
    session: Session, picked: Select[Any], column: ColumnElement[Any] = messages_table.c.id
) -> ColumnElement[bool]:
    """``column IN (picked)``, ``picked`` run once; on PostgreSQL its rows locked, others' skipped.

    On PostgreSQL the pick is a ``MATERIALIZED`` CTE with ``FOR UPDATE SKIP LOCKED``: written as
    a plain ``IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``, the planner may run the subquery
    again as the inner side of a join, and the statement then moves more rows than ``n``.
    """
    if session.get_bind().dialect.name == "postgresql":
        cte = picked.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        return column.in_(select(*cte.c))
    return column.in_(picked.scalar_subquery())


__all__ = ["by_primary_key", "ids_picked", "pinned", "targets_ids"]
