"""Sending a chunk of queued messages: one request per group, requests in flight together.

A bulk enqueue reaches the bulk worker as ``send_messages`` tasks of up to ``MAX_CHUNK`` ids
(``publishing.py``). One SELECT reads the chunk's queued rows, then:

- Octopush SMS that share text, sender and options form groups (``plan_groups``; a group
  never holds the same recipient twice, Octopush would send once for two rows), each sent as
  one multi-recipient request by the batch path campaigns use too (``batches``);
- every other message (personalised texts, other providers, WhatsApp) needs a request of its
  own: per provider and lane, one limiter call takes the tokens of all of them, one UPDATE
  claims those that got one, their requests go out concurrently (``inflight``), and one
  UPDATE records every accepted one (``Dispatcher.record_sent_many``). The rare other
  outcomes take the dispatcher's one-message steps (retry, failover, lookup, failure).

A chunk cut short (worker lost) leaves rows ``queued`` (beat republishes them) or ``sending``
(the reapers settle them by lookup, never by a blind resend).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row

from postier import metrics
from postier.dispatch.batches import send_group
from postier.dispatch.health import split_unhealthy
from postier.dispatch.inflight import run_all
from postier.dispatch.sending import Dispatcher, SendOutcome
from postier.ledger.db import session_scope
from postier.ledger.models import Lane, Message, MessageKind, MessageStatus, messages_table
from postier.ledger.queries import detached_message, queued_rows
from postier.ledger.states import transition_many
from postier.providers.octopush import MAX_RECIPIENTS_PER_REQUEST
from postier.providers.registry import batch_max_recipients
from postier.providers.results import SendReceipt

log = logging.getLogger(__name__)


@dataclass
class ChunkResult:
    """What a chunk did: messages sent, and ids to hand to the broker again (failed over)."""

    sent: int = 0
    republish: list[str] = field(default_factory=list)


def _group_key(row: Row[Any]) -> tuple[str, str, str] | None:
    """Rows with equal keys may share one request; None: send alone (its provider sends no
    batches, per its profile: only Octopush does, by ``batches.send_group``)."""
    if row.kind != MessageKind.SMS or batch_max_recipients(row.provider) is None:
        return None
    payload = json.dumps(row.payload or {}, sort_keys=True, default=str)
    return (row.body, row.category, payload)


def plan_groups(rows: Sequence[Row[Any]], max_size: int) -> list[list[Row[Any]]]:
    """Rows in sending order, grouped: each group one request (a lone row: its own send).

    A row joins the first group of its key that has room and not its recipient yet; groups
    keep the order of their first row.
    """
    plan: list[list[Row[Any]]] = []
    open_groups: dict[tuple[str, str, str], list[tuple[list[Row[Any]], set[str]]]] = {}
    for row in rows:
        key = _group_key(row)
        if key is None:
            plan.append([row])
            continue
        candidates = open_groups.setdefault(key, [])
        for group, recipients in candidates:
            if len(group) < max_size and row.recipient not in recipients:
                group.append(row)
                recipients.add(row.recipient)
                break
        else:
            group = [row]
            candidates.append((group, {row.recipient}))
            plan.append(group)
    return plan


def send_chunk(dispatcher: Dispatcher, message_ids: Sequence[str]) -> ChunkResult:
    """One attempt at each queued message of ``message_ids``; others are left as they are."""
    with session_scope(dispatcher.engine) as session:
        rows = queued_rows(session, message_ids)
    result = ChunkResult()
    rows, unhealthy = split_unhealthy(dispatcher, rows)  # health: rerouted or held one by one
    for message_id in unhealthy:
        _add_outcome(result, message_id, dispatcher.send(message_id))
    singles: list[Row[Any]] = []
    for group in plan_groups(rows, MAX_RECIPIENTS_PER_REQUEST):
        if len(group) == 1:
            singles.extend(group)
        else:
            done = send_group(dispatcher, group, Lane(group[0].lane or Lane.TRANSACTIONAL))
            result.sent += done.sent
            result.republish.extend(done.republish)
    if singles:
        _send_singles(dispatcher, singles, result)
    return result


def _add_outcome(result: ChunkResult, message_id: str, outcome: SendOutcome) -> None:
    if outcome.republish:
        result.republish.append(message_id)
    result.sent += int(outcome.status is MessageStatus.SENT)


def _send_singles(dispatcher: Dispatcher, rows: Sequence[Row[Any]], result: ChunkResult) -> None:
    """Messages that go alone (one request each), by provider and lane, concurrently.

    Per provider and lane: one limiter call for the tokens of all its rows, one conditional
    UPDATE claiming those that got one, their requests in flight together (``inflight``), and
    one UPDATE recording every accepted one. The rare other outcomes (retry, failover,
    ambiguous, refused) take the dispatcher's one-message steps, as a lone send would.
    """
    groups: dict[tuple[str, Lane], list[Row[Any]]] = {}
    for row in rows:
        lane = Lane(row.lane or Lane.TRANSACTIONAL)
        groups.setdefault((row.provider or "", lane), []).append(row)
    for (provider, lane), group in groups.items():
        _send_concurrently(dispatcher, provider, lane, group, result)


def _send_concurrently(
    dispatcher: Dispatcher,
    provider: str,
    lane: Lane,
    rows: Sequence[Row[Any]],
    result: ChunkResult,
) -> None:
    """Tokens, claim, requests and outcomes of one provider's rows, as few round trips as can
    be: the rows that got a token go out together (a burst), the others wait for the next.
    When the next token is further than ``rate_limit_max_block`` away, the rows left go back
    to ``scheduled`` together, without an attempt."""
    pending = list(rows)
    max_block = dispatcher.settings.dispatch.rate_limit_max_block
    deadline = time.monotonic() + max_block
    while pending:
        taken, wait = dispatcher.take_tokens(provider, len(pending), lane)
        if taken == 0:
            if time.monotonic() + wait <= deadline:
                time.sleep(wait)
                continue
            _defer(dispatcher, provider, pending, wait)
            return
        batch, pending = pending[:taken], pending[taken:]
        _claim_and_send(dispatcher, provider, lane, batch, result)
        # as a lone send: each next token is worth blocking up to ``rate_limit_max_block``
        deadline = time.monotonic() + max_block


def _defer(dispatcher: Dispatcher, provider: str, rows: Sequence[Row[Any]], wait: float) -> None:
    now = _now()
    with session_scope(dispatcher.engine) as session:
        moved = transition_many(
            session,
            [row.id for row in rows],
            MessageStatus.QUEUED,
            MessageStatus.SCHEDULED,
            now=now,
            detail=f"rate limited: retry in {wait:.2f}s",
            send_at=now + timedelta(seconds=wait),
        )
    for _ in moved:
        metrics.count_deferral(provider)


def _claim_and_send(
    dispatcher: Dispatcher,
    provider: str,
    lane: Lane,
    rows: Sequence[Row[Any]],
    result: ChunkResult,
) -> None:
    now = _now()
    with session_scope(dispatcher.engine) as session:
        claimed = set(
            transition_many(
                session,
                [row.id for row in rows],
                MessageStatus.QUEUED,
                MessageStatus.SENDING,
                now=now,
                attempts=messages_table.c.attempts + 1,
                sending_started_at=now,
                provider_message_id=None,
            )
        )
    messages = [_as_message(row, claimed_at=now) for row in rows if row.id in claimed]
    if not messages:
        return
    for row in rows:
        if row.id in claimed:
            metrics.observe_lane_wait(lane, row.published_at, now)
    # built here, once: the threads must not race to build the shared connection pool
    _ = dispatcher.clients.http
    settings = dispatcher.settings
    cap = min(settings.dispatch.max_in_flight, settings.http.max_connections)
    outcomes = run_all(provider, cap, _timed(dispatcher), messages)
    accepted: list[tuple[Message, SendReceipt]] = []
    for message, receipt, error in outcomes:
        if error is None and receipt is not None:
            accepted.append((message, receipt))
            continue
        if not isinstance(error, Exception):
            raise error if error is not None else RuntimeError("no receipt and no error")
        outcome = dispatcher.settle_error(message, error)
        if outcome.republish:
            result.republish.append(message.id)
    result.sent += dispatcher.record_sent_many(accepted, now=_now())


def _timed(dispatcher: Dispatcher) -> Callable[[Message], SendReceipt]:
    def call(message: Message) -> SendReceipt:
        with metrics.time_send(message.provider):
            return dispatcher.call_provider(message)

    return call


def _now() -> datetime:
    return datetime.now(UTC)


def _as_message(row: Row[Any], claimed_at: datetime | None = None) -> Message:
    """The ``Message`` of a row this worker claimed (``queued → sending``, ``attempts + 1``),
    for the dispatcher's one-message steps; detached, never added to a session."""
    values = dict(row._mapping)
    values.update(
        status=MessageStatus.SENDING,
        previous_status=MessageStatus.QUEUED,
        attempts=int(row.attempts) + 1,
    )
    if claimed_at is not None:
        values.update(
            sending_started_at=claimed_at, updated_at=claimed_at, provider_message_id=None
        )
    return detached_message(values)
