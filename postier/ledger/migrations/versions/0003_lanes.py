"""Lanes: each message travels on the transactional or the bulk send queue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

One-time codes must never wait behind a campaign (``postier.dispatch.lanes``): the lane is a
property of the message, kept by its retries, failovers and deferred releases, so beat
republishes each row on its own lane's queue. Rows stored before this revision are
transactional, the lane every single send took until now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column(
                "lane",
                sa.String(length=16),
                nullable=False,
                server_default="transactional",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lane")
