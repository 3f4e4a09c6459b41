"""Status callbacks: the outbox of events owed to the application, and each message's target.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

- ``callback_events``: one row per status move (or inbound message) the application is told
  about, written in the move's own transaction; its attempts are logged on the row;
- ``ix_callback_events_pending``: a partial index over the rows still to deliver, by due time;
- ``ix_callback_events_created_at``: the retention pass deletes settled events by age;
- ``messages.callback_url``: a message's (or its campaign's) own target;
- ``messages.callback_seq``: how many events the message has had, for their sequence numbers.

Plain SQL types only, like 0001; the predicate is written out here, not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "delivered_at IS NULL AND given_up_at IS NULL"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _bigint_pk() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(length=2048), nullable=True))
        batch.add_column(
            sa.Column("callback_seq", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "callback_events",
        sa.Column("id", _bigint_pk(), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("inbound_id", sa.BigInteger(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("provider_status", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("occurred_at", _time(), nullable=False),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", _json(), nullable=False),
        sa.Column("next_attempt_at", _time(), nullable=False),
        sa.Column("published_at", _time(), nullable=True),
        sa.Column("delivered_at", _time(), nullable=True),
        sa.Column("given_up_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_callback_events_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound_messages.id"],
            name=op.f("fk_callback_events_inbound_id_inbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_callback_events_event_id")),
    )
    op.create_index(
        op.f("ix_callback_events_message_id"), "callback_events", ["message_id"], unique=False
    )
    op.create_index(
        op.f("ix_callback_events_inbound_id"), "callback_events", ["inbound_id"], unique=False
    )
    op.create_index(
        op.f("ix_callback_events_created_at"), "callback_events", ["created_at"], unique=False
    )
    op.create_index(
        "ix_callback_events_pending",
        "callback_events",
        ["next_attempt_at"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_callback_events_pending", table_name="callback_events")
    op.drop_index(op.f("ix_callback_events_created_at"), table_name="callback_events")
    op.drop_index(op.f("ix_callback_events_inbound_id"), table_name="callback_events")
    op.drop_index(op.f("ix_callback_events_message_id"), table_name="callback_events")
    op.drop_table("callback_events")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("callback_seq")
        batch.drop_column("callback_url")
