"""Sending a chunk of queued messages: Octopush SMS with one same text go in one request.

A bulk enqueue reaches the worker as ``send_messages`` tasks of up to ``MAX_CHUNK`` ids
(``publishing.py``). Sent one by one, each message costs a provider request, three ledger
transactions and a rate-limit token; the benchmark (``make bench``) showed the worker spending
most of its CPU there. Octopush takes many recipients in one request (PROVIDERS.md,
"Octopush": ``sms_recipients`` is a comma list, v1 ``recipients`` up to 500), so the queued
Octopush SMS of a chunk that share text, sender and options go out together:

- one SELECT reads the chunk; one rate-limit token is taken per request;
- one conditional UPDATE claims the group (``queued → sending``, ``attempts + 1``), tagging
  its rows ``provider_message_id = "batch:<request_id>"`` while the request is out — the
  convention of campaign batches (``postier/campaigns``), so one reaper settles both;
- the request carries the group's own ``request_id``: Octopush deduplicates on it (120), which
  is how a lost answer is settled without sending twice;
- each recipient's outcome lands on its own row in set-based UPDATEs: accepted ones ``sent``
  with ``<ticket>:<number>`` (the id Octopush delivery receipts carry), refused ones ``failed``.

A group never holds the same recipient twice (Octopush would send once for two rows). Other
messages (other providers, WhatsApp, an Octopush text alone in its chunk) are sent one by one
as ``Dispatcher.send`` does, reusing the rows the chunk's SELECT read.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, literal

from postier import metrics
from postier.dispatch.health import note_failure, note_success, split_unhealthy
from postier.dispatch.resolving import Resolution
from postier.dispatch.sending import ACCOUNT_ERRORS, Dispatcher, SendOutcome, backoff_delay
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageKind, MessageStatus, messages_table
from postier.ledger.queries import queued_rows
from postier.ledger.states import transition_many
from postier.providers.base import OutgoingSms
from postier.providers.errors import (
    AmbiguousError,
    PermanentError,
    ProviderError,
    RetryableError,
)
from postier.providers.octopush import CODES, MAX_RECIPIENTS_PER_REQUEST, is_already_accepted
from postier.providers.results import SendReceipt
from postier.rules.errors import RuleViolation
from postier.rules.stop import add_stop_mention, has_stop_mention

log = logging.getLogger(__name__)

PROVIDER = "octopush"
#: ``provider_message_id`` of a group's rows while its request is out (as campaign batches)
BATCH_PREFIX = "batch:"


@dataclass
class ChunkResult:
    """What a chunk did: messages sent, and ids to hand to the broker again (failed over)."""

    sent: int = 0
    republish: list[str] = field(default_factory=list)


def _group_key(row: Row[Any]) -> tuple[str, str, str] | None:
    """Rows with equal keys may share one Octopush request; None: send alone."""
    if row.provider != PROVIDER or row.kind != MessageKind.SMS:
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
            _send_group(dispatcher, group, result)
    if singles:
        _send_singles(dispatcher, singles, result)
    return result


def _send_singles(dispatcher: Dispatcher, rows: Sequence[Row[Any]], result: ChunkResult) -> None:
    """Messages that go alone, each as ``Dispatcher.send`` would: a token, a conditional
    claim, the dispatcher's attempt (``Dispatcher._attempt``: same outcomes, retries,
    failover) — without loading each row again, as the chunk's SELECT already read them.

    The token is taken right before its request, so the provider sees the limit's pace. A
    wait too long to block for puts the row back to ``scheduled`` without an attempt, and the
    rest of that provider's rows with it (their wait could only be longer).
    """
    waits: dict[str, float] = {}
    for row in rows:
        provider = row.provider or ""
        wait = waits.get(provider) or dispatcher._take_token(provider)
        now = _now()
        if wait > 0:
            waits[provider] = wait
            with session_scope(dispatcher.engine) as session:
                moved = transition_many(
                    session,
                    [row.id],
                    MessageStatus.QUEUED,
                    MessageStatus.SCHEDULED,
                    now=now,
                    detail=f"rate limited: retry in {wait:.2f}s",
                    send_at=now + timedelta(seconds=wait),
                )
            if moved:
                metrics.count_deferral(provider)
            continue
        with session_scope(dispatcher.engine) as session:
            claimed = transition_many(
                session,
                [row.id],
                MessageStatus.QUEUED,
                MessageStatus.SENDING,
                now=now,
                attempts=messages_table.c.attempts + 1,
                sending_started_at=now,
                provider_message_id=None,
            )
        if not claimed:
            continue
        _add_outcome(result, row.id, dispatcher._attempt(_as_message(row, claimed_at=now)))


def _add_outcome(result: ChunkResult, message_id: str, outcome: SendOutcome) -> None:
    if outcome.republish:
        result.republish.append(message_id)
    result.sent += int(outcome.status is MessageStatus.SENT)


def text_for(dispatcher: Dispatcher, body: str, category: str) -> str:
    """The text as sent: French premium marketing carries "STOP au XXXXX" (seed 003, 121).

    Notifications go ``transactional`` and need none; producers add the mention at enqueue,
    so this only covers a marketing message that reached Octopush by failover.
    """
    octopush = dispatcher.settings.octopush
    if category == "marketing" and octopush.sms_type == "FR" and not has_stop_mention(body):
        return add_stop_mention(body, octopush.stop_short_code)
    return body


def _request(dispatcher: Dispatcher, request_id: str, rows: Sequence[Row[Any]]) -> OutgoingSms:
    first = rows[0]
    payload = first.payload or {}
    return OutgoingSms(
        recipients=tuple(row.recipient for row in rows),
        text=text_for(dispatcher, first.body, first.category),
        sender=payload.get("sender"),
        category="marketing" if first.category == "marketing" else "notification",
        request_id=request_id,
        campaign=payload.get("campaign"),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _count(state: MessageStatus, n: int) -> None:
    for _ in range(n):
        metrics.count_message(PROVIDER, state)


def _send_group(dispatcher: Dispatcher, group: Sequence[Row[Any]], result: ChunkResult) -> None:
    ids = [row.id for row in group]
    wait = dispatcher._take_token(PROVIDER)
    if wait > 0:
        with session_scope(dispatcher.engine) as session:
            deferred = transition_many(
                session,
                ids,
                MessageStatus.QUEUED,
                MessageStatus.SCHEDULED,
                detail=f"rate limited: retry in {wait:.2f}s",
                send_at=_now() + timedelta(seconds=wait),
            )
        for _ in deferred:
            metrics.count_deferral(PROVIDER)
        return
    request_id = uuid.uuid4().hex
    now = _now()
    with session_scope(dispatcher.engine) as session:
        claimed = set(
            transition_many(
                session,
                ids,
                MessageStatus.QUEUED,
                MessageStatus.SENDING,
                now=now,
                detail=f"Octopush batch {request_id}",
                attempts=messages_table.c.attempts + 1,
                sending_started_at=now,
                provider_message_id=BATCH_PREFIX + request_id,
            )
        )
    rows = [row for row in group if row.id in claimed]
    if not rows:
        return
    octopush = dispatcher.clients.octopush
    try:
        sms = _request(dispatcher, request_id, rows)
        with metrics.time_send(PROVIDER):
            receipt = octopush.send_sms(sms)
    except AmbiguousError:
        # the same request_id again: 120 if the first went through, a ticket if not. Whatever
        # else it meets, the first may have gone out: the group stays unknown, never retried
        # under a new request_id (that would send twice)
        try:
            receipt = octopush.send_sms(sms)
        except ProviderError as exc:
            note_failure(dispatcher, PROVIDER, exc)  # health
            _settle_later(dispatcher, rows, request_id, exc)
            return
    except RetryableError as exc:
        note_failure(dispatcher, PROVIDER, exc)  # health
        result.republish.extend(_retry_later(dispatcher, rows, exc))
        return
    except ACCOUNT_ERRORS as exc:
        note_failure(dispatcher, PROVIDER, exc)  # health
        result.republish.extend(_give_up_each(dispatcher, rows, exc))
        return
    except PermanentError as exc:
        _fail_all(dispatcher, rows, MessageStatus.SENDING, str(exc), exc)
        return
    except (RuleViolation, KeyError, TypeError, ValueError) as exc:
        _fail_all(dispatcher, rows, MessageStatus.SENDING, f"invalid at send time: {exc}", None)
        return
    note_success(dispatcher, PROVIDER)  # health
    result.sent += record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.SENDING)


def record_receipt(
    dispatcher: Dispatcher,
    request_id: str,
    rows: Sequence[Row[Any]],
    receipt: SendReceipt,
    from_: MessageStatus,
) -> int:
    """Each recipient's outcome on its own row (``from_ → sent | failed``); how many sent."""
    raw = {"batch": request_id, "ticket": receipt.message_id, "recipients": len(rows)}
    if is_already_accepted(receipt):
        # sent earlier under this request_id; its ticket is not given back
        with session_scope(dispatcher.engine) as session:
            sent = transition_many(
                session,
                [row.id for row in rows],
                from_,
                MessageStatus.SENT,
                provider_status="120",
                detail="batch request_id already accepted (Octopush 120): sent earlier",
                raw=raw,
                provider_message_id=None,
                last_error=None,
            )
        _count(MessageStatus.SENT, len(sent))
        return len(sent)
    results = {item.recipient: item for item in receipt.recipients}
    accepted: dict[tuple[Any, Any], list[str]] = {}
    refused: dict[str, list[str]] = {}
    for row in rows:
        item = results.get(row.recipient)
        if item is None or item.accepted:
            # v1 answers per request, not per recipient: unlisted means accepted
            cost = item.cost if item is not None and item.cost is not None else receipt.cost
            parts = item.parts if item is not None and item.parts is not None else receipt.parts
            if item is None and len(rows) > 1:
                cost = None
            accepted.setdefault((cost, parts), []).append(row.id)
        else:
            refused.setdefault(item.error_code or "", []).append(row.id)
    sent_count = 0
    provider_id = (
        literal(f"{receipt.message_id}:") + messages_table.c.recipient
        if receipt.message_id
        else None
    )
    with session_scope(dispatcher.engine) as session:
        for (cost, parts), ids in accepted.items():
            counted: dict[str, Any] = {"parts": parts} if parts is not None else {}
            moved = transition_many(
                session,
                ids,
                from_,
                MessageStatus.SENT,
                provider_status="accepted",
                detail=f"batch {request_id}",
                raw={**raw, "cost": str(cost) if cost is not None else None},
                provider_message_id=provider_id,
                cost=float(cost) if cost is not None else None,
                last_error=None,
                **counted,
            )
            sent_count += len(moved)
        for code, ids in refused.items():
            meaning = CODES[code].meaning if code in CODES else "refused"
            reason = f"octopush [{code}]: {meaning} (batch {request_id})"
            moved = transition_many(
                session,
                ids,
                from_,
                MessageStatus.FAILED,
                provider_status=code or None,
                detail=reason,
                raw=raw,
                last_error=reason,
            )
            _count(MessageStatus.FAILED, len(moved))
    _count(MessageStatus.SENT, sent_count)
    log.info(
        "batch sent",
        extra={"batch": request_id, "provider": PROVIDER, "sent": sent_count, "rows": len(rows)},
    )
    return sent_count


def _settle_later(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], request_id: str, exc: ProviderError
) -> None:
    """The answer was lost twice: ``unknown``, still tagged, for the batch reaper or a person."""
    with session_scope(dispatcher.engine) as session:
        moved = transition_many(
            session,
            [row.id for row in rows],
            MessageStatus.SENDING,
            MessageStatus.UNKNOWN,
            provider_status=exc.code,
            detail=f"batch {request_id} outcome unknown: {exc}",
            last_error=str(exc),
        )
    _count(MessageStatus.UNKNOWN, len(moved))


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
    return Message(**values)


def _retry_later(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], exc: RetryableError
) -> list[str]:
    """Nothing was sent: ``scheduled`` after the backoff; rows out of attempts give up."""
    budget = dispatcher.settings.dispatch
    spent = [row for row in rows if row.attempts + 1 >= budget.max_attempts]
    again = [row.id for row in rows if row.attempts + 1 < budget.max_attempts]
    republish: list[str] = []
    for row in spent:
        message = _as_message(row)
        outcome = dispatcher._give_up(
            message, f"gave up after {message.attempts} attempts: {exc}", exc
        )
        if outcome.republish:
            republish.append(row.id)
    if again:
        delay = exc.retry_after
        if delay is None:
            attempt = max(row.attempts + 1 for row in rows)
            delay = backoff_delay(
                attempt, base=budget.backoff_base, cap=budget.backoff_max, rng=dispatcher.rng
            )
        with session_scope(dispatcher.engine) as session:
            moved = transition_many(
                session,
                again,
                MessageStatus.SENDING,
                MessageStatus.SCHEDULED,
                provider_status=exc.code,
                detail=f"retry in {delay:.2f}s: {exc}",
                last_error=str(exc),
                send_at=_now() + timedelta(seconds=delay),
                provider_message_id=None,
            )
        for _ in moved:
            metrics.count_retry(PROVIDER)
    return republish


def _give_up_each(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], exc: ProviderError
) -> list[str]:
    """The account was refused: each row fails over (or fails) as a lone send would."""
    republish: list[str] = []
    for row in rows:
        outcome = dispatcher._give_up(_as_message(row), str(exc), exc)
        if outcome.republish:
            republish.append(row.id)
    return republish


def _fail_all(
    dispatcher: Dispatcher,
    rows: Sequence[Row[Any]],
    from_: MessageStatus,
    reason: str,
    exc: ProviderError | None,
) -> None:
    with session_scope(dispatcher.engine) as session:
        moved = transition_many(
            session,
            [row.id for row in rows],
            from_,
            MessageStatus.FAILED,
            provider_status=exc.code if exc is not None else None,
            detail=reason,
            raw=dict(exc.raw) if exc is not None and isinstance(exc.raw, dict) else None,
            last_error=reason,
        )
    _count(MessageStatus.FAILED, len(moved))


# -- settling a group whose worker was lost ----------------------------------------------------


def resolve_batch(dispatcher: Dispatcher, message: Message) -> Resolution:
    """Settle the group ``message`` was sent in: the request again, under its request_id.

    Octopush answers 120 when the first request went through (every row ``sent``) and a ticket
    when it had not (sent now). Every unsettled row of the group goes in the one request, so no
    row can be marked sent by another's acceptance. A lost answer again holds them ``unknown``.
    """
    tag = message.provider_message_id or ""
    request_id = tag.removeprefix(BATCH_PREFIX)
    messages = messages_table
    with session_scope(dispatcher.engine) as session:
        transition_many(
            session,
            [
                id_
                for (id_,) in session.execute(
                    messages.select()
                    .with_only_columns(messages.c.id)
                    .where(
                        messages.c.provider_message_id == tag,
                        messages.c.status == MessageStatus.SENDING,
                    )
                )
            ],
            MessageStatus.SENDING,
            MessageStatus.UNKNOWN,
            detail=f"batch {request_id} unsettled: its worker was lost",
        )
        rows = list(
            session.execute(
                messages.select().where(
                    messages.c.provider_message_id == tag,
                    messages.c.status == MessageStatus.UNKNOWN,
                )
            )
        )
    if not rows:
        return Resolution.HOLD
    try:
        receipt = dispatcher.clients.octopush.send_sms(_request(dispatcher, request_id, rows))
    except (AmbiguousError, RetryableError):
        return Resolution.HOLD
    except PermanentError as exc:
        _fail_all(dispatcher, rows, MessageStatus.UNKNOWN, str(exc), exc)
        return Resolution.HOLD
    record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.UNKNOWN)
    return Resolution.SENT
