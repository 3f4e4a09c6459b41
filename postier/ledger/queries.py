"""The queries producers, workers and beat run against the ledger.

Everything that touches many rows is one set-based statement (bulk INSERT, ``UPDATE … WHERE
id IN (SELECT …) RETURNING``), never a loop over ORM objects. Functions take a session and
never commit: the caller's ``session_scope`` decides the transaction.

Every query beat or a worker runs over and over reads its working set, not the ledger (a year
holds some 50 million rows): live rows through the partial index ``ix_messages_live``, listings
through ``(status, created_at, id)``, receipts through the provider's id or the number, rows
picked for an UPDATE by id; on SQLite each names its index (``postier.ledger.plans``).

Concurrency, per docs/ARCHITECTURE.md ("Decisions, and why"): on PostgreSQL the rows a query
hands out are picked with ``FOR UPDATE SKIP LOCKED``, so two schedulers share the work instead
of waiting on each other; on SQLite each such query is one UPDATE, which holds the database's
single write lock, so two callers take turns. Either way the UPDATE re-checks the status, so a
row is handed out once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class

from postier.ledger.bulk import Stored, insert_messages, store_messages
from postier.ledger.bulk import chunks as _chunks
from postier.ledger.bulk import insert_or_ignore as _insert_or_ignore
from postier.ledger.counts import counted
from postier.ledger.models import (
    IX_BATCH_UNSETTLED,
    IX_LIVE,
    IX_PROVIDER_MESSAGE_ID,
    IX_RECIPIENT,
    IX_RECIPIENT_HASH,
    IX_STATUS_CREATED,
    IX_STATUS_SEND_AT,
    IX_UNDISPATCHED,
    LIVE_STATUSES,
    Channel,
    DeliveryEvent,
    InboundMessage,
    Lane,
    Message,
    MessageStatus,
    batch_unsettled_rows,
    delivery_events_table,
    in_live_index,
    inbound_messages_table,
    messages_table,
    utcnow,
)
from postier.ledger.outbox import record_inbound_event
from postier.ledger.plans import by_primary_key, ids_picked, pinned
from postier.ledger.states import apply_transition, transition

#: how SQLAlchemy makes a ``Message`` it loads (``detached_message``)
_MESSAGE_MANAGER = manager_of_class(Message)
_MESSAGE_COLUMNS = frozenset(column.key for column in messages_table.columns)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- producers ---------------------------------------------------------------------------


def mark_published(session: Session, message_ids: Sequence[str], at: datetime) -> int:
    """Record that these ids were handed to the broker at ``at``; how many rows were queued."""
    messages = messages_table
    count = 0
    for chunk in _chunks(list(message_ids)):
        result = session.execute(
            by_primary_key(
                update(messages)
                .where(messages.c.id.in_(chunk), messages.c.status == MessageStatus.QUEUED)
                .values(published_at=at)
            )
        )
        count += _rowcount(result)
    return count


def mark_unpublished(session: Session, message_ids: Sequence[str]) -> int:
    """The broker never got these ids (stamped ``published_at`` before their publish): clear
    it, so beat's republish pass finds them at once."""
    messages = messages_table
    count = 0
    for chunk in _chunks(list(message_ids)):
        result = session.execute(
            update(messages)
            .where(messages.c.id.in_(chunk), messages.c.status == MessageStatus.QUEUED)
            .values(published_at=None)
        )
        count += _rowcount(result)
    return count


def _unpublished_condition(older_than: datetime) -> ColumnElement[bool]:
    """Queued, untouched since ``older_than``, and not handed to the broker since then.

    A row just queued (``updated_at`` recent) is left to whoever queued it, which publishes it
    right after its commit: republishing it too would only make a duplicate task.
    """
    messages = messages_table
    return and_(
        in_live_index(),
        messages.c.status == MessageStatus.QUEUED,
        messages.c.updated_at < older_than,
        or_(messages.c.published_at.is_(None), messages.c.published_at < older_than),
    )


def unpublished(session: Session, older_than: datetime, limit: int = 1000) -> list[str]:
    """Queued rows that need (re)publishing: never published, or last published before
    ``older_than`` and still queued, with no transition since ``older_than``.

    A row still waiting in a long broker queue is found too once the threshold passes; sending
    it twice is impossible (the worker's claim is conditional), but each republish is a wasted
    task, so keep ``older_than`` well above the expected queue wait, and prefer
    ``claim_unpublished``, which also stamps the rows so the next run skips them.
    """
    messages = messages_table
    query = (
        select(messages.c.id)
        .where(_unpublished_condition(older_than))
        .order_by(messages.c.updated_at)
        .limit(limit)
    )
    return list(session.execute(pinned(query, IX_LIVE)).scalars().all())


def claim_unpublished(
    session: Session, older_than: datetime, now: datetime, limit: int = 1000
) -> list[str]:
    """``unpublished``, and set their ``published_at`` to ``now`` in the same UPDATE.

    Two beats running this at once get disjoint ids, and a row is republished at most once per
    threshold even if publishing then fails (it is found again after ``older_than`` passes).
    """
    messages = messages_table
    picked = pinned(
        select(messages.c.id)
        .where(_unpublished_condition(older_than))
        .order_by(messages.c.updated_at)
        .limit(limit),
        IX_LIVE,
    )
    statement = by_primary_key(
        update(messages)
        .where(
            ids_picked(session, picked, messages.c.id),
            _unpublished_condition(older_than),
        )
        .values(published_at=now)
        .returning(messages.c.id)
    )
    return list(session.execute(statement).scalars().all())


# -- workers -----------------------------------------------------------------------------


def claim_for_sending(
    session: Session, message_id: str, *, now: datetime | None = None
) -> Message | None:
    """Take ``message_id`` for one send attempt: ``queued → sending``, ``attempts + 1``.

    None when the row is not queued (another worker claimed it, it was cancelled, or it is
    a duplicate delivery of the task). Commit before calling the provider, so the reaper can
    see a send that a dead worker left in ``sending``.

    ``provider_message_id`` is cleared: an id from an earlier attempt (or the ``batch:`` tag of
    a multi-recipient request that was retried) must not be taken for this attempt's.
    """
    at = now or utcnow()
    messages = messages_table
    claimed = transition(
        session,
        message_id,
        MessageStatus.QUEUED,
        MessageStatus.SENDING,
        now=at,
        attempts=messages.c.attempts + 1,
        sending_started_at=at,
        provider_message_id=None,
    )
    if not claimed:
        return None
    return session.get(Message, message_id, populate_existing=True)


def lanes_of(session: Session, message_ids: Sequence[str]) -> dict[str, Lane]:
    """The lane of each of ``message_ids`` that exists."""
    messages = messages_table
    found: dict[str, Lane] = {}
    for chunk in _chunks(list(dict.fromkeys(message_ids))):
        query = select(messages.c.id, messages.c.lane).where(messages.c.id.in_(chunk))
        found.update((id_, Lane(lane)) for id_, lane in session.execute(query))
    return found


def statuses_of(session: Session, message_ids: Collection[str]) -> dict[str, str]:
    """The status of each of ``message_ids`` that exists (one query per 500 ids)."""
    messages = messages_table
    found: dict[str, str] = {}
    for chunk in _chunks(list(dict.fromkeys(message_ids))):
        query = select(messages.c.id, messages.c.status).where(messages.c.id.in_(chunk))
        found.update((id_, str(MessageStatus(status))) for id_, status in session.execute(query))
    return found


def queued_rows(session: Session, message_ids: Sequence[str]) -> list[Row[Any]]:
    """The ``queued`` rows among ``message_ids``, every column, in the order given.

    Core rows, not ``Message`` objects: a worker sending a chunk of a campaign reads a hundred
    rows at once and needs no identity map for them.
    """
    messages = messages_table
    found: dict[str, Row[Any]] = {}
    for chunk in _chunks(list(message_ids)):
        query = by_primary_key(
            select(messages).where(
                messages.c.id.in_(chunk), messages.c.status == MessageStatus.QUEUED
            )
        )
        found.update((row.id, row) for row in session.execute(query))
    return [found[id_] for id_ in dict.fromkeys(message_ids) if id_ in found]


def detached_message(values: Mapping[str, Any]) -> Message:
    """The ``Message`` of a row read as a core row (``queued_rows``), built as SQLAlchemy's
    loader builds an object it reads: ``__new__`` and the values put in its ``__dict__``.

    ``Message(**values)`` passes each value through SQLModel's and SQLAlchemy's attribute
    setters (change events, pydantic's hooks): about 300 µs a message on a 2-core test
    machine, a tenth of a personalised send's CPU. This takes a few µs. The object is
    transient and detached, as ``Message(**values)`` was; it is read, never added to a session.
    ``values`` must hold every column (``select(messages_table)``): a missing one raises.
    """
    missing = _MESSAGE_COLUMNS.difference(values)
    if missing:
        raise ValueError(f"a message row without {', '.join(sorted(missing))}")
    if not _MESSAGE_MANAGER.mapper.configured:
        # the loader's objects come after a query has configured the mappers; a core select
        # does not, and an unconfigured class has no attribute access yet
        configure_mappers()
    message: Message = _MESSAGE_MANAGER.new_instance()
    message.__dict__.update(values)
    return message


def stuck_sending(session: Session, older_than: datetime, limit: int = 500) -> list[Message]:
    """Rows in ``sending`` since before ``older_than``: their worker probably died mid-call.

    They are to be reconciled by a status lookup, never sent again blindly. Rows of a
    multi-recipient batch (``batch:`` tag) are left to the batch reaper, which settles each
    group under its own request_id.
    """
    messages = messages_table
    started = func.coalesce(messages.c.sending_started_at, messages.c.updated_at)
    tag = messages.c.provider_message_id
    query = (
        select(Message)
        .where(
            in_live_index(),
            messages.c.status == MessageStatus.SENDING,
            started < older_than,
            or_(tag.is_(None), ~tag.like("batch:%")),
        )
        .order_by(started)
        .limit(limit)
    )
    return list(session.execute(pinned(query, IX_LIVE)).scalars().all())


def unsettled_batch_tags(
    session: Session, stuck_before: datetime, not_before: datetime
) -> list[str]:
    """Tags (``batch:<request id>``) of Octopush batches whose outcome is not known: rows still
    ``sending`` since before ``stuck_before`` (their worker was lost), or ``unknown``; only those
    started after ``not_before``.

    Read from ``ix_messages_batch_unsettled``, which holds only the unsettled batch rows: not
    every ``sending`` or ``unknown`` row of the ledger (single sends held ``unknown`` for a
    person pile up there).
    """
    messages = messages_table
    started = func.coalesce(messages.c.sending_started_at, messages.c.updated_at)
    query = (
        select(messages.c.provider_message_id)
        .where(
            batch_unsettled_rows(),
            started >= not_before,
            (messages.c.status == MessageStatus.UNKNOWN) | (started < stuck_before),
        )
        .distinct()
    )
    return [str(tag) for tag in session.execute(pinned(query, IX_BATCH_UNSETTLED)).scalars()]


# -- beat --------------------------------------------------------------------------------


def release_due(session: Session, now: datetime, limit: int = 1000) -> list[str]:
    """``scheduled → queued`` for rows whose ``send_at`` has come; the ids released.

    Two schedulers calling this at once never get the same id (see the module docstring).
    Released rows have ``published_at`` cleared: the caller publishes them, and
    ``unpublished`` finds them if it cannot.

    On SQLite the due rows are found by a read first, which takes no lock, and the move is an
    UPDATE by id that re-checks the status: the pass, every half second, takes the file's
    write lock only when something is due, and only for those rows. (Call it at the start of
    a transaction, as a pass does: a read after this session's first write would hold the
    lock too.)
    """
    messages = messages_table
    due = pinned(
        select(messages.c.id)
        .where(messages.c.status == MessageStatus.SCHEDULED, messages.c.send_at <= now)
        .order_by(messages.c.send_at)
        .limit(limit),
        IX_STATUS_SEND_AT,
    )
    if _dialect(session) == "sqlite":
        ids = list(session.execute(due).scalars())
        if not ids:
            return []
        condition: ColumnElement[bool] = messages.c.id.in_(ids)
    else:
        condition = ids_picked(session, due, messages.c.id)
    return apply_transition(
        session,
        condition,
        frozenset({MessageStatus.SCHEDULED}),
        MessageStatus.QUEUED,
        now=now,
        detail="due",
        fields={"published_at": None},
    )


class AwaitingDelivery(NamedTuple):
    """A ``sent`` row as the delivery poll reads it: only the columns it needs.

    Not a ``Message``: building 500 ORM objects (identity map, every column, instrumented
    attributes) cost the poll about 40 ms of CPU on a loaded machine, against a 20 ms target
    for a pass's database work (``make bench-scale``). A named tuple, built straight from the
    result row (a frozen dataclass's ``__init__`` cost a quarter of what was left), and the
    WhatsApp platform read out of the payload by the database (decoding 500 payloads was a
    third).
    """

    id: str
    channel: Channel
    provider: str | None
    recipient: str
    provider_message_id: str | None
    #: ``payload["platform_id"]``: the WhatsApp platform it went through, if it names one
    platform_id: str | None
    sending_started_at: datetime | None
    status_checked_at: datetime | None
    updated_at: datetime


def awaiting_delivery(
    session: Session,
    checked_before: datetime,
    limit: int = 500,
    *,
    provider: str | None = None,
) -> list[AwaitingDelivery]:
    """``sent`` rows whose delivery state was never asked, or last asked before
    ``checked_before``; the never-asked first, then the longest-unasked.

    Two reads of ``ix_messages_live`` in its own order, each stopping at ``limit`` rows: one
    ``OR`` with ``NULLS FIRST`` would make both databases sort every ``sent`` row instead. The
    never-asked read orders by ``status_checked_at`` too (all NULL there): PostgreSQL does not
    take ``IS NULL`` as an equality for the order, so ``ORDER BY updated_at`` alone made it
    walk ``ix_messages_retention`` (updated_at) from the oldest row, expecting ``sent`` rows
    spread evenly when they are all the newest: 17 s at 1M messages, minutes at 5M.
    """
    messages = messages_table
    columns = [
        messages.c.payload["platform_id"].as_string().label("platform_id")
        if name == "platform_id"
        else messages.c[name]
        for name in AwaitingDelivery._fields
    ]

    def read(condition: ColumnElement[bool], *order: Any, count: int) -> list[AwaitingDelivery]:
        query = select(*columns).where(
            in_live_index(), messages.c.status == MessageStatus.SENT, condition
        )
        if provider is not None:
            query = query.where(messages.c.provider == provider)
        query = pinned(query.order_by(*order).limit(count), IX_LIVE)
        return [AwaitingDelivery._make(row) for row in session.execute(query)]

    rows = read(
        messages.c.status_checked_at.is_(None),
        messages.c.status_checked_at,
        messages.c.updated_at,
        count=limit,
    )
    if len(rows) < limit:
        rows += read(
            messages.c.status_checked_at < checked_before,
            messages.c.status_checked_at,
            messages.c.updated_at,
            count=limit - len(rows),
        )
    return rows


def mark_status_checked(session: Session, message_ids: Sequence[str], at: datetime) -> int:
    """Record a delivery-state lookup that changed nothing, so the next poll asks others first."""
    messages = messages_table
    count = 0
    for chunk in _chunks(list(message_ids)):
        result = session.execute(
            update(messages).where(messages.c.id.in_(chunk)).values(status_checked_at=at)
        )
        count += _rowcount(result)
    return count


def record_inbound(session: Session, inbound: InboundMessage) -> bool:
    """Store an inbound message once per (provider, provider_message_id).

    True when it is new (``inbound.id`` is then set); False when it was already stored, as
    happens when a poll reads the same unread message twice.
    """
    table = inbound_messages_table
    row = {
        column.key: getattr(inbound, column.key) for column in table.columns if column.key != "id"
    }
    statement = _insert_or_ignore(session, table, ["provider", "provider_message_id"]).returning(
        table.c.id
    )
    new_id = session.execute(statement.values(**row)).scalar_one_or_none()
    if new_id is None:
        return False
    inbound.id = new_id
    # the application's event, in the same transaction (postier.ledger.outbox)
    record_inbound_event(session, new_id, inbound.provider, inbound.received_at, utcnow())
    return True


def undispatched_inbound(session: Session, limit: int = 100) -> list[InboundMessage]:
    """Inbound messages the application's hook has not been run for, oldest first."""
    table = inbound_messages_table
    query = (
        select(InboundMessage)
        .where(table.c.hook_dispatched_at.is_(None))
        .order_by(table.c.id)
        .limit(limit)
    )
    return list(session.execute(pinned(query, IX_UNDISPATCHED, table)).scalars().all())


def mark_inbound_dispatched(session: Session, inbound_id: int, at: datetime) -> bool:
    """Stamp ``hook_dispatched_at`` once; False if it was already stamped (by another poller)."""
    table = inbound_messages_table
    result = session.execute(
        update(table)
        .where(table.c.id == inbound_id, table.c.hook_dispatched_at.is_(None))
        .values(hook_dispatched_at=at)
    )
    return _rowcount(result) == 1


# -- reading -----------------------------------------------------------------------------


def get_message(session: Session, message_id: str) -> Message | None:
    """The message, as stored now (not as this session may have cached it)."""
    return session.get(Message, message_id, populate_existing=True)


def get_by_idempotency_key(session: Session, key: str) -> Message | None:
    """The message stored under an idempotency key, if any."""
    query = select(Message).where(messages_table.c.idempotency_key == key)
    fresh = {"populate_existing": True}
    return session.execute(query, execution_options=fresh).scalar_one_or_none()


def find_by_provider_message_id(
    session: Session, provider: str, provider_message_id: str, *, recipient: str | None = None
) -> Message | None:
    """The newest message a provider knows by this id (delivery receipts carry only that).

    ``recipient`` narrows it down where one id covers several messages (an Octopush ticket of a
    multi-recipient request).
    """
    messages = messages_table
    query = select(Message).where(
        messages.c.provider == provider,
        messages.c.provider_message_id == provider_message_id,
    )
    if recipient is not None:
        query = query.where(messages.c.recipient == recipient)
    query = pinned(query.order_by(messages.c.created_at.desc()).limit(1), IX_PROVIDER_MESSAGE_ID)
    return session.execute(
        query, execution_options={"populate_existing": True}
    ).scalar_one_or_none()


def list_messages(
    session: Session,
    *,
    status: MessageStatus | None = None,
    provider: str | None = None,
    campaign_id: str | None = None,
    limit: int = 100,
) -> list[Message]:
    """The newest messages matching every filter given, newest first.

    By state, the newest rows of ``(status, created_at, id)``; with no state, the newest keys
    of each state from that index alone, merged, then those rows; within a campaign, its rows
    (``ix_messages_campaign_id_status``). None reads more than ``limit`` rows per state.
    """
    messages = messages_table
    newest_first = (messages.c.created_at.desc(), messages.c.id.desc())

    def filtered(query: Select[Any], state: MessageStatus | None) -> Select[Any]:
        if state is not None:
            query = query.where(messages.c.status == state)
        if provider is not None:
            query = query.where(messages.c.provider == provider)
        if campaign_id is not None:
            return query.where(messages.c.campaign_id == campaign_id)
        return pinned(query, IX_STATUS_CREATED)

    if status is not None or campaign_id is not None:
        state = MessageStatus(status) if status is not None else None
        query = filtered(select(Message), state).order_by(*newest_first).limit(limit)
        return list(session.execute(query).scalars().all())
    keys = heapq.merge(
        *(
            session.execute(
                filtered(select(messages.c.created_at, messages.c.id), state)
                .order_by(*newest_first)
                .limit(limit)
            ).all()
            for state in MessageStatus
        ),
        key=lambda row: (row[0], row[1]),
        reverse=True,
    )
    ids = [row[1] for row in itertools.islice(keys, limit)]
    found = session.execute(by_primary_key(select(Message).where(messages.c.id.in_(ids))))
    by_id = {message.id: message for message in found.scalars()}
    return [by_id[id_] for id_ in ids if id_ in by_id]


def count_by_status(
    session: Session,
    campaign_id: str | None = None,
    *,
    statuses: Collection[MessageStatus] | None = None,
) -> dict[str, int]:
    """How many messages are in each status (every status asked for, zeros included).

    Over the whole ledger, from the counters the database keeps (``postier.ledger.counts``):
    a few rows, whatever the ledger's size. Within a campaign, a count of its rows
    (``ix_messages_campaign_id_status``).
    """
    wanted = list(MessageStatus) if statuses is None else [MessageStatus(s) for s in statuses]
    counts = {status.value: 0 for status in wanted}
    if campaign_id is None:
        for _provider, status, count in counted(session, wanted):
            counts[status.value] += count
        return counts
    messages = messages_table
    query = (
        select(messages.c.status, func.count())
        .where(messages.c.campaign_id == campaign_id)
        .group_by(messages.c.status)
    )
    if statuses is not None:
        query = query.where(messages.c.status.in_(wanted))
    for status, count in session.execute(query):
        counts[MessageStatus(status).value] = int(count)
    return counts


def count_live_by_provider(session: Session) -> list[tuple[str | None, MessageStatus, int]]:
    """``(provider, status, count)`` of the live rows (``LIVE_STATUSES``), for the metrics.

    From the counters the database keeps as rows move (``postier.ledger.counts``): a few rows
    read, whatever the size of the ledger or of its live set.
    """
    return counted(session, LIVE_STATUSES)


def oldest_update_in(session: Session, status: MessageStatus) -> datetime | None:
    """When the longest-waiting row of the live ``status`` last moved (``None``: no such row).

    ``min(updated_at)`` over that status's entries of ``ix_messages_live``, which holds
    ``updated_at``: the cost is that status's rows, never the ledger's (the metrics' age of the
    oldest ``unknown`` message, which a person must settle).
    """
    messages = messages_table
    query = select(func.min(messages.c.updated_at)).where(
        in_live_index(), messages.c.status == status
    )
    found: datetime | None = session.execute(pinned(query, IX_LIVE)).scalar_one_or_none()
    return found


def messages_by_idempotency_keys(session: Session, keys: Collection[str]) -> list[Message]:
    """The messages stored under any of ``keys`` (the unique index), newest first."""
    if not keys:
        return []
    query = (
        select(Message)
        .where(messages_table.c.idempotency_key.in_(list(keys)))
        .order_by(messages_table.c.created_at.desc(), messages_table.c.id.desc())
    )
    return list(session.execute(query).scalars().all())


def messages_to_number(
    session: Session,
    e164: str,
    number_hash: str | None,
    *,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Message]:
    """The messages sent to ``e164``, newest first, at most ``limit``, older than ``before``.

    Two index reads merged: the rows still holding the number (``ix_messages_recipient``) and,
    with a hash key, the rows holding its keyed hash (``ix_messages_recipient_hash_created_at_id``,
    in its order), which include those whose number retention has redacted. Each reads at most
    ``limit`` rows of one number, never the ledger.
    """
    m = messages_table
    newest_first = (m.c.created_at.desc(), m.c.id.desc())

    def page(query: Select[Any]) -> Select[Any]:
        if before is not None:
            at, message_id = before
            query = query.where(
                or_(m.c.created_at < at, and_(m.c.created_at == at, m.c.id < message_id))
            )
        return query.order_by(*newest_first).limit(limit)

    reads = [
        pinned(page(select(m.c.created_at, m.c.id).where(m.c.recipient == e164)), IX_RECIPIENT)
    ]
    if number_hash is not None:
        reads.append(
            pinned(
                page(select(m.c.created_at, m.c.id).where(m.c.recipient_hash == number_hash)),
                IX_RECIPIENT_HASH,
            )
        )
    keys = heapq.merge(
        *(session.execute(read).all() for read in reads),
        key=lambda row: (row[0], row[1]),
        reverse=True,
    )
    ids = list(dict.fromkeys(row[1] for row in keys))[:limit]
    found = session.execute(by_primary_key(select(Message).where(m.c.id.in_(ids))))
    by_id = {message.id: message for message in found.scalars()}
    return [by_id[id_] for id_ in ids if id_ in by_id]


def events_for(session: Session, message_id: str) -> list[DeliveryEvent]:
    """A message's delivery events, oldest first."""
    events = delivery_events_table
    query = select(DeliveryEvent).where(events.c.message_id == message_id).order_by(events.c.id)
    return list(session.execute(query).scalars().all())


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "AwaitingDelivery",
    "Stored",
    "awaiting_delivery",
    "claim_for_sending",
    "claim_unpublished",
    "count_by_status",
    "count_live_by_provider",
    "events_for",
    "find_by_provider_message_id",
    "get_by_idempotency_key",
    "get_message",
    "insert_messages",
    "lanes_of",
    "list_messages",
    "mark_inbound_dispatched",
    "mark_published",
    "mark_status_checked",
    "mark_unpublished",
    "messages_by_idempotency_keys",
    "messages_to_number",
    "oldest_update_in",
    "queued_rows",
    "record_inbound",
    "release_due",
    "store_messages",
    "stuck_sending",
    "undispatched_inbound",
    "unpublished",
    "unsettled_batch_tags",
]
