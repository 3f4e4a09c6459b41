"""Replaying failed messages in bulk: ``postier retry --status failed`` after an outage.

A person's decision, like ``postier retry <id>``: ``failed → queued`` with the attempts reset,
for every failed message that matches the filters (failed since a time, by provider, by a
reason's text). Each message is queued once: one conditional UPDATE per chunk moves only rows
still ``failed`` (two replays at once never both queue one), and its event says it was by hand
(the chaos audit's word for a second send that is no duplicate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus, messages_table
from postier.ledger.states import transition_many

#: the event detail of a bulk replay
REPLAY_DETAIL = "by hand (postier retry --status failed)"


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which failed messages to replay; every filter given must match."""

    #: failed at or after this time (the row's last change)
    since: datetime | None = None
    provider: str | None = None
    #: a piece of the failure's text (``last_error``), case ignored
    reason: str | None = None
    #: at most this many (the oldest failures first)
    limit: int = 10_000


@dataclass
class Replay:
    """The failed messages that matched, and those queued again (none in a dry run)."""

    matched: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


def failed_matching(engine: Engine, wanted: ReplayFilter) -> list[str]:
    """The ids of the failed messages ``wanted`` selects, oldest failure first."""
    messages = messages_table
    query = select(messages.c.id).where(messages.c.status == MessageStatus.FAILED)
    if wanted.since is not None:
        query = query.where(messages.c.updated_at >= wanted.since)
    if wanted.provider is not None:
        query = query.where(messages.c.provider == wanted.provider)
    if wanted.reason:
        query = query.where(
            func.lower(messages.c.last_error).contains(wanted.reason.lower(), autoescape=True)
        )
    query = query.order_by(messages.c.updated_at, messages.c.id).limit(wanted.limit)
    with session_scope(engine) as session:
        return [str(message_id) for (message_id,) in session.execute(query)]


def replay_failed(engine: Engine, wanted: ReplayFilter, *, dry_run: bool = False) -> Replay:
    """Queue again every failed message ``wanted`` selects (only list them when ``dry_run``).

    The caller publishes ``Replay.queued``; a row it could not publish is found by beat's
    republish pass.
    """
    replay = Replay(matched=failed_matching(engine, wanted))
    if dry_run or not replay.matched:
        return replay
    with session_scope(engine) as session:
        replay.queued = transition_many(
            session,
            replay.matched,
            MessageStatus.FAILED,
            MessageStatus.QUEUED,
            detail=REPLAY_DETAIL,
            attempts=0,
            published_at=None,
        )
    return replay
