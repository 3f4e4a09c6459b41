"""Messages per (provider, status), kept by triggers: the metrics read a few rows, not the ledger.

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30

- ``message_counts (provider, status, total)``: the counts (``postier.ledger.counts``);
- ``message_count_deltas``: PostgreSQL's statement triggers append each statement's net change
  here (insert-only: concurrent workers never wait on a counter row), beat folds them;
- triggers on ``messages``: on SQLite, row triggers add ±1 to ``message_counts`` (one writer at
  a time: no contention); on PostgreSQL, statement triggers with transition tables;
- ``ix_messages_live_counts`` is dropped: nothing counts the live rows any more;
- ``ix_messages_batch_unsettled (provider_message_id)`` over the rows of Octopush batches not
  settled yet (``sending``/``unknown`` and tagged ``batch:``), the batch reaper's set; created
  ``IF NOT EXISTS`` (on a large PostgreSQL ledger: ``CONCURRENTLY`` first, as for 0005);
- the counts are then set from one ``COUNT`` of ``messages`` (seconds at millions of rows). On
  PostgreSQL the triggers' creation locks ``messages`` against writes until the migration
  commits, so no move falls between the count and the triggers.

A later migration that recreates ``messages`` on SQLite (``batch_alter_table``) drops its
triggers with it: it must create them again (``_SQLITE_TRIGGERS`` here). The SQL is written
out, not imported, like the types of 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _add(side: str, sign: str) -> str:
    values = f"(coalesce({side}.provider, ''), {side}.status, {sign}1)"
    return (
        f"INSERT INTO message_counts (provider, status, total) VALUES {values}"  # noqa: S608
        f" ON CONFLICT (provider, status) DO UPDATE SET total = total {sign} 1;"
    )


_LIVE = "status IN ('queued', 'scheduled', 'sending', 'sent', 'unknown')"
_BATCH_UNSETTLED = "status IN ('sending', 'unknown') AND provider_message_id LIKE 'batch:%'"

_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER messages_counted_insert AFTER INSERT ON messages BEGIN {_add('NEW', '+')} END",
    "CREATE TRIGGER messages_counted_update AFTER UPDATE OF status, provider ON messages"
    " WHEN OLD.status IS NOT NEW.status OR OLD.provider IS NOT NEW.provider"
    f" BEGIN {_add('OLD', '-')} {_add('NEW', '+')} END",
    f"CREATE TRIGGER messages_counted_delete AFTER DELETE ON messages BEGIN {_add('OLD', '-')} END",
)

_PG_FUNCTIONS = {
    "postier_count_inserted": (
        "SELECT coalesce(provider, ''), status, count(*) FROM new_rows GROUP BY 1, 2"
    ),
    "postier_count_deleted": (
        "SELECT coalesce(provider, ''), status, -count(*) FROM old_rows GROUP BY 1, 2"
    ),
    # an UPDATE that moved no row between counts (most: published_at, status_checked_at…)
    # nets to nothing and writes nothing
    "postier_count_updated": (
        "SELECT provider, status, sum(delta) FROM ("
        " SELECT coalesce(provider, '') AS provider, status, -1 AS delta FROM old_rows"
        " UNION ALL SELECT coalesce(provider, ''), status, 1 FROM new_rows"
        ") AS moved GROUP BY provider, status HAVING sum(delta) <> 0"
    ),
}
_PG_TRIGGERS = (
    ("messages_counted_insert", "INSERT", "NEW TABLE AS new_rows", "postier_count_inserted"),
    ("messages_counted_update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows",
     "postier_count_updated"),
    ("messages_counted_delete", "DELETE", "OLD TABLE AS old_rows", "postier_count_deleted"),
)  # fmt: skip


def upgrade() -> None:
    op.drop_index("ix_messages_live_counts", table_name="messages", if_exists=True)
    op.create_index(
        "ix_messages_batch_unsettled",
        "messages",
        ["provider_message_id"],
        sqlite_where=sa.text(_BATCH_UNSETTLED),
        postgresql_where=sa.text(_BATCH_UNSETTLED),
        if_not_exists=True,
    )
    op.create_table(
        "message_counts",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "status", name=op.f("pk_message_counts")),
    )
    op.create_table(
        "message_count_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_count_deltas")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for function, select in _PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" INSERT INTO message_count_deltas (provider, status, delta) {select};"
                " RETURN NULL; END $$"
            )
        for name, event, tables, function in _PG_TRIGGERS:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON messages REFERENCING {tables}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
    op.execute(
        "INSERT INTO message_counts (provider, status, total)"
        " SELECT coalesce(provider, ''), status, count(*) FROM messages"
        " GROUP BY coalesce(provider, ''), status"
    )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, *_ in _PG_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON messages" if postgresql else ""))
    if postgresql:
        for function in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("message_count_deltas")
    op.drop_table("message_counts")
    op.drop_index("ix_messages_batch_unsettled", table_name="messages")
    op.create_index(
        "ix_messages_live_counts",
        "messages",
        ["status", "provider"],
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
        if_not_exists=True,
    )
