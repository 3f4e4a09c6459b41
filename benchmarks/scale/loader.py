"""A synthetic ledger of any size, generated inside the database itself.

Rows are made by one ``INSERT … SELECT`` per chunk over a sequence (a recursive CTE on
SQLite, ``generate_series`` on PostgreSQL), every value a function of the row's number, so
5 million messages take a few minutes instead of the hour a Python loop through the driver
would. The schema is the one the migrations build (``postier.ledger.db.upgrade``); the
secondary indexes are dropped for the load and recreated from their own DDL afterwards, so
the measured ledger has exactly the migrations' indexes. Every column of the four tables
must have an expression here: a column added to the schema fails the load (and its test)
until the loader says what it holds. The counting triggers (``postier.ledger.counts``) are off
for the load too, and the counters set from the rows at the end.

The mix (the issue's "year's volume" ledger): about 97% of messages in a final state spread
over 90 days, 2% ``sent`` awaiting a receipt (within the last 72 hours, the delivery-receipt
window), 1% ``scheduled`` in the next 30 days of which ``DUE_NOW`` are due, a few ``queued``,
``sending`` and ``unknown``; three delivery events each; 30% of messages in campaigns (one
campaign per 2,000 messages); inbound replies for 2% of them, all handed to the hook but
``UNDISPATCHED_INBOUND``. Recipients repeat (a third as many numbers as messages). The
events are simplified (created, claimed, last move); only their count and keys matter to the
queries measured.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import text

from postier.ledger.counts import recount
from postier.ledger.db import make_engine, optimize, session_scope, upgrade
from postier.ledger.models import (
    campaigns_table,
    delivery_events_table,
    inbound_messages_table,
    messages_table,
)

#: scheduled messages whose ``send_at`` has passed when the ledger is measured
DUE_NOW: Final = 20
#: inbound messages whose hook has not run yet
UNDISPATCHED_INBOUND: Final = 10
#: messages per INSERT … SELECT (one transaction each on PostgreSQL)
CHUNK: Final = 500_000
#: the tables the loader fills (and whose secondary indexes it rebuilds)
TABLES: Final = ("campaigns", "messages", "delivery_events", "inbound_messages")

_DAY: Final = 86_400
_M32: Final = 4_294_967_296


@dataclass(frozen=True, slots=True)
class LoadedLedger:
    """A ledger ready to measure: where it is, its size and the instant its data is relative to."""

    url: str
    size: int
    #: the generated data's "now": every pass is measured at this instant
    now: datetime
    #: seconds the load took (zero when an existing ledger was reused)
    seconds: float


@dataclass(frozen=True, slots=True)
class _Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL."""

    #: the timestamp ``offset`` seconds before the load's "now" (an SQL integer expression)
    before_now: Callable[[str], str]
    #: eight lower-case hex digits of a 32-bit integer expression
    hex8: Callable[[str], str]
    #: a non-negative integer expression as eight decimal digits
    digits8: Callable[[str], str]
    #: a text constant as the JSON column's type
    json: Callable[[str], str]
    least: str
    #: ``FROM`` clause yielding ``i`` from ``start`` to ``stop`` inclusive
    sequence: Callable[[int, int], str]


def _sqlite_dialect(now_epoch: int) -> _Dialect:
    return _Dialect(
        # SQLAlchemy's SQLite DATETIME text: naive UTC with microseconds
        before_now=lambda offset: (
            f"(strftime('%Y-%m-%d %H:%M:%S', {now_epoch} - ({offset}), 'unixepoch') || '.000000')"
        ),
        hex8=lambda value: f"printf('%08x', {value})",
        digits8=lambda value: f"printf('%08d', {value})",
        json=lambda value: f"'{value}'",
        least="min",
        sequence=lambda start, stop: (
            f"(WITH RECURSIVE seq(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM seq"
            f" WHERE i < {stop}) SELECT i FROM seq) AS seq"
        ),
    )


def _postgresql_dialect(now_epoch: int) -> _Dialect:
    return _Dialect(
        before_now=lambda offset: f"to_timestamp({now_epoch} - ({offset}))",
        hex8=lambda value: f"lpad(to_hex({value}), 8, '0')",
        digits8=lambda value: f"lpad(({value})::text, 8, '0')",
        json=lambda value: f"'{value}'::jsonb",
        least="least",
        sequence=lambda start, stop: f"generate_series({start}::bigint, {stop}) AS seq(i)",
    )


def _campaign_id(d: _Dialect, number: str) -> str:
    """The id of campaign ``number``: 32 hex digits, like ``new_message_id``."""
    return f"('c' || {d.hex8(number)} || '00000000000000000000000')"


def _check_columns(table_name: str, exprs: Mapping[str, str]) -> None:
    """Refuse to load a table whose columns and the loader's expressions differ."""
    table = {
        "campaigns": campaigns_table,
        "messages": messages_table,
        "delivery_events": delivery_events_table,
        "inbound_messages": inbound_messages_table,
    }[table_name]
    columns = {column.key for column in table.columns}
    missing = {c for c in columns - set(exprs) if not _generated_key(table_name, c)}
    unknown = set(exprs) - columns
    if missing or unknown:
        raise RuntimeError(
            f"the loader does not follow the schema of {table_name}: "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}"
        )


def _generated_key(table_name: str, column: str) -> bool:
    """Integer primary keys the database numbers itself."""
    return column == "id" and table_name in ("delivery_events", "inbound_messages")


def _insert(table_name: str, exprs: Mapping[str, str], source: str) -> str:
    _check_columns(table_name, exprs)
    columns = ", ".join(exprs)
    values = ",\n  ".join(exprs.values())
    return f"INSERT INTO {table_name} ({columns})\nSELECT\n  {values}\nFROM {source}"


def messages_sql(d: _Dialect, size: int, start: int, stop: int) -> str:
    """The INSERT of messages ``start`` to ``stop`` (1-based, inclusive) of a ``size`` ledger."""
    campaigns = max(1, size // 2000)
    recipients = max(1000, size // 3)
    # four independent 32-bit hashes of i (multiplicative, odd constants); the high bits are used
    hashes = (
        f"SELECT i, (i * 2654435761) % {_M32} AS h1, (i * 2246822519 + 374761393) % {_M32} AS h2,"
        f" (i * 3266489917 + 668265263) % {_M32} AS h3,"
        f" (i * 668265263 + 2654435761) % {_M32} AS h4 FROM {d.sequence(start, stop)}"
    )
    status = (
        "CASE WHEN s < 100 THEN 'scheduled' WHEN s < 300 THEN 'sent' WHEN s = 300 THEN 'queued'"
        " WHEN s = 301 THEN 'sending' WHEN s = 302 THEN 'unknown' WHEN s < 403 THEN 'cancelled'"
        " WHEN s < 603 THEN 'failed' WHEN s < 853 THEN 'undelivered' ELSE 'delivered' END"
    )
    shaped = (
        f"SELECT i, h1, h2, h3, h4, (h2 / 256) % 10000 AS s, (h3 / 256) % 100 AS p,"
        f" (h4 / 256) % 10 AS c, (h4 / 2560) % {campaigns} AS camp FROM ({hashes}) AS hashed"
    )
    ages = {
        "scheduled": f"h4 % {30 * _DAY}",
        "sent": f"60 + h4 % {72 * 3600 - 3600 - 60}",
        "queued": "h4 % 5",
        "sending": "10 + h4 % 30",
        "unknown": f"3600 + h4 % {7 * _DAY}",
    }
    age = (
        "CASE st "
        + " ".join(f"WHEN '{state}' THEN {expr}" for state, expr in ages.items())
        + f" ELSE 3600 + h4 % {90 * _DAY - 3600} END"
    )
    provider = "CASE WHEN p < 45 THEN 'primotexto' WHEN p < 85 THEN 'octopush' ELSE 'afilnet' END"
    labelled = (
        f"SELECT i, h1, h2, h3, h4, c, camp, st, pv, p >= 85 AND p % 2 = 0 AS wa, {age} AS age"
        f" FROM (SELECT shaped.*, {status} AS st, {provider} AS pv FROM ({shaped}) AS shaped)"
        " AS labelled"
    )
    reached = "st IN ('sent', 'delivered', 'undelivered', 'unknown')"
    claimed = "st NOT IN ('scheduled', 'queued', 'cancelled')"
    ts = d.before_now
    exprs = {
        "id": f"({d.hex8('h1')} || {d.hex8('h2')} || {d.hex8('h3')} || {d.hex8('h4')})",
        "channel": "CASE WHEN wa THEN 'whatsapp' ELSE 'sms' END",
        "kind": "CASE WHEN wa THEN 'whatsapp_text' ELSE 'sms' END",
        "provider": "pv",
        "recipient": f"('+336' || {d.digits8(f'(h3 / 7) % {recipients}')})",
        # a stand-in for the keyed hash (one per recipient, as the HMAC would be)
        "recipient_hash": f"('h:' || {d.hex8(f'(h3 / 7) % {recipients}')})",
        "body": (
            "('Bonjour, votre code de confirmation est ' || CAST(h2 % 1000000 AS TEXT)"
            " || '. Il expire dans 10 minutes. Postier')"
        ),
        "payload": d.json('{"sender": "Postier"}'),
        "category": "CASE WHEN c < 3 THEN 'marketing' ELSE 'notification' END",
        "status": "st",
        "previous_status": (
            "CASE st WHEN 'scheduled' THEN NULL WHEN 'queued' THEN NULL"
            " WHEN 'sending' THEN 'queued' WHEN 'cancelled' THEN 'scheduled'"
            " WHEN 'failed' THEN 'sending' WHEN 'unknown' THEN 'sending'"
            " WHEN 'sent' THEN 'sending' ELSE 'sent' END"
        ),
        "send_at": f"CASE WHEN st = 'scheduled' THEN {ts(f'-(60 + h1 % {30 * _DAY})')} END",
        "idempotency_key": "CASE WHEN h1 % 10 = 0 THEN 'order-' || CAST(i AS TEXT) END",
        "campaign_id": f"CASE WHEN c < 3 THEN {_campaign_id(d, 'camp')} END",
        # campaigns' rows go on the bulk lane, single sends on the transactional one
        "lane": "CASE WHEN c < 3 THEN 'bulk' ELSE 'transactional' END",
        "attempts": f"CASE WHEN {claimed} THEN 1 ELSE 0 END",
        "provider_message_id": (
            f"CASE WHEN {reached} THEN CASE pv WHEN 'octopush' THEN 'tk' || {d.hex8('h1')}"
            f" || {d.hex8('h3')} ELSE CAST(h1 * 64 + i % 64 AS TEXT) END END"
        ),
        "cost": f"CASE WHEN {reached} THEN 0.055 END",
        "parts": f"CASE WHEN {reached} THEN 1 END",
        "last_error": "CASE WHEN st = 'failed' THEN 'refused by the provider: invalid number' END",
        "published_at": f"CASE WHEN st <> 'scheduled' THEN {ts('age')} END",
        "sending_started_at": f"CASE WHEN {claimed} THEN {ts('age - 1')} END",
        "status_checked_at": (
            f"CASE WHEN st = 'sent' AND h2 % 20 <> 0 THEN {ts(f'{d.least}(age - 3, h2 % 1800)')}"
            f" WHEN st IN ('delivered', 'undelivered') AND h2 % 2 = 0 THEN {ts('age - 60')}"
            " END"
        ),
        # nothing redacted yet: the retention pass is measured apart (postier.privacy)
        "redacted_at": "NULL",
        # no callback targets: the ledger at scale is measured without status callbacks
        "callback_url": "NULL",
        "callback_seq": "0",
        "created_at": ts("age"),
        "updated_at": (
            f"CASE WHEN st IN ('scheduled', 'queued') THEN {ts('age')}"
            f" WHEN st = 'sending' THEN {ts('age - 1')} WHEN st = 'sent' THEN {ts('age - 2')}"
            f" ELSE {ts('age - 120')} END"
        ),
    }
    return _insert("messages", exprs, f"({labelled}) AS g")


def events_sql(d: _Dialect) -> str:
    """Three events per message: created, claimed, its last move."""
    exprs = {
        "message_id": "m.id",
        "from_status": "CASE k WHEN 1 THEN NULL WHEN 2 THEN 'queued' ELSE 'sending' END",
        "to_status": "CASE k WHEN 1 THEN 'queued' WHEN 2 THEN 'sending' ELSE m.status END",
        "at": (
            "CASE k WHEN 1 THEN m.created_at"
            " WHEN 2 THEN coalesce(m.sending_started_at, m.created_at) ELSE m.updated_at END"
        ),
        "provider_status": "CASE WHEN k = 3 AND m.status = 'delivered' THEN 'DELIVERED' END",
        "detail": "CASE k WHEN 1 THEN 'created' END",
        "raw": "NULL",
    }
    source = "messages AS m CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) AS ks"
    return _insert("delivery_events", exprs, source)


def inbound_sql(d: _Dialect, size: int) -> str:
    """Replies for 2% of the messages, oldest first; all but the newest few handed to the hook."""
    count = max(UNDISPATCHED_INBOUND, size // 50)
    spacing = max(1, 90 * _DAY // count)
    age = f"((({count}) - i) * {spacing} + 5)"
    exprs = {
        "provider": "CASE WHEN i % 3 = 0 THEN 'octopush' ELSE 'afilnet' END",
        "provider_message_id": "'in-' || CAST(i AS TEXT)",
        "channel": "CASE WHEN i % 3 = 0 THEN '+33700000000' ELSE 'whatsapp-1' END",
        "sender": f"('+336' || {d.digits8(f'(i * 7919) % {max(1000, size // 3)}')})",
        "text": "'Merci, bien reçu'",
        "received_at": d.before_now(age),
        "created_at": d.before_now(age),
        "hook_dispatched_at": (
            f"CASE WHEN i > {count - UNDISPATCHED_INBOUND} THEN NULL"
            f" ELSE {d.before_now(f'{age} - 1')} END"
        ),
        "raw": "NULL",
    }
    return _insert("inbound_messages", exprs, d.sequence(1, count))


def campaigns_sql(d: _Dialect, size: int) -> str:
    """One finished campaign per 2,000 messages."""
    count = max(1, size // 2000)
    exprs = {
        "id": _campaign_id(d, "i"),
        "name": "'campagne ' || CAST(i AS TEXT)",
        "status": "'done'",
        "spec": d.json("{}"),
        "created_at": d.before_now(f"{90 * _DAY} - i * 60"),
        "updated_at": d.before_now(f"{90 * _DAY} - i * 60 - 600"),
        "starts_at": "NULL",
        "audience_size": "2000",
        "chunks_total": "2",
        "plan_published_at": "NULL",
        "error": "NULL",
    }
    return _insert("campaigns", exprs, d.sequence(0, count - 1))


def due_now_sql(d: _Dialect) -> str:
    """Make ``DUE_NOW`` scheduled rows due (``send_at`` a few seconds before "now")."""
    pick = (
        "SELECT id FROM messages WHERE status = 'scheduled' AND send_at > "
        f"{d.before_now('0')} ORDER BY id LIMIT {DUE_NOW}"
    )
    return (
        f"UPDATE messages SET send_at = {d.before_now('1')} WHERE id IN ({pick})"
        f" AND (SELECT count(*) FROM messages WHERE status = 'scheduled'"
        f" AND send_at <= {d.before_now('0')}) < {DUE_NOW}"
    )


def prepare(url: str, now: datetime) -> None:
    """Make a kept ledger ready to measure again: ``DUE_NOW`` rows due at ``now``, and ``sent``
    rows asked about after ``now`` (by a write check that could not put them back) due again,
    a sixteenth of them never asked."""
    engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    d = _sqlite_dialect(_epoch(now)) if sqlite else _postgresql_dialect(_epoch(now))
    last_hex = "unicode(substr(id, 32, 1))" if sqlite else "ascii(substr(id, 32, 1))"
    resend = (
        f"UPDATE messages SET status_checked_at = CASE WHEN {last_hex} % 16 = 0 THEN NULL"
        f" ELSE {d.before_now('900')} END"
        f" WHERE status = 'sent' AND status_checked_at > {d.before_now('0')}"
    )
    try:
        with engine.begin() as connection:
            for sql in (due_now_sql(d), resend):
                connection.exec_driver_sql(sql if sqlite else sql.replace("%", "%%"))
    finally:
        engine.dispose()


# -- the load ---------------------------------------------------------------------------------


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def load_sqlite(
    path: Path, size: int, *, now: datetime, progress: Callable[[str], None] = print
) -> LoadedLedger:
    """A fresh SQLite ledger of ``size`` messages at ``path`` (replaced if it exists).

    The load runs on a plain ``sqlite3`` connection with the durability switched off
    (``journal_mode=OFF``, ``synchronous=OFF``, a 1 GiB page cache): a crash mid-load only
    loses the benchmark's file. The file is left in WAL mode, as ``make_engine`` uses it.
    """
    started = time.perf_counter()
    progress = _timed(progress)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    d = _sqlite_dialect(_epoch(now))
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-1048576",
            "temp_store=MEMORY",
            "locking_mode=EXCLUSIVE",
        ):
            connection.execute(f"PRAGMA {pragma}")
        # the counting triggers too: the counts are set once, from the rows (``recount``)
        indexes = [
            (kind, name, sql)
            for kind, name, sql in connection.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
                f" AND sql IS NOT NULL AND tbl_name IN ({', '.join(repr(t) for t in TABLES)})"
            )
        ]
        connection.execute("BEGIN")
        for kind, name, _ in indexes:
            connection.execute(f'DROP {kind.upper()} "{name}"')
        _run_load(lambda sql: connection.execute(sql), d, size, progress)
        for kind, name, sql in indexes:
            connection.execute(sql)
            progress(f"  {kind} {name}")
        connection.execute(due_now_sql(d))
        connection.execute("COMMIT")
        connection.execute("PRAGMA locking_mode=NORMAL")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    _counted(url, progress)
    _as_beat_left_it(url)
    return LoadedLedger(url, size, now, time.perf_counter() - started)


def _counted(url: str, progress: Callable[[str], None]) -> None:
    """The counters the triggers keep, set from the rows loaded without them."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            recount(session)
    finally:
        engine.dispose()
    progress("  counts")


def _as_beat_left_it(url: str) -> None:
    """What beat's statistics pass would have done by now on a live ledger."""
    engine = make_engine(url)
    try:
        optimize(engine)
    finally:
        engine.dispose()


def load_postgresql(
    url: str, size: int, *, now: datetime, progress: Callable[[str], None] = print
) -> LoadedLedger:
    """A ledger of ``size`` messages in the empty PostgreSQL database at ``url``.

    Foreign-key triggers are off for the load (``session_replication_role = replica``, the
    server's superuser in development), commits are asynchronous, and the tables are
    ``VACUUM ANALYZE``d at the end, as autovacuum would have done on a live ledger.
    """
    started = time.perf_counter()
    progress = _timed(progress)
    upgrade(url)
    d = _postgresql_dialect(_epoch(now))
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname ="
                    " current_schema() AND tablename = ANY(:tables) AND indexname NOT IN"
                    " (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))"
                ),
                {"tables": list(TABLES)},
            )
            indexes = [(str(name), str(sql)) for name, sql in rows]
            for name, _ in indexes:
                connection.exec_driver_sql(f'DROP INDEX "{name}"')

        def run(sql: str) -> None:
            with engine.begin() as connection:
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                connection.exec_driver_sql(sql.replace("%", "%%"))

        _run_load(run, d, size, progress)
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
            for name, sql in indexes:
                connection.exec_driver_sql(sql.replace("%", "%%"))  # LIKE patterns
                progress(f"  index {name}")
            connection.exec_driver_sql(due_now_sql(d).replace("%", "%%"))
        # the load ran as a replica (no triggers): the counts are set once, from the rows
        _counted(url, progress)
        with engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in TABLES:
                autocommit.exec_driver_sql(f"VACUUM ANALYZE {table}")
        progress("  VACUUM ANALYZE")
    finally:
        engine.dispose()
    return LoadedLedger(url, size, now, time.perf_counter() - started)


def _timed(progress: Callable[[str], None]) -> Callable[[str], None]:
    """``progress`` for lines said when a step is done: each gets the step's seconds."""
    last = time.perf_counter()

    def done(line: str) -> None:
        nonlocal last
        now = time.perf_counter()
        progress(f"{line}: {now - last:.1f} s")
        last = now

    return done


def _run_load(
    run: Callable[[str], object], d: _Dialect, size: int, progress: Callable[[str], None]
) -> None:
    run(campaigns_sql(d, size))
    progress(f"  campaigns ({max(1, size // 2000):,})")
    for start in range(1, size + 1, CHUNK):
        stop = min(size, start + CHUNK - 1)
        run(messages_sql(d, size, start, stop))
        progress(f"  messages {start:,}-{stop:,}")
    run(events_sql(d))
    progress(f"  delivery events ({3 * size:,})")
    run(inbound_sql(d, size))
    progress(f"  inbound messages ({max(UNDISPATCHED_INBOUND, size // 50):,})")


def default_now() -> datetime:
    """The load's "now": the current second, in UTC."""
    return datetime.now(UTC).replace(microsecond=0)


__all__ = [
    "DUE_NOW",
    "UNDISPATCHED_INBOUND",
    "LoadedLedger",
    "default_now",
    "load_postgresql",
    "load_sqlite",
    "prepare",
]
