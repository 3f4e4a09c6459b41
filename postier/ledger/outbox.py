"""The callback outbox: the events owed to the application, written with the moves themselves.

A status move and its event are one transaction (``states.apply_transition`` calls
``record_status_events``), so an event exists exactly for the moves that committed: none is
lost when a worker dies after the commit, none is sent for a move rolled back. Delivery is
``postier.dispatch.callbacks``; this module only writes rows and says which are new.

New rows are handed to the broker right after their commit by the process's notifier
(``set_notifier``, installed by the worker role), and stamped ``published_at`` for it; in a
process without one (a CLI cancelling a campaign) they stay unstamped and beat's pass hands
them over. Only row ids are ever handed over.

Reading rows by an id cursor is avoided on purpose: PostgreSQL commits concurrent
transactions out of id order, so a cursor would skip rows committed late. Beat reads the
partial index of undelivered rows by due time instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from postier.config import get_settings
from postier.ledger.models import (
    CallbackKind,
    MessageStatus,
    callback_events_table,
    new_message_id,
)

log = logging.getLogger(__name__)

S = MessageStatus

#: the moves the application is told about; ``expired`` too: it is final (a receipt may still
#: settle it, which is then one more event)
NOTIFIED_STATUSES: Final[frozenset[MessageStatus]] = frozenset(
    {S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.UNKNOWN, S.CANCELLED, S.EXPIRED}
)

#: the ``Session.info`` key of the event ids a transaction wrote (published after its commit)
_NEW_EVENTS: Final = "postier.callback_events"

_notifier: Callable[[list[int]], None] | None = None


def set_notifier(notify: Callable[[list[int]], None] | None) -> None:
    """Install what hands new event ids to the broker after each commit (None: nothing;
    beat's pass publishes them). The worker role installs a Celery publish."""
    global _notifier
    _notifier = notify


def global_target() -> str | None:
    """Where the events of a message without its own ``callback_url`` go (None: nowhere)."""
    return get_settings().callbacks.target or None


def inbound_target() -> str | None:
    """Where inbound messages' events go (None: nowhere)."""
    callbacks = get_settings().callbacks
    return callbacks.inbound_target or callbacks.target or None


def record_status_events(
    session: Session,
    moved: Iterable[Sequence[Any]],
    to: MessageStatus,
    at: datetime,
    *,
    provider_status: str | None,
    detail: str | None,
) -> list[int]:
    """One outbox row per moved message that has a target; the new rows' ids.

    ``moved`` holds the UPDATE's returned rows: ``(id, previous_status, provider,
    idempotency_key, callback_url, callback_seq)``.
    """
    if to not in NOTIFIED_STATUSES:
        return []
    fallback = global_target()
    published_at = at if _notifier is not None else None
    rows = [
        {
            "event_id": new_message_id(),
            "kind": CallbackKind.STATUS,
            "message_id": message_id,
            "inbound_id": None,
            "sequence": sequence,
            "from_status": previous,
            "status": to,
            "provider": provider,
            "provider_status": provider_status,
            "reason": detail,
            "idempotency_key": key,
            "occurred_at": at,
            "target": url or fallback,
            "attempts": 0,
            "attempt_log": [],
            "next_attempt_at": at,
            "published_at": published_at,
            "delivered_at": None,
            "given_up_at": None,
            "created_at": at,
        }
        for message_id, previous, provider, key, url, sequence in moved
        if url or fallback
    ]
    return _insert(session, rows)


def record_inbound_event(
    session: Session, inbound_id: int, provider: str, received_at: datetime, at: datetime
) -> int | None:
    """The outbox row of a newly stored inbound message, when inbound events have a target."""
    target = inbound_target()
    if target is None:
        return None
    row: dict[str, Any] = {
        "event_id": new_message_id(),
        "kind": CallbackKind.INBOUND,
        "message_id": None,
        "inbound_id": inbound_id,
        "sequence": None,
        "from_status": None,
        "status": None,
        "provider": provider,
        "provider_status": None,
        "reason": None,
        "idempotency_key": None,
        "occurred_at": received_at,
        "target": target,
        "attempts": 0,
        "attempt_log": [],
        "next_attempt_at": at,
        "published_at": at if _notifier is not None else None,
        "delivered_at": None,
        "given_up_at": None,
        "created_at": at,
    }
    ids = _insert(session, [row])
    return ids[0] if ids else None


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    ids = [
        int(new_id)
        for new_id in session.execute(
            insert(callback_events_table).returning(
                callback_events_table.c.id, sort_by_parameter_order=True
            ),
            rows,
        ).scalars()
    ]
    if _notifier is not None:
        session.info.setdefault(_NEW_EVENTS, []).extend(ids)
    return ids


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    ids = session.info.pop(_NEW_EVENTS, None)
    notify = _notifier
    if not ids or notify is None:
        return
    try:
        notify(list(ids))
    except Exception:  # never fail a commit that happened: the rows are stamped, beat republishes
        log.exception("callback events not published; beat will", extra={"events": len(ids)})


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_NEW_EVENTS, None)
