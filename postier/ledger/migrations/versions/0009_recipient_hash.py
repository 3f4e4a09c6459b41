"""Messages keep their recipient as a keyed hash, so support finds them by number once redacted.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02

``messages.recipient_hash``: HMAC-SHA256 of the E.164 number with
``POSTIER_RETENTION__HASH_KEY`` (``postier.rules.phones.number_hash``), written with each new
row when the key is set, and by the retention pass for an older row just before it redacts the
number; an erasure clears it. ``ix_messages_recipient_hash_created_at_id`` serves the support
page's lookup by number, newest first. Rows stored before this revision get their hash when
retention redacts them (the pass computes it from the number still there).

Created ``IF NOT EXISTS`` like 0005: on a large PostgreSQL ledger create the index first with
``CREATE INDEX CONCURRENTLY`` (README, "The ledger at a year's volume").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("recipient_hash", sa.String(32), nullable=True))
    op.create_index(
        "ix_messages_recipient_hash_created_at_id",
        "messages",
        ["recipient_hash", "created_at", "id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_recipient_hash_created_at_id", table_name="messages")
    # a plain DROP COLUMN (SQLite 3.35+): batch mode would rebuild ``messages`` and lose the
    # count triggers of 0008
    op.drop_column("messages", "recipient_hash")
