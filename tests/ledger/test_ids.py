"""Short ids and prefix lookups (postier.ledger.ids), on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from postier.ledger.db import session_scope
from postier.ledger.ids import match_prefix, prefix_bounds, short_id
from postier.ledger.models import messages_table
from tests.ledger.conftest import Ledger

IDS = (
    "ab9f0000000000000000000000000001",
    "ab9f0000000000000000000000000002",
    "aba00000000000000000000000000003",
    "abf00000000000000000000000000004",
    "ac000000000000000000000000000005",
    "ffff0000000000000000000000000006",
)


@pytest.mark.parametrize(
    ("prefix", "bounds"),
    [
        ("ab9", ("ab9", "aba")),
        ("abf", ("abf", "ac")),
        ("a0", ("a0", "a1")),
        ("9", ("9", "a")),
        ("fff", ("fff", None)),
    ],
)
def test_the_upper_bound_is_the_next_prefix_in_hex_order(
    prefix: str, bounds: tuple[str, str | None]
) -> None:
    assert prefix_bounds(prefix) == bounds


def test_the_short_form_is_twelve_characters() -> None:
    assert short_id(IDS[0]) == "ab9f00000000"


@pytest.fixture
def stored(ledger: Ledger) -> Engine:
    for message_id in IDS:
        ledger.add(id=message_id)
    return ledger.engine


@pytest.mark.parametrize(
    ("given", "found", "unique"),
    [
        ("ab9f", IDS[:2], None),  # ambiguous: both candidates
        ("AB9F0000000000000000000000000002", IDS[1:2], IDS[1]),  # a whole id, any case
        ("aba", IDS[2:3], IDS[2]),  # after "ab9f…", before "abb"
        ("abf", IDS[3:4], IDS[3]),  # the bound carries: "abf" → "ac"
        ("ab", IDS[:4], None),
        ("fff", IDS[5:6], IDS[5]),  # no upper bound
        (" ac0 ", IDS[4:5], IDS[4]),  # pasted with spaces
        ("abc", (), None),
        ("not-an-id", (), None),
    ],
)
def test_a_prefix_designates_the_ids_that_start_with_it(
    stored: Engine, given: str, found: tuple[str, ...], unique: str | None
) -> None:
    with session_scope(stored) as session:
        matches = match_prefix(session, messages_table.c.id, given)
    assert matches.ids == found and not matches.more
    assert matches.unique == unique


def test_candidates_are_capped_and_the_problem_says_so(stored: Engine) -> None:
    with session_scope(stored) as session:
        matches = match_prefix(session, messages_table.c.id, "ab", limit=2)
        none = match_prefix(session, messages_table.c.id, "abc")
    assert matches.ids == IDS[:2] and matches.more and matches.unique is None
    problem = matches.problem("message")
    assert problem.splitlines() == [
        "ab is ambiguous; messages whose id starts with it:",
        f"  {IDS[0]}",
        f"  {IDS[1]}",
        "  … and more: give more characters",
    ]
    assert none.problem("message") == "no message abc"


def test_the_lookup_is_a_range_on_the_primary_key_index(stored: Engine, backend: str) -> None:
    """No scan of the table: the id's own index serves the range (a LIKE would not, on a
    PostgreSQL database with a non-C collation)."""
    low, high = prefix_bounds("ab9f")
    column = messages_table.c.id
    query = select(column).where(column >= low, column < high).order_by(column).limit(11)
    with stored.connect() as connection:
        compiled = str(query.compile(connection, compile_kwargs={"literal_binds": True}))
        if backend == "sqlite":
            plan = " ".join(
                str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
            assert "USING" in plan and "INDEX" in plan and "SCAN messages" not in plan, plan
        else:
            # on a table this small the planner prefers a scan; forbid it to see that the
            # index can serve the range at all
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {compiled}")))
            assert "Index" in plan and "pk_messages" in plan, plan


def test_the_range_finds_the_prefix_under_a_linguistic_collation(
    postgresql_ledger: Engine,
) -> None:
    """A database created with a language's collation (en_US, ICU) ignores punctuation at
    first: ``'9abc' < ':'`` is false there, so the bound after ``9`` must be ``a``."""
    table = sa.Table(
        "icu_ids",
        sa.MetaData(),
        sa.Column("id", sa.String(32, collation="und-x-icu"), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    generator = random.Random(17)
    ids = sorted({f"{generator.getrandbits(128):032x}" for _ in range(3000)})
    prefixes = ["9", "a", "f", "0f", "9f", "af", "ff", *(i[:3] for i in ids[::97])]
    with postgresql_ledger.connect() as connection:
        table.create(connection)
        connection.execute(table.insert(), [{"id": i} for i in ids])
        with Session(bind=connection) as session:
            for prefix in prefixes:
                found = match_prefix(session, table.c.id, prefix, limit=len(ids))
                assert list(found.ids) == [i for i in ids if i.startswith(prefix)], prefix
        connection.rollback()
