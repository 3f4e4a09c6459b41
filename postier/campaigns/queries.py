"""The campaign queries: campaigns, their chunks and rejections, and their messages as a set.

Like ``postier.ledger.queries``, every statement that touches many messages is one set-based
UPDATE (through ``ledger.states.apply_transition``, so each move writes its event), functions
take a session and never commit.

Held rows. A campaign's message that must not go yet (its start is to come, the campaign is
paused, the marketing quiet hours began) is ``scheduled`` with ``send_at = HELD_UNTIL``, a
date beat's ``release_due`` never reaches; only the campaign's own pass releases it
(``release_held``), so a campaign starts, stops and resumes as a whole, and its Octopush
batches stay batches. Rows a retry or a rate-limit wait had scheduled get ``send_at`` moved to
``HELD_UNTIL`` as well (no state change, so no event) and go again when the campaign does.

Locking. A fan-out chunk stores its messages while holding the campaign (``lock_for_chunk``:
the SQLite write lock, or ``FOR SHARE`` on the campaign row on PostgreSQL), and pause and
cancel start by updating the campaign row; so a chunk either stores its rows before a pause
(which then holds them) or sees the pause and stores nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from postier.campaigns.audience import Rejection
from postier.ledger.bulk import chunks
from postier.ledger.models import (
    Campaign,
    CampaignStatus,
    MessageStatus,
    campaign_audiences_table,
    campaign_chunks_table,
    campaign_rejections_table,
    campaigns_table,
    messages_table,
)
from postier.ledger.plans import ids_picked
from postier.ledger.queries import count_by_status
from postier.ledger.states import apply_transition

#: the ``send_at`` of a held campaign message: never due for beat's ``release_due``
HELD_UNTIL: Final = datetime(9999, 1, 1, tzinfo=UTC)

#: states a campaign's message may still leave without being sent
UNSENT: Final = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED})
#: states in which a message still needs the campaign's attention
ACTIVE: Final = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING})


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# -- campaigns ----------------------------------------------------------------------------


def get_campaign(session: Session, campaign_id: str) -> Campaign | None:
    """The campaign as stored now."""
    return session.get(Campaign, campaign_id, populate_existing=True)


def list_campaigns(session: Session, *, limit: int = 50) -> list[Campaign]:
    """The newest campaigns first."""
    query = select(Campaign).order_by(campaigns_table.c.created_at.desc()).limit(limit)
    return list(session.execute(query).scalars())


def audience_of(session: Session, campaign_id: str) -> tuple[str, str] | None:
    """The campaign's audience as stored: ``(kind, content)``."""
    table = campaign_audiences_table
    row = session.execute(
        select(table.c.kind, table.c.content).where(table.c.campaign_id == campaign_id)
    ).one_or_none()
    return (str(row[0]), str(row[1])) if row is not None else None


def set_status(
    session: Session,
    campaign_id: str,
    from_: Collection[CampaignStatus],
    to: CampaignStatus,
    now: datetime,
    **fields: Any,
) -> bool:
    """``from_ → to`` by one conditional UPDATE; False when the campaign was not in ``from_``."""
    result = session.execute(
        update(campaigns_table)
        .where(campaigns_table.c.id == campaign_id, campaigns_table.c.status.in_(sorted(from_)))
        .values(status=to, updated_at=now, **fields)
    )
    return _rowcount(result) == 1


def update_campaign(session: Session, campaign_id: str, now: datetime, **fields: Any) -> None:
    """Set columns of the campaign (not its status)."""
    session.execute(
        update(campaigns_table)
        .where(campaigns_table.c.id == campaign_id)
        .values(updated_at=now, **fields)
    )


def campaigns_in(session: Session, statuses: Collection[CampaignStatus]) -> list[Campaign]:
    """Campaigns in any of ``statuses``, oldest first."""
    query = (
        select(Campaign)
        .where(campaigns_table.c.status.in_(sorted(statuses)))
        .order_by(campaigns_table.c.created_at)
    )
    return list(session.execute(query, execution_options={"populate_existing": True}).scalars())


# -- planning and chunks ------------------------------------------------------------------


def store_plan(
    session: Session,
    campaign_id: str,
    *,
    audience_size: int,
    chunk_contacts: Sequence[tuple[int, int, list[Any]]],
    rejections: Sequence[Rejection],
    now: datetime,
) -> bool:
    """Record the audience's chunks and the rows refused while reading it, once.

    False (and nothing written) when the campaign was planned already: a plan task the
    broker delivered twice plans once.
    """
    claimed = session.execute(
        update(campaigns_table)
        .where(campaigns_table.c.id == campaign_id, campaigns_table.c.chunks_total.is_(None))
        .values(
            chunks_total=len(chunk_contacts),
            audience_size=audience_size,
            error=None,
            updated_at=now,
        )
    )
    if _rowcount(claimed) != 1:
        return False
    if chunk_contacts:
        session.execute(
            campaign_chunks_table.insert(),
            [
                {
                    "campaign_id": campaign_id,
                    "start": start,
                    "stop": stop,
                    "contacts": contacts,
                    "published_at": now,
                    "created": 0,
                    "invalid": 0,
                    "duplicates": 0,
                    "opted_out": 0,
                }
                for start, stop, contacts in chunk_contacts
            ],
        )
    add_rejections(session, campaign_id, rejections)
    return True


def add_rejections(session: Session, campaign_id: str, rejections: Sequence[Rejection]) -> None:
    """Store contacts left out, line by line."""
    if not rejections:
        return
    session.execute(
        campaign_rejections_table.insert(),
        [
            {
                "campaign_id": campaign_id,
                "line": r.line,
                "field": r.field[:64],
                "rule": r.rule[:64],
                "message": r.message,
            }
            for r in rejections
        ],
    )


def rejections_of(session: Session, campaign_id: str, *, limit: int = 100) -> list[Rejection]:
    """The contacts a campaign left out, by line."""
    table = campaign_rejections_table
    rows = session.execute(
        select(table.c.line, table.c.field, table.c.rule, table.c.message)
        .where(table.c.campaign_id == campaign_id)
        .order_by(table.c.line, table.c.id)
        .limit(limit)
    )
    return [Rejection(int(line), field, rule, message) for line, field, rule, message in rows]


@dataclass(frozen=True, slots=True)
class PendingChunk:
    """A chunk still to fan out: its bounds and its contacts."""

    start: int
    stop: int
    contacts: list[Any] | None


def pending_chunk(session: Session, campaign_id: str, start: int) -> PendingChunk | None:
    """The chunk at ``start`` if it is not done yet."""
    table = campaign_chunks_table
    row = session.execute(
        select(table.c.start, table.c.stop, table.c.contacts).where(
            table.c.campaign_id == campaign_id,
            table.c.start == start,
            table.c.done_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        return None
    return PendingChunk(int(row[0]), int(row[1]), row[2])


def lock_for_chunk(session: Session, campaign_id: str, start: int) -> CampaignStatus | None:
    """Hold the chunk and the campaign for storing the chunk; the campaign's status.

    None when the chunk is done (another delivery of its task stored it). The first statement
    writes, so on SQLite the transaction holds the database's write lock from here on.
    """
    table = campaign_chunks_table
    mine = session.execute(
        update(table)
        .where(
            table.c.campaign_id == campaign_id, table.c.start == start, table.c.done_at.is_(None)
        )
        .values(published_at=table.c.published_at)
        .returning(table.c.start)
    ).first()
    if mine is None:
        return None
    query = select(campaigns_table.c.status).where(campaigns_table.c.id == campaign_id)
    if _pg(session):
        query = query.with_for_update(read=True)
    status = session.execute(query).scalar_one_or_none()
    return CampaignStatus(status) if status is not None else None


def finish_chunk(
    session: Session,
    campaign_id: str,
    start: int,
    now: datetime,
    *,
    created: int,
    invalid: int,
    duplicates: int,
    opted_out: int,
) -> None:
    """Mark the chunk done with its counts, and drop its contacts (no longer needed)."""
    table = campaign_chunks_table
    session.execute(
        update(table)
        .where(table.c.campaign_id == campaign_id, table.c.start == start)
        .values(
            done_at=now,
            contacts=None,
            created=created,
            invalid=invalid,
            duplicates=duplicates,
            opted_out=opted_out,
        )
    )


def unpublish_chunk(session: Session, campaign_id: str, start: int) -> None:
    """Let the campaign's pass publish the chunk again (it was skipped while paused)."""
    table = campaign_chunks_table
    session.execute(
        update(table)
        .where(table.c.campaign_id == campaign_id, table.c.start == start)
        .values(published_at=None)
    )


def chunks_to_publish(
    session: Session, campaign_id: str, older_than: datetime, now: datetime
) -> list[tuple[int, int]]:
    """Pending chunks never published, or published before ``older_than`` (a lost task);
    stamped ``now`` in the same UPDATE, so two passes do not both publish them."""
    table = campaign_chunks_table
    due = and_(
        table.c.campaign_id == campaign_id,
        table.c.done_at.is_(None),
        (table.c.published_at.is_(None)) | (table.c.published_at < older_than),
    )
    rows = session.execute(
        update(table).where(due).values(published_at=now).returning(table.c.start, table.c.stop)
    )
    return sorted((int(start), int(stop)) for start, stop in rows)


def drop_pending_contacts(session: Session, campaign_id: str) -> int:
    """Forget the contacts of chunks that will never fan out (a cancelled campaign)."""
    table = campaign_chunks_table
    result = session.execute(
        update(table)
        .where(table.c.campaign_id == campaign_id, table.c.done_at.is_(None))
        .values(contacts=None)
    )
    return _rowcount(result)


@dataclass(frozen=True, slots=True)
class FanOutCounts:
    """Sums over a campaign's chunks."""

    chunks_done: int
    contacts_done: int
    created: int
    invalid: int
    duplicates: int
    opted_out: int


def fan_out_counts(session: Session, campaign_id: str) -> FanOutCounts:
    """How far the fan-out went, and what it left out (refused, repeated, opted out)."""
    table = campaign_chunks_table
    done = table.c.done_at.is_not(None)
    row = session.execute(
        select(
            func.count().filter(done),
            func.coalesce(func.sum(table.c.stop - table.c.start).filter(done), 0),
            func.coalesce(func.sum(table.c.created), 0),
            func.coalesce(func.sum(table.c.invalid), 0),
            func.coalesce(func.sum(table.c.duplicates), 0),
            func.coalesce(func.sum(table.c.opted_out), 0),
        ).where(table.c.campaign_id == campaign_id)
    ).one()
    return FanOutCounts(*(int(value or 0) for value in row))


# -- the campaign's messages as a set -----------------------------------------------------


def _of(campaign_id: str) -> ColumnElement[bool]:
    return messages_table.c.campaign_id == campaign_id


def hold_rows(session: Session, campaign_id: str, now: datetime, detail: str) -> int:
    """Hold every unsent message of the campaign (see the module docstring); how many."""
    m = messages_table
    waiting = session.execute(
        update(m)
        .where(_of(campaign_id), m.c.status == MessageStatus.SCHEDULED, m.c.send_at != HELD_UNTIL)
        .values(send_at=HELD_UNTIL, updated_at=now)
    )
    moved = apply_transition(
        session,
        _of(campaign_id),
        frozenset({MessageStatus.QUEUED}),
        MessageStatus.SCHEDULED,
        now=now,
        detail=detail,
        fields={"send_at": HELD_UNTIL},
    )
    return _rowcount(waiting) + len(moved)


def release_held(
    session: Session,
    campaign_id: str,
    now: datetime,
    *,
    limit: int,
    published_at: datetime | None,
) -> list[str]:
    """Up to ``limit`` held messages of the campaign: ``scheduled → queued``; their ids."""
    m = messages_table
    held = (
        select(m.c.id)
        .where(_of(campaign_id), m.c.status == MessageStatus.SCHEDULED, m.c.send_at == HELD_UNTIL)
        .limit(limit)
    )
    return apply_transition(
        session,
        ids_picked(session, held, m.c.id),
        frozenset({MessageStatus.SCHEDULED}),
        MessageStatus.QUEUED,
        now=now,
        detail="campaign released",
        fields={"published_at": published_at, "send_at": None},
    )


def cancel_rows(session: Session, campaign_id: str, now: datetime) -> int:
    """Every unsent message of the campaign: ``→ cancelled``; how many."""
    moved = apply_transition(
        session,
        _of(campaign_id),
        UNSENT,
        MessageStatus.CANCELLED,
        now=now,
        detail="campaign cancelled",
    )
    return len(moved)


def count_active(session: Session, campaign_id: str) -> int:
    """Messages of the campaign still scheduled, queued or sending."""
    m = messages_table
    query = select(func.count()).where(_of(campaign_id), m.c.status.in_(sorted(ACTIVE)))
    return int(session.execute(query).scalar_one())


def count_states(session: Session, campaign_id: str) -> dict[str, int]:
    """Messages of the campaign in each state (every state, zeros included)."""
    return count_by_status(session, campaign_id)


def parts_and_cost(session: Session, campaign_id: str) -> tuple[int, Decimal | None]:
    """SMS parts of the campaign's messages, and what the providers charged so far."""
    m = messages_table
    parts, cost = session.execute(
        select(func.coalesce(func.sum(m.c.parts), 0), func.sum(m.c.cost)).where(_of(campaign_id))
    ).one()
    return int(parts or 0), Decimal(str(cost)) if cost is not None else None


# -- Octopush batches ---------------------------------------------------------------------

#: ``provider_message_id`` of a batch's rows until Octopush answers: ``batch:<request_id>``
BATCH_PREFIX: Final = "batch:"


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One message of a batch: what the request and the outcome need."""

    id: str
    recipient: str
    body: str
    sender: str | None
    category: str
    attempts: int
    campaign_id: str | None


def _batch_rows(session: Session, condition: ColumnElement[bool]) -> list[BatchRow]:
    m = messages_table
    rows = session.execute(
        select(
            m.c.id,
            m.c.recipient,
            m.c.body,
            m.c.payload,
            m.c.category,
            m.c.attempts,
            m.c.campaign_id,
        ).where(condition)
    )
    return [
        BatchRow(
            id=id_,
            recipient=recipient,
            body=body,
            sender=(payload or {}).get("sender"),
            category=category,
            attempts=int(attempts),
            campaign_id=campaign_id,
        )
        for id_, recipient, body, payload, category, attempts, campaign_id in rows
    ]


def claim_batch(
    session: Session, campaign_id: str, batch_id: str, now: datetime, *, limit: int
) -> list[BatchRow]:
    """Up to ``limit`` queued messages of the campaign with one same text: ``→ sending``, in
    one UPDATE that also numbers the attempt and tags them ``batch:<batch_id>``."""
    m = messages_table
    body = session.execute(
        select(m.c.body).where(_of(campaign_id), m.c.status == MessageStatus.QUEUED).limit(1)
    ).scalar_one_or_none()
    if body is None:
        return []
    picked = (
        select(m.c.id)
        .where(_of(campaign_id), m.c.status == MessageStatus.QUEUED, m.c.body == body)
        .limit(limit)
    )
    ids = apply_transition(
        session,
        ids_picked(session, picked, m.c.id),
        frozenset({MessageStatus.QUEUED}),
        MessageStatus.SENDING,
        now=now,
        detail=f"Octopush batch {batch_id}",
        fields={
            "attempts": m.c.attempts + 1,
            "sending_started_at": now,
            "provider_message_id": BATCH_PREFIX + batch_id,
        },
    )
    claimed: list[BatchRow] = []
    for chunk in chunks(ids):
        claimed.extend(_batch_rows(session, m.c.id.in_(chunk)))
    return claimed
