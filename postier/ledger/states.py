"""The message state machine: one table of allowed moves, applied by conditional UPDATEs.

Every move is ``UPDATE messages SET status = :to … WHERE id = :id AND status IN (:from)``
(docs/ARCHITECTURE.md, "Message states"): when two workers, or a worker and the reaper, race for
the same row, the database lets exactly one of them win, so a task the broker delivers twice
sends once. The winner writes one ``DeliveryEvent`` in the same transaction, and, for a move
the application is told about, one callback outbox row (``postier.ledger.outbox``).

Choices the table encodes:

- ``queued → scheduled`` and ``sending → scheduled``: a deferral longer than a worker should
  wait (a long rate-limit wait or Retry-After, a provider outage backoff, quiet hours) is a
  ledger row with a new ``send_at`` that beat releases, never a Celery ETA task.
- ``queued → failed``: a message found unsendable before any provider call (no route, invalid at
  send time).
- ``sending → queued``: retry soon, the request surely did not reach the provider.
- ``sending → unknown`` and ``sent → unknown``: the outcome cannot be known (an ambiguous error,
  a worker lost mid-call, a provider that forgot the message); ``unknown`` is left by a status
  lookup (to ``sent``, ``delivered``, ``undelivered``), by policy (``queued``: send again) or by a
  person (``failed``).
- ``failed → queued``: a person retries by hand. ``failed`` is still final: nothing automatic
  moves it.
- ``sent → expired``: no delivery state came within the provider's receipt window (72 hours by
  default, ``dispatch.receipt_window``), so the delivery poll stops asking and its set stays
  bounded; ``expired → delivered | undelivered``: a receipt that still comes is applied.
- ``delivered``, ``undelivered`` and ``cancelled`` have no way out; an undelivered message is
  sent again as a new message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import ColumnElement, bindparam, insert, update
from sqlalchemy.orm import Session, attributes
from sqlalchemy.sql import ClauseElement

from postier.ledger.models import (
    Message,
    MessageStatus,
    delivery_events_table,
    messages_table,
    utcnow,
)
from postier.ledger.outbox import NOTIFIED_STATUSES, record_status_events
from postier.ledger.plans import by_primary_key, targets_ids

S = MessageStatus

#: status → the statuses it may move to
ALLOWED_TRANSITIONS: Final[Mapping[MessageStatus, frozenset[MessageStatus]]] = MappingProxyType(
    {
        S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED}),
        S.QUEUED: frozenset({S.SENDING, S.SCHEDULED, S.CANCELLED, S.FAILED}),
        S.SENDING: frozenset({S.SENT, S.QUEUED, S.SCHEDULED, S.FAILED, S.UNKNOWN}),
        S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED, S.UNKNOWN, S.EXPIRED}),
        S.UNKNOWN: frozenset({S.SENT, S.QUEUED, S.FAILED, S.DELIVERED, S.UNDELIVERED}),
        S.FAILED: frozenset({S.QUEUED}),
        S.DELIVERED: frozenset(),
        S.UNDELIVERED: frozenset(),
        S.CANCELLED: frozenset(),
        S.EXPIRED: frozenset({S.DELIVERED, S.UNDELIVERED}),
    }
)

#: the statuses a message may be created in
INITIAL_STATUSES: Final[frozenset[MessageStatus]] = frozenset({S.QUEUED, S.SCHEDULED})

#: no periodic pass moves a message out of these (a person may retry ``failed``; a late
#: delivery receipt settles ``expired``)
FINAL_STATUSES: Final[frozenset[MessageStatus]] = frozenset(
    {S.DELIVERED, S.UNDELIVERED, S.FAILED, S.CANCELLED, S.EXPIRED}
)

#: columns ``transition`` sets itself and refuses as extra fields
_MANAGED_COLUMNS: Final[frozenset[str]] = frozenset(
    {"id", "status", "previous_status", "created_at", "updated_at", "callback_seq"}
)


class IllegalTransition(ValueError):
    """A move the state table does not allow; raised before the database is touched."""

    def __init__(self, from_: MessageStatus, to: MessageStatus) -> None:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[from_])) or "nothing"
        super().__init__(f"{from_} → {to} is not allowed ({from_} may go to: {allowed})")
        self.from_ = from_
        self.to = to


def is_final(status: MessageStatus | str) -> bool:
    """Whether no automatic process will move a message in ``status`` any further."""
    return MessageStatus(status) in FINAL_STATUSES


def can_transition(from_: MessageStatus | str, to: MessageStatus | str) -> bool:
    """Whether the table allows ``from_ → to``."""
    return MessageStatus(to) in ALLOWED_TRANSITIONS[MessageStatus(from_)]


def check_transition(
    from_: MessageStatus | str | Collection[MessageStatus | str], to: MessageStatus | str
) -> frozenset[MessageStatus]:
    """The set of source statuses, after checking each may move to ``to``."""
    sources = _as_statuses(from_)
    target = MessageStatus(to)
    for source in sorted(sources):
        if target not in ALLOWED_TRANSITIONS[source]:
            raise IllegalTransition(source, target)
    return sources


def transition(
    session: Session,
    message_id: str,
    from_: MessageStatus | Collection[MessageStatus],
    to: MessageStatus,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    raw: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move ``message_id`` from one of ``from_`` to ``to``; False when it was not in ``from_``.

    One conditional UPDATE sets ``status``, ``updated_at`` (``now``, default the current time)
    and ``fields`` (column values or SQL expressions such as ``Message.attempts + 1``); when it
    changed the row, a ``DeliveryEvent`` is inserted in the same transaction. Commit (or leave
    ``session_scope``) promptly: the row stays locked until then.
    """
    changed = apply_transition(
        session,
        messages_table.c.id == message_id,
        check_transition(from_, to),
        MessageStatus(to),
        now=now,
        provider_status=provider_status,
        detail=detail,
        raw=raw,
        fields=fields,
    )
    return bool(changed)


def transition_many(
    session: Session,
    message_ids: Iterable[str],
    from_: MessageStatus | Collection[MessageStatus],
    to: MessageStatus,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    raw: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    chunk_size: int = 500,
    **fields: Any,
) -> list[str]:
    """``transition`` for many rows (e.g. cancelling a campaign); returns the ids that moved."""
    sources = check_transition(from_, to)
    target = MessageStatus(to)
    ids = list(dict.fromkeys(message_ids))
    moved: list[str] = []
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        moved.extend(
            apply_transition(
                session,
                messages_table.c.id.in_(chunk),
                sources,
                target,
                now=now,
                provider_status=provider_status,
                detail=detail,
                raw=raw,
                fields=fields,
            )
        )
    return moved


#: ids one move's ``IN`` list holds (bound parameters stay far under every driver's limit)
_IDS_PER_STATEMENT: Final = 1000


def transition_each(
    session: Session,
    changes: Mapping[str, Mapping[str, Any]],
    from_: MessageStatus | Collection[MessageStatus],
    to: MessageStatus,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    raws: Mapping[str, Mapping[str, Any] | None] | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> list[str]:
    """Move many rows to ``to``, each with values of its own; the ids moved.

    ``changes`` maps each id to its own column values (its provider id, cost, parts…); a row
    that leaves a column out of its values keeps its current one. ``fields`` are set on every
    row alike and ``raws`` gives each event its provider answer. One UPDATE moves the rows
    (and writes their events), then one executemany UPDATE by primary key sets the moved
    rows' own values, in the same transaction: a chunk of 500 sends is two statements, not
    500. (A ``CASE id WHEN …`` per column did it in one, but building its thousands of bound
    parameters was a sixth of a personalised chunk's CPU.)
    """
    sources = check_transition(from_, to)
    if not changes:
        return []
    own = {key for values in changes.values() for key in values}
    clash = own & set(fields)
    if clash:
        raise TypeError(f"set for every row and for each: {', '.join(sorted(clash))}")
    _check_settable(own)  # before anything moves
    messages = messages_table
    ids = list(changes)
    moved: list[str] = []
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        moved.extend(
            apply_transition(
                session,
                messages.c.id.in_(ids[start : start + _IDS_PER_STATEMENT]),
                sources,
                MessageStatus(to),
                now=now,
                provider_status=provider_status,
                detail=detail,
                raw=None,
                fields=fields,
                raws=raws or {},
            )
        )
    # rows with the same columns to set share one executemany statement
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message_id in moved:
        values = changes[message_id]
        if values:
            columns = tuple(sorted(values))
            by_columns.setdefault(columns, []).append(
                {"_id": message_id, **{f"_{key}": value for key, value in values.items()}}
            )
    for columns, parameters in by_columns.items():
        session.execute(
            update(messages)
            .where(messages.c.id == bindparam("_id"))
            .values({column: bindparam(f"_{column}") for column in columns}),
            parameters,
        )
    for message_id in moved:
        loaded = session.identity_map.get(session.identity_key(Message, message_id))
        if loaded is not None and changes[message_id]:
            session.refresh(loaded)
    return moved


def _check_settable(columns: Iterable[str]) -> None:
    unknown = set(columns) - (set(messages_table.c.keys()) - _MANAGED_COLUMNS)
    if unknown:
        raise TypeError(f"not settable by a transition: {', '.join(sorted(unknown))}")


def apply_transition(
    session: Session,
    condition: ColumnElement[bool],
    sources: frozenset[MessageStatus],
    to: MessageStatus,
    *,
    now: datetime | None = None,
    provider_status: str | None = None,
    detail: str | None = None,
    raw: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    raws: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> list[str]:
    """The set-based core of every transition: rows matching ``condition`` and in ``sources``.

    Also for queries that pick rows by something other than ids (``release_due``). Returns
    the ids moved. ``raws``: each row's own event ``raw`` (else ``raw`` for all).
    """
    check_transition(sources, to)
    fields = fields or {}
    messages = messages_table
    _check_settable(fields)
    if to is MessageStatus.SCHEDULED and fields.get("send_at") is None:
        raise ValueError("a move to scheduled needs send_at, or beat would never release it")
    at = now or utcnow()
    notified = to in NOTIFIED_STATUSES
    counted = {"callback_seq": messages.c.callback_seq + 1} if notified else {}
    statement = (
        update(messages)
        .where(condition, messages.c.status.in_(sorted(sources)))
        # right-hand sides see the row as it was: previous_status gets the old status
        .values(status=to, previous_status=messages.c.status, updated_at=at, **counted, **fields)
        .returning(
            messages.c.id,
            messages.c.previous_status,
            messages.c.provider,
            messages.c.idempotency_key,
            messages.c.callback_url,
            messages.c.callback_seq,
        )
    )
    if targets_ids(condition):
        # by id, never by walking every row in ``sources`` (postier.ledger.plans)
        statement = by_primary_key(statement)
    rows = session.execute(statement).all()
    if not rows:
        return []
    event_raw = dict(raw) if raw is not None else None
    session.execute(
        insert(delivery_events_table),
        [
            {
                "message_id": message_id,
                "from_status": previous,
                "to_status": to,
                "at": at,
                "provider_status": provider_status,
                "detail": detail,
                "raw": _own_raw(raws, message_id, event_raw),
            }
            for message_id, previous, *_ in rows
        ],
    )
    if notified:
        # the application's events, in this same transaction (postier.ledger.outbox)
        record_status_events(session, rows, to, at, provider_status=provider_status, detail=detail)
    _sync_loaded(session, rows, to, at, fields)
    return [message_id for message_id, *_ in rows]


def _own_raw(
    raws: Mapping[str, Mapping[str, Any] | None] | None,
    message_id: str,
    shared: dict[str, Any] | None,
) -> dict[str, Any] | None:
    if raws is None or message_id not in raws:
        return shared
    own = raws[message_id]
    return dict(own) if own is not None else None


def _sync_loaded(
    session: Session,
    rows: Iterable[Any],
    to: MessageStatus,
    at: datetime,
    fields: Mapping[str, Any],
) -> None:
    """Bring ``Message`` objects this session already holds up to date with the UPDATE."""
    computed = any(isinstance(value, ClauseElement) for value in fields.values())
    for message_id, previous, *_, sequence in rows:
        loaded = session.identity_map.get(session.identity_key(Message, message_id))
        if loaded is None:
            continue
        if computed:
            session.refresh(loaded)
            continue
        values = {
            **fields,
            "status": to,
            "previous_status": previous,
            "updated_at": at,
            "callback_seq": sequence,
        }
        for key, value in values.items():
            attributes.set_committed_value(loaded, key, value)


def _as_statuses(
    value: MessageStatus | str | Collection[MessageStatus | str],
) -> frozenset[MessageStatus]:
    if isinstance(value, str):
        return frozenset({MessageStatus(value)})
    statuses = frozenset(MessageStatus(item) for item in value)
    if not statuses:
        raise ValueError("from_ names no status")
    return statuses
