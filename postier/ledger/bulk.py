"""Bulk insertion of new messages: a 100,000-recipient campaign is stored in seconds.

SQLAlchemy's per-parameter processing costs more than the database itself, so rows are
converted once with the columns' own bind processors, written into a temporary table (the
driver's ``executemany`` on SQLite, ``COPY`` on PostgreSQL), and moved into ``messages`` by one
``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING id``, which says exactly which rows were
new. (SQLAlchemy's batched multi-row INSERT took two to six times longer; SQLite's
``executemany`` straight into ``messages``, with its indexes, twice as long as the two steps.)
Only the columns whose values differ between the rows are staged (ids and numbers, for a
bulk send of one text); a value every row shares is bound once in the move.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Final, TypeVar

from sqlalchemy import JSON, Dialect, Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postier.ledger.models import (
    Lane,
    Message,
    MessageStatus,
    messages_table,
    new_message_id,
    utcnow,
)
from postier.ledger.states import INITIAL_STATUSES

#: ids per ``IN (…)`` list: far below SQLite's 32,766 bound parameters
CHUNK: Final[int] = 500

_T = TypeVar("_T")

#: what a mapping given to ``insert_messages`` may leave out
_ROW_DEFAULTS: Final[Mapping[str, Any]] = {
    "provider": None,
    "body": "",
    "category": "notification",
    "status": MessageStatus.QUEUED,
    "send_at": None,
    "idempotency_key": None,
    "campaign_id": None,
    "lane": Lane.TRANSACTIONAL,
    "attempts": 0,
    "provider_message_id": None,
    "cost": None,
    "parts": None,
    "last_error": None,
    "published_at": None,
    "sending_started_at": None,
    "status_checked_at": None,
    "redacted_at": None,
    "callback_url": None,
    "callback_seq": 0,
    "recipient_hash": None,
}
#: a new row's status by the value it may be given as (a dict hit, not an Enum call per row)
_INITIAL: Final[Mapping[Any, MessageStatus]] = {
    **{status: status for status in INITIAL_STATUSES},
    **{status.value: status for status in INITIAL_STATUSES},
}
_REQUIRED: Final[frozenset[str]] = frozenset({"channel", "kind", "recipient"})

_TEMP_TABLE: Final[str] = "postier_new_messages"
#: the detail of a message's first event
_CREATED: Final[str] = "created"
_COLUMNS: Final[tuple[str, ...]] = tuple(column.key for column in messages_table.columns)
_COLUMN_SET: Final[frozenset[str]] = frozenset(_COLUMNS)
#: columns whose value is worked out per row by ``_prepare``, not read from the item
_DERIVED: Final[frozenset[str]] = frozenset({"id", "status", "previous_status"})
#: columns whose empty value is replaced (``_Prepared._blank``)
_FILLED: Final[frozenset[str]] = frozenset({"created_at", "updated_at", "payload"})


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a bulk call, back on after (when it was on).

    Building and storing 100,000 rows allocates some 100,000 dicts and as many tuples, none
    of them in a reference cycle; every 700 allocations the collector walks the young ones,
    and as they survive, whole generations (the process's SQLAlchemy and Celery objects
    with them): some 15 % of a bulk send's CPU. Reference counting still frees everything as
    usual; cycles made meanwhile (by this thread or another) are collected after. A nested
    or concurrent call that finds it off leaves it alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_or_ignore(session: Session, table: Table, conflict_on: list[str] | None) -> Insert:
    """``INSERT … ON CONFLICT [(conflict_on)] DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_on)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_on)
    raise NotImplementedError(f"the ledger runs on SQLite or PostgreSQL, not {dialect}")


def insert_messages(
    session: Session,
    messages: Sequence[Message | Mapping[str, Any]],
    *,
    record_events: bool = True,
) -> list[str]:
    """Store new messages in bulk; the stored id of each, in the order given.

    Each item is a ``Message`` (read as a template, not added to the session) or, much cheaper
    to build for a large campaign, a mapping of its columns (``channel``, ``kind`` and
    ``recipient`` required; ``id`` defaults to ``new_message_id()``). Each must be ``queued``
    or ``scheduled`` (then with ``send_at``).

    Idempotency: an item whose ``idempotency_key`` is already stored, or appeared earlier in
    ``messages``, is not inserted, and its position gets the id stored under that key; an item
    whose id is already stored (the same batch inserted again) is not inserted either.

    One ``None → queued|scheduled`` event is written per inserted row, so a message's events
    tell its whole life; ``record_events=False`` skips them for a campaign too large to wait
    for (about a third of the insert time).

    On SQLite the whole call holds the database's write lock, and workers wait at most
    ``busy_timeout`` for it: store a very large campaign in transactions of some 10,000 rows.
    """
    return store_messages(session, messages, record_events=record_events).ids


@dataclass(frozen=True, slots=True)
class Stored:
    """What ``store_messages`` did: the stored id of each item, in the order given, and the
    ids this call inserted (an item already stored is not among them)."""

    ids: list[str]
    inserted: set[str]


def store_messages(
    session: Session,
    messages: Sequence[Message | Mapping[str, Any]],
    *,
    record_events: bool = True,
) -> Stored:
    """``insert_messages``, also saying which rows were new: the campaign fan-out stores a
    chunk as it comes and learns here which of its rows a previous run had stored, with no
    query of its own (a list of ids in ``IN (…)`` cost PostgreSQL a scan per 500 ids while
    its statistics still described the empty table)."""
    if not messages:
        return Stored([], set())
    now = utcnow()
    prepared = _prepare(messages, now)
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        inserted = _insert_sqlite(session, dialect, prepared, record_events=record_events)
    elif dialect.name == "postgresql":
        inserted = _insert_postgresql(session, dialect, prepared, record_events=record_events)
    else:
        raise NotImplementedError(f"the ledger runs on SQLite or PostgreSQL, not {dialect.name}")

    ids = prepared.positions
    missing = [key for key, id_ in prepared.first_with_key.items() if id_ not in inserted]
    if missing:
        stored: dict[str, str] = {}
        for chunk in chunks(missing):
            found = session.execute(
                select(messages_table.c.idempotency_key, messages_table.c.id).where(
                    messages_table.c.idempotency_key.in_(chunk)
                )
            )
            stored.update({key: id_ for key, id_ in found})
        for position, key in prepared.keyed_positions:
            if key in stored:
                ids[position] = stored[key]
    return Stored(ids, inserted)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The items to insert, checked, with the columns worked out per row beside them (the
    items themselves are read, never copied or changed)."""

    #: the items to insert (a later item with an earlier one's idempotency key left out)
    rows: list[Mapping[str, Any]]
    #: per inserted row: its id and status, as stored
    ids: list[str]
    statuses: list[MessageStatus]
    #: per item given: the id it gets (an idempotency key's first row's, until the database
    #: says another row holds it)
    positions: list[str]
    first_with_key: dict[str, str]
    keyed_positions: list[tuple[int, str]]
    now: datetime
    #: the columns every row names, when all rows are mappings naming the same ones (a
    #: call's rows built alike); None otherwise
    keys: frozenset[str] | None

    def columns(self) -> dict[str, Sequence[Any]]:
        """The values of every column, one per row, defaults filled in.

        Rows naming the same columns are read a column at a time by ``itemgetter`` (in C),
        not by one ``get`` per row and column in Python.
        """
        rows = self.rows
        count = len(rows)
        keys = self.keys
        read: dict[str, Sequence[Any]] = {}
        if keys is not None:
            # a column at a time: one C call per row, no tuple per row
            read = {
                key: list(map(itemgetter(key), rows))
                for key in _COLUMNS
                if key in keys and key not in _DERIVED
            }
        result: dict[str, Sequence[Any]] = {}
        for key in _COLUMNS:
            if key == "id":
                values: Sequence[Any] = self.ids
            elif key == "status":
                values = self.statuses
            elif key == "previous_status":
                values = [None] * count
            elif keys is None:
                values = self._column(key)
            elif key in read:
                values = read[key]
                if key in _FILLED and not all(values):
                    blank = self._blank(key)
                    values = [value or blank for value in values]
            elif key in _FILLED:
                values = [self._blank(key)] * count
            else:
                values = [_ROW_DEFAULTS.get(key)] * count
            result[key] = values
        return result

    def _blank(self, key: str) -> Any:
        """What an empty value of ``key`` is stored as: the insertion time, an empty payload."""
        return {} if key == "payload" else self.now

    def _column(self, key: str) -> list[Any]:
        """The values of column ``key`` read row by row (rows naming different columns)."""
        rows = self.rows
        if key in _FILLED:
            blank = self._blank(key)
            return [row.get(key) or blank for row in rows]
        default = _ROW_DEFAULTS.get(key)
        return [row.get(key, default) for row in rows]


def _prepare(messages: Sequence[Message | Mapping[str, Any]], now: datetime) -> _Prepared:
    """Check every item (``TypeError``/``ValueError`` naming its position) before anything is
    written; row by row only what differs between rows (an item's columns are checked again
    only when they are not those of the item before)."""
    rows: list[Mapping[str, Any]] = []
    ids: list[str] = []
    statuses: list[MessageStatus] = []
    positions: list[str] = []
    first_with_key: dict[str, str] = {}
    keyed_positions: list[tuple[int, str]] = []
    checked_keys: Any = None
    #: the one set of columns every row names so far (None: rows differ, or a ``Message``)
    uniform: frozenset[str] | None = None
    uniform_ok = True
    scheduled = MessageStatus.SCHEDULED
    queued = MessageStatus.QUEUED
    for position, given in enumerate(messages):
        if isinstance(given, Message):
            item: Mapping[str, Any] = {key: getattr(given, key) for key in _COLUMNS}
            uniform_ok = False
        else:
            item = given
            keys = item.keys()
            if keys != checked_keys:
                _check_columns(keys, position)
                checked_keys = keys
                if uniform_ok:
                    if uniform is None:
                        uniform = frozenset(keys)
                    elif keys ^ uniform:
                        uniform_ok = False
        status = _INITIAL.get(item.get("status", queued))
        if status is None:
            raise ValueError(
                f"message #{position}: a new message is queued or scheduled, not {item['status']}"
            )
        if status is scheduled and item.get("send_at") is None:
            raise ValueError(f"message #{position}: a scheduled message needs send_at")
        # not .get(…, new_message_id()): a uuid4 per row costs, even when unused
        id_ = item["id"] if "id" in item else new_message_id()
        if not id_:
            raise ValueError(f"message #{position}: no id (use new_message_id())")
        key = item.get("idempotency_key")
        if key is not None:
            keyed_positions.append((position, key))
            if key in first_with_key:
                positions.append(first_with_key[key])
                continue
            first_with_key[key] = id_
        positions.append(id_)
        rows.append(item)
        ids.append(id_)
        statuses.append(status)
    alike = uniform if uniform_ok else None
    return _Prepared(rows, ids, statuses, positions, first_with_key, keyed_positions, now, alike)


def _check_columns(keys: Any, position: int) -> None:
    unknown = keys - _COLUMN_SET
    if unknown:
        raise TypeError(f"message #{position}: unknown columns {sorted(unknown)}")
    absent = _REQUIRED - keys
    if absent:
        raise TypeError(f"message #{position}: missing {sorted(absent)}")


@dataclass(frozen=True, slots=True)
class _Staged:
    """Rows split for staging: the columns whose values differ between rows (always ``id``),
    one tuple per row of them as the driver takes them, in the order of their ids (a b-tree
    filled in key order touches each page once: a third less of SQLite's insert), and the
    value shared by every row of each other column (bound once in the statement that moves
    the rows)."""

    keys: tuple[str, ...]
    tuples: list[tuple[Any, ...]]
    shared: dict[str, Any]

    def expression(self, key: str, placeholder: str) -> str:
        """``key`` in a SELECT from the staging table: its column, or the shared value."""
        return key if key in self.keys else placeholder

    def shared_values(self, keys: Sequence[str]) -> list[Any]:
        """The shared values of ``keys`` not staged, in order (the move's parameters)."""
        return [self.shared[key] for key in keys if key not in self.keys]


def _staged(dialect: Dialect, table: Table, prepared: _Prepared) -> _Staged:
    """Rows as the driver takes them, through each column's own bind processor.

    Column by column, remembering each distinct value's conversion: a campaign's rows share
    their timestamps, statuses and kinds, so most conversions are dictionary hits; a column
    whose value every row shares is not staged at all (a bulk send stages ids and numbers).
    """
    keys: list[str] = []
    columns: list[Sequence[Any]] = []
    shared: dict[str, Any] = {}
    count = len(prepared.ids)
    for key, values in prepared.columns().items():
        column_type = table.c[key].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if key != "id" and values.count(values[0]) == count:
            # one value for every row: converted once, bound once
            first = values[0]
            shared[key] = first if process is None or first is None else process(first)
            continue
        if process is not None:
            if isinstance(column_type, JSON):
                # most payloads of a bulk send are empty: that one is serialised once
                empty = process({})
                values = [
                    None if value is None else empty if value == {} else process(value)
                    for value in values
                ]
            else:
                done: dict[Any, Any] = {None: None}
                values = [
                    done[value] if value in done else done.setdefault(value, process(value))
                    for value in values
                ]
        keys.append(key)
        columns.append(values)
    tuples = list(zip(*columns, strict=True))
    tuples.sort(key=itemgetter(keys.index("id")))
    return _Staged(tuple(keys), tuples, shared)


# The SQL of the SQLite path: only our own table and column names are formatted in.
_KEYS: Final[str] = ", ".join(_COLUMNS)
_TEMP: Final[str] = f"temp.{_TEMP_TABLE}"
_SQL_DROP: Final[str] = f"DROP TABLE IF EXISTS {_TEMP}"
_SQL_INDEX: Final[str] = f"CREATE INDEX {_TEMP}_id ON {_TEMP_TABLE} (id)"
_SQL_UNSTAGE: Final[str] = f"DELETE FROM {_TEMP} WHERE id = ?"  # noqa: S608
_SQL_SAVEPOINT: Final[str] = "SAVEPOINT postier_move"
_SQL_RELEASE: Final[str] = "RELEASE postier_move"
_SQL_ROLLBACK_TO: Final[str] = "ROLLBACK TO postier_move"
#: the columns of a message's first event, from the staged rows
_EVENT_KEYS: Final[tuple[str, ...]] = ("id", "status", "created_at")

#: the page cache of the connection while it inserts (KiB): SQLite's default of 2 MiB is
#: smaller than the indexes a 100,000-row insert touches, and spilling dirty pages to the WAL
#: in mid-transaction cost about a third of the insert; set back afterwards
_SQLITE_INSERT_CACHE_KIB: Final[int] = 65_536


def _insert_sqlite(
    session: Session, dialect: Dialect, prepared: _Prepared, *, record_events: bool
) -> set[str]:
    """Rows into ``messages`` through a temporary table; the ids actually inserted.

    The creation events are copied from the same temporary table, after dropping from it the
    rows that were not inserted.

    The move runs without ``RETURNING`` inside a savepoint first: when it inserted every
    staged row (its change count says so), every id is new. Only when some row was stored
    already is it rolled back to the savepoint and run again with ``RETURNING id``, which
    says which. (Buffering and fetching 100,000 returned ids cost SQLite and Python some 5 %
    of a bulk send's instructions; the savepoint costs a sixtieth of that.)
    """
    staged = _staged(dialect, messages_table, prepared)
    keys = ", ".join(staged.keys)
    selected = ", ".join(staged.expression(key, "?") for key in _COLUMNS)
    # "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT
    move = (
        f"INSERT INTO main.messages ({_KEYS}) SELECT {selected} FROM {_TEMP} "  # noqa: S608
        "WHERE true ON CONFLICT DO NOTHING"
    )
    id_, status, created_at = (staged.expression(key, "?") for key in _EVENT_KEYS)
    events = (
        "INSERT INTO main.delivery_events (message_id, from_status, to_status, at, detail)"  # noqa: S608
        f" SELECT {id_}, NULL, {status}, {created_at}, ? FROM {_TEMP}"
    )
    connection = session.connection().connection.dbapi_connection
    cursor = connection.cursor()  # type: ignore[union-attr]
    try:
        cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = {-_SQLITE_INSERT_CACHE_KIB}")
        try:
            cursor.execute(_SQL_DROP)
            cursor.execute(
                f"CREATE TEMP TABLE {_TEMP_TABLE} AS SELECT {keys} FROM main.messages WHERE 0"  # noqa: S608
            )
            cursor.executemany(
                f"INSERT INTO {_TEMP} ({keys}) VALUES ({', '.join('?' for _ in staged.keys)})",  # noqa: S608
                staged.tuples,
            )
            inserted = _move_sqlite(
                cursor,
                move,
                staged.shared_values(_COLUMNS),
                prepared.ids,
                # outside a transaction, RELEASE would commit: then RETURNING at once
                in_transaction=bool(connection.in_transaction),  # type: ignore[union-attr]
            )
            if record_events and inserted:
                if len(inserted) < len(prepared.ids):
                    cursor.execute(_SQL_INDEX)
                    cursor.executemany(
                        _SQL_UNSTAGE, [(id_,) for id_ in prepared.ids if id_ not in inserted]
                    )
                cursor.execute(events, [*staged.shared_values(_EVENT_KEYS), _CREATED])
            cursor.execute(_SQL_DROP)
        finally:
            cursor.execute(f"PRAGMA cache_size = {int(cache)}")
    finally:
        cursor.close()
    return inserted


def _move_sqlite(
    cursor: Any, move: str, parameters: list[Any], ids: list[str], *, in_transaction: bool
) -> set[str]:
    """Run ``move`` (the staged rows into ``messages``); the ids it inserted."""
    if in_transaction:
        cursor.execute(_SQL_SAVEPOINT)
        cursor.execute(move, parameters)
        if cursor.rowcount == len(ids):
            cursor.execute(_SQL_RELEASE)
            return set(ids)
        cursor.execute(_SQL_ROLLBACK_TO)
        cursor.execute(_SQL_RELEASE)
    cursor.execute(move + " RETURNING id", parameters)
    return {row[0] for row in cursor.fetchall()}


_PG_TEMP: Final[str] = "pg_temp." + _TEMP_TABLE
_PG_DROP: Final[str] = f"DROP TABLE IF EXISTS {_PG_TEMP}"


def _pg_placeholder(dialect: Dialect, key: str) -> str:
    """A shared value in the move's SELECT, cast to its column's type (a parameter in a
    select list has none, and text is not assigned to a timestamp or a JSON column)."""
    return f"CAST(%s AS {messages_table.c[key].type.compile(dialect=dialect)})"


def _insert_postgresql(
    session: Session, dialect: Dialect, prepared: _Prepared, *, record_events: bool
) -> set[str]:
    """Rows into ``messages`` by COPY into a temporary table; the ids actually inserted.

    The move and the creation events are one statement: the events are written from the
    rows the INSERT returns, so no list of ids goes back to the server (100,000 ids passed
    to an ``= ANY(%s)`` cost the server more than the insert).
    """
    staged = _staged(dialect, messages_table, prepared)
    keys = ", ".join(staged.keys)
    selected = ", ".join(staged.expression(key, _pg_placeholder(dialect, key)) for key in _COLUMNS)
    move = (
        f"INSERT INTO messages ({_KEYS}) SELECT {selected} FROM {_PG_TEMP} "  # noqa: S608
        "ON CONFLICT DO NOTHING"
    )
    if record_events:
        move = (
            f"WITH moved AS ({move} RETURNING id, status, created_at), "  # noqa: S608
            "events AS (INSERT INTO delivery_events (message_id, from_status, to_status, at,"
            " detail) SELECT id, NULL, status, created_at, %s FROM moved) "
            "SELECT id FROM moved"
        )
        parameters = [*staged.shared_values(_COLUMNS), _CREATED]
    else:
        move += " RETURNING id"
        parameters = staged.shared_values(_COLUMNS)
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_PG_DROP)
        cursor.execute(
            f"CREATE TEMP TABLE {_TEMP_TABLE} AS SELECT {keys} FROM messages WITH NO DATA"  # noqa: S608
        )
        with cursor.copy(f"COPY {_PG_TEMP} ({keys}) FROM STDIN") as copy:
            for values in staged.tuples:
                copy.write_row(values)
        cursor.execute(move, parameters)
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute(_PG_DROP)
    finally:
        cursor.close()
    return inserted
