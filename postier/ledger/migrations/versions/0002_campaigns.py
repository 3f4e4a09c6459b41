"""Campaigns: start time and fan-out state, audiences, chunks, rejections; opt-outs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Bulk campaigns (``postier.campaigns``): a campaign's audience is stored as given and expanded
by the worker in chunks; the contacts it could not send to are kept line by line; numbers that
opted out are one table. Plain SQL types only, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _bigint_pk() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _campaign_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"],
        ["campaigns.id"],
        name=op.f(f"fk_{table}_campaign_id_campaigns"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("starts_at", _time(), nullable=True))
        batch.add_column(sa.Column("audience_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("chunks_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("plan_published_at", _time(), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    op.create_table(
        "campaign_audiences",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _campaign_fk("campaign_audiences"),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_audiences")),
    )
    op.create_table(
        "campaign_chunks",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stop", sa.Integer(), nullable=False),
        sa.Column("contacts", _json(), nullable=True),
        sa.Column("published_at", _time(), nullable=True),
        sa.Column("done_at", _time(), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("opted_out", sa.Integer(), nullable=False),
        _campaign_fk("campaign_chunks"),
        sa.PrimaryKeyConstraint("campaign_id", "start", name=op.f("pk_campaign_chunks")),
    )
    op.create_table(
        "campaign_rejections",
        sa.Column("id", _bigint_pk(), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _campaign_fk("campaign_rejections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_rejections")),
    )
    op.create_index(
        op.f("ix_campaign_rejections_campaign_id"), "campaign_rejections", ["campaign_id"]
    )
    op.create_table(
        "opt_outs",
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("recipient", name=op.f("pk_opt_outs")),
    )
    op.create_index("ix_messages_campaign_id_status", "messages", ["campaign_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_id_status", table_name="messages")
    op.drop_table("opt_outs")
    op.drop_index(op.f("ix_campaign_rejections_campaign_id"), table_name="campaign_rejections")
    op.drop_table("campaign_rejections")
    op.drop_table("campaign_chunks")
    op.drop_table("campaign_audiences")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("error")
        batch.drop_column("plan_published_at")
        batch.drop_column("chunks_total")
        batch.drop_column("audience_size")
        batch.drop_column("starts_at")
