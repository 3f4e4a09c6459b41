"""What each measured query's plan does: reach its rows through an index, or scan a table.

The statements are the ones the measured code really sends (captured from the engine while it
runs once), explained by the database itself: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN
(FORMAT JSON)`` on PostgreSQL. A plan "scans" when it reads a whole ledger table, or the whole
of a full (not partial) index; a search of an index, or a walk of a partial index (which holds
only the live rows), reads the working set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

#: the tables whose size grows with the ledger
LEDGER_TABLES: Final = frozenset({"messages", "delivery_events", "inbound_messages"})
_EXPLAINED: Final = ("SELECT", "UPDATE", "DELETE", "WITH")
_SQLITE_SCAN: Final = re.compile(r"^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?")


@dataclass(frozen=True, slots=True)
class Plan:
    """The plans of one measured query's statements, summed up."""

    uses_index: bool
    #: the access path of each statement to a ledger table, e.g. ``SEARCH messages USING …``
    detail: str

    @property
    def label(self) -> str:
        return "index" if self.uses_index else "scan"


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    parameters: Any


@contextmanager
def captured(engine: Engine) -> Iterator[list[Statement]]:
    """The statements ``engine`` sends during the block (those a plan can be asked for)."""
    found: list[Statement] = []

    def record(
        _conn: Connection,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        executemany: bool,
    ) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head in _EXPLAINED and not executemany:
            found.append(Statement(statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)


def partial_indexes(engine: Engine) -> frozenset[str]:
    """Names of the partial indexes (``… WHERE …``) of the ledger's database."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"
            )
        else:
            rows = connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%% WHERE %%'"
            )
        return frozenset(str(name) for (name,) in rows)


def explain(engine: Engine, statements: Sequence[Statement]) -> Plan:
    """Every statement's plan, summed up: an index throughout, or a scan somewhere."""
    partial = partial_indexes(engine)
    explain_one: Callable[[Connection, Statement, frozenset[str]], tuple[bool, list[str]]] = (
        _explain_sqlite if engine.dialect.name == "sqlite" else _explain_postgresql
    )
    uses_index = True
    details: list[str] = []
    with engine.connect() as connection:
        for statement in statements:
            indexed, lines = explain_one(connection, statement, partial)
            uses_index = uses_index and indexed
            details.extend(line for line in lines if line not in details)
        connection.rollback()
    return Plan(uses_index, "; ".join(details) or "no ledger table read")


def _explain_sqlite(
    connection: Connection, statement: Statement, partial: frozenset[str]
) -> tuple[bool, list[str]]:
    rows = connection.exec_driver_sql(
        "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters
    ).all()
    indexed = True
    lines: list[str] = []
    for row in rows:
        detail = str(row[-1])
        words = detail.split()
        if len(words) < 2 or words[1] not in LEDGER_TABLES:
            continue
        lines.append(detail)
        scan = _SQLITE_SCAN.match(detail)
        if scan is not None and scan.group(2) not in partial:
            indexed = False
    return indexed, lines


def _explain_postgresql(
    connection: Connection, statement: Statement, partial: frozenset[str]
) -> tuple[bool, list[str]]:
    (document,) = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + statement.sql, statement.parameters
    ).one()
    indexed = True
    lines: list[str] = []
    for node in _nodes(document[0]["Plan"]):
        relation = node.get("Relation Name")
        kind = str(node["Node Type"])
        index = node.get("Index Name")
        if kind == "Bitmap Index Scan":
            lines.append(f"{kind} using {index}")
            if index not in partial and "Index Cond" not in node:
                indexed = False
            continue
        if relation not in LEDGER_TABLES:
            continue
        lines.append(f"{kind} using {index} on {relation}" if index else f"{kind} on {relation}")
        if kind == "Seq Scan":
            indexed = False
        elif index and index not in partial and "Index Cond" not in node:
            indexed = False  # the whole of a full index, in its order
    return indexed, lines


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


__all__ = ["LEDGER_TABLES", "Plan", "Statement", "captured", "explain", "partial_indexes"]
