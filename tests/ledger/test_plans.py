"""Every periodic pass and lookup reads its working set through an index, on both backends.

The statements are those the code really sends (captured while it runs, as ``make
bench-scale`` does) on a synthetic ledger of a few tens of thousands of messages with the
realistic mix of ``benchmarks.scale.loader``, so PostgreSQL plans with real statistics; the
database explains each (``benchmarks.scale.plans``). On SQLite the queries name their index,
so even lying statistics cannot turn them into a scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from benchmarks.scale.loader import default_now, load_postgresql, load_sqlite
from benchmarks.scale.plans import captured, explain
from benchmarks.scale.workload import QUERIES, Query, Targets, find_targets
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import SQLITE_MESSAGES_PK, messages_table
from postier.ledger.queries import mark_published, queued_rows
from postier.ledger.states import transition_many
from tests.ledger.conftest import fresh_pg_database

#: large enough for PostgreSQL's planner to prefer an index where one is meant to serve
SIZE = 30_000
LIVE = "ix_messages_live"
#: counts come from the counters the triggers keep (``postier.ledger.counts``): no ledger table
COUNTERS = "no ledger table read"
#: the index each query is meant to read ("pk" and "idempotency" as each backend names them)
EXPECTED = {
    "release due rows": "ix_messages_status_send_at",
    "rows awaiting delivery state": "ix_messages_live",
    "metrics' ledger count": COUNTERS,
    "metrics' oldest unknown message": "ix_messages_live",
    "inbound rows not yet handed to the hook": "ix_inbound_messages_undispatched",
    "queued rows to republish": LIVE,
    "sends stuck in sending": LIVE,
    "campaign batches to settle": "ix_messages_batch_unsettled",
    "message by id": "pk",
    "message by idempotency key": "idempotency",
    "receipt matched by provider id": "ix_messages_provider_message_id",
    "receipt whose id is not found (match by number)": "ix_messages_recipient",
    "a message's events": "ix_delivery_events_message_id",
    "support page: messages to a number": "ix_messages_recipient_hash_created_at_id",
    "postier list --status failed": "ix_messages_status_created_at_id",
    "postier list (no filter)": "ix_messages_status_created_at_id",
    "postier list: counts of live states": COUNTERS,
}
#: work one backend does not have: it sends nothing there
NOTHING_SENT = {
    ("postgresql", "planner statistics kept current"),  # autovacuum's job
    ("sqlite", "counts folded"),  # SQLite's triggers count in place: no deltas to fold
}
_NAMES = {
    "sqlite": {"pk": SQLITE_MESSAGES_PK, "idempotency": "sqlite_autoindex_messages_2"},
    "postgresql": {"pk": "pk_messages", "idempotency": "uq_messages_idempotency_key"},
}


def _silent(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def sqlite_scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Targets]]:
    path = tmp_path_factory.mktemp("scaled") / "ledger.db"
    ledger = load_sqlite(path, SIZE, now=default_now(), progress=_silent)
    engine = make_engine(ledger.url)
    yield engine, find_targets(engine, ledger.now)
    engine.dispose()


@pytest.fixture(scope="module")
def postgresql_scaled(pg_admin: Engine) -> Iterator[tuple[Engine, Targets]]:
    with fresh_pg_database(pg_admin) as url:
        ledger = load_postgresql(url, SIZE, now=default_now(), progress=_silent)
        engine = make_engine(ledger.url)
        yield engine, find_targets(engine, ledger.now)
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def scaled(request: pytest.FixtureRequest) -> tuple[Engine, Targets]:
    found: tuple[Engine, Targets] = request.getfixturevalue(f"{request.param}_scaled")
    return found


def _plan_of(engine: Engine, query: Query, targets: Targets) -> tuple[bool, str, int]:
    from sqlalchemy.orm import Session

    with captured(engine) as statements:
        session = Session(engine)
        try:
            query.run(engine, session, targets)
        finally:
            session.rollback()
            session.close()
    plan = explain(engine, statements)
    return plan.uses_index, plan.detail, len(statements)


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_each_pass_and_lookup_reads_through_an_index(
    scaled: tuple[Engine, Targets], query: Query
) -> None:
    engine, targets = scaled
    uses_index, detail, statements = _plan_of(engine, query, targets)
    if (engine.dialect.name, query.name) in NOTHING_SENT:
        assert statements == 0
        return
    assert statements > 0
    assert uses_index, f"{query.name} scans on {engine.dialect.name}: {detail}"
    if EXPECTED.get(query.name) == COUNTERS:
        assert detail == COUNTERS, f"{query.name} reads the ledger: {detail}"
    elif query.name in EXPECTED:
        index = _NAMES[engine.dialect.name].get(EXPECTED[query.name], EXPECTED[query.name])
        assert re.search(rf"\b{index}\b", detail), f"{query.name} does not read {index}: {detail}"


def test_every_query_has_its_expected_index() -> None:
    periodic = {q.name for q in QUERIES} - {"planner statistics kept current", "counts folded"}
    assert periodic == set(EXPECTED)


def test_sqlite_plans_do_not_flip_with_misleading_statistics(
    sqlite_scaled: tuple[Engine, Targets], tmp_path: Path
) -> None:
    """Statistics claiming every status is rare and the primary key unselective: the plan an
    unpinned planner would follow into a walk of the ledger; the pinned ones do not move."""
    engine, targets = sqlite_scaled
    copy = tmp_path / "lying.db"
    with engine.connect() as connection:
        connection.exec_driver_sql(f"VACUUM INTO '{copy}'")
    lying = make_engine(f"sqlite:///{copy}")
    try:
        with lying.begin() as connection:
            connection.exec_driver_sql("DELETE FROM sqlite_stat1")
            connection.exec_driver_sql(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('messages', ?, ?)",
                [
                    ("ix_messages_status_send_at", "30000 1 1"),
                    ("ix_messages_status_created_at_id", "30000 1 1 1"),
                    ("ix_messages_campaign_id_status", "30000 30000 30000"),
                    (SQLITE_MESSAGES_PK, "30000 30000"),
                    ("ix_messages_recipient", "30000 30000"),
                    ("ix_messages_recipient_hash_created_at_id", "30000 30000 1 1"),
                    ("ix_messages_provider_message_id", "30000 30000"),
                ],
            )
            connection.exec_driver_sql("ANALYZE sqlite_schema")
        lying.dispose()  # new connections load the statistics
        for query in QUERIES:
            uses_index, detail, _ = _plan_of(lying, query, targets)
            assert uses_index, f"{query.name} flipped to a scan: {detail}"
    finally:
        lying.dispose()


def test_updates_by_id_reach_rows_by_primary_key_on_sqlite(
    sqlite_scaled: tuple[Engine, Targets],
) -> None:
    """A transition, a publish mark and a read of queued rows by id never walk a status."""
    engine, targets = sqlite_scaled
    with captured(engine) as statements, session_scope(engine) as session:
        transition_many(session, [targets.message_id], "queued", "cancelled")  # type: ignore[arg-type]
        mark_published(session, [targets.message_id], targets.now)
        queued_rows(session, [targets.message_id])
        session.rollback()
    updates = [s for s in statements if not s.sql.lstrip().upper().startswith("INSERT")]
    assert len(updates) == 3
    for statement in updates:
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters
            ).all()
        details = " ".join(str(row[-1]) for row in plan)
        assert f"USING INDEX {SQLITE_MESSAGES_PK}" in details, details


def test_the_primary_key_index_name_is_the_one_sqlite_made(
    sqlite_scaled: tuple[Engine, Targets],
) -> None:
    engine, _ = sqlite_scaled
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("PRAGMA index_list(messages)").all()
    by_origin = {str(row[3]): str(row[1]) for row in rows}
    assert by_origin["pk"] == SQLITE_MESSAGES_PK


def test_partial_indexes_hold_only_their_working_set(scaled: tuple[Engine, Targets]) -> None:
    engine, _ = scaled
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = {
                str(name): str(definition)
                for name, definition in connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
                )
            }
        else:
            sql = {
                str(name): str(definition)
                for name, definition in connection.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes")
                )
            }
    assert "WHERE" in sql["ix_messages_live"]
    assert "WHERE" in sql["ix_inbound_messages_undispatched"]
    assert "WHERE" in sql["ix_messages_batch_unsettled"]
    assert "ix_messages_live_counts" not in sql  # the counters count
    assert "ix_messages_campaign_id" not in sql  # ix_messages_campaign_id_status starts with it
    assert messages_table.c.campaign_id.index is not True
