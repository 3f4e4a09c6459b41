"""Indexes that keep every periodic pass and lookup on its working set at a year's volume.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

- ``ix_messages_live``: a partial index over the live rows only (queued, scheduled, sending,
  sent, unknown), ordered as the delivery poll asks (never asked, then longest unasked);
- ``ix_messages_live_counts``: the same rows by state and provider, for the live counts;
- ``ix_messages_status_created_at_id``: listings by state, newest first;
- ``ix_messages_recipient``: receipts matched by number;
- ``ix_inbound_messages_undispatched``: a partial index over inbound rows not yet handed to
  the application's hook;
- ``ix_messages_campaign_id`` is dropped: ``ix_messages_campaign_id_status`` starts with it.

Every index is created ``IF NOT EXISTS``: on a large PostgreSQL ledger, create them first with
``CREATE INDEX CONCURRENTLY`` (README, "The ledger at a year's volume") and this revision only
finds them. The predicates are written out here, not imported, like the types of 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "status IN ('queued', 'scheduled', 'sending', 'sent', 'unknown')"
_UNDISPATCHED = "hook_dispatched_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_messages_live",
        "messages",
        ["status", "status_checked_at", "updated_at", "provider"],
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
        if_not_exists=True,
    )
    op.create_index(
        "ix_messages_live_counts",
        "messages",
        ["status", "provider"],
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
        if_not_exists=True,
    )
    op.create_index(
        "ix_messages_status_created_at_id",
        "messages",
        ["status", "created_at", "id"],
        if_not_exists=True,
    )
    op.create_index("ix_messages_recipient", "messages", ["recipient"], if_not_exists=True)
    op.create_index(
        "ix_inbound_messages_undispatched",
        "inbound_messages",
        ["id"],
        sqlite_where=sa.text(_UNDISPATCHED),
        postgresql_where=sa.text(_UNDISPATCHED),
        if_not_exists=True,
    )
    op.drop_index("ix_messages_campaign_id", table_name="messages", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_messages_campaign_id", "messages", ["campaign_id"], if_not_exists=True)
    op.drop_index("ix_inbound_messages_undispatched", table_name="inbound_messages")
    op.drop_index("ix_messages_recipient", table_name="messages")
    op.drop_index("ix_messages_status_created_at_id", table_name="messages")
    op.drop_index("ix_messages_live_counts", table_name="messages")
    op.drop_index("ix_messages_live", table_name="messages")
