"""Retention: when a message's texts were redacted, and an index to find settled rows by age.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The retention pass (``postier.privacy.retention``) redacts personal data older than its
category's period in bounded batches; ``redacted_at`` marks the messages whose text, template
values and file URLs are gone, and ``ix_messages_retention`` lets each batch find the oldest
rows without reading the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_messages_retention", "messages", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_retention", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("redacted_at")
