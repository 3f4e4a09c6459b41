"""Octopush multi-recipient batches: the one path campaigns and bulk chunks both take.

Octopush takes many recipients in one request (``sms_recipients``, a comma list; v1
``recipients``, up to 500: docs/PROVIDERS.md), so messages with one same text, sender and
options go out together. Whoever groups them (a chunk of ``send_messages``:
``batching.plan_groups``; a campaign batch task: ``campaigns.batch``) hands the group here:

- one conditional UPDATE claims it (``queued → sending``, ``attempts + 1``), tagging its rows
  ``provider_message_id = "batch:<request_id>"`` while the request is out;
- the request carries that ``request_id``: Octopush deduplicates on it (code 120), which is
  how a lost answer is settled without sending twice;
- each recipient's outcome lands on its own row (``record_receipt``): accepted ones ``sent``
  with ``<ticket>:<number>`` (the id Octopush delivery receipts carry), refused ones
  ``failed`` with their code. **One receipt policy**: an answer that lists recipients but not
  this one leaves it ``unknown``, settled by the reaper under the request_id; an answer that
  lists none (v1 answers per request) accepts the whole group.

When the request fails:

- the answer was lost (``AmbiguousError``): the same request again at once, same
  ``request_id`` (120: the first went through; a ticket: it had not). If that fails too the
  group stays ``unknown`` and tagged, for ``reap_batches``; never a new request_id;
- nothing was sent (``RetryableError``): the group goes back to ``scheduled`` after the
  backoff; rows out of attempts fail over to the routing's fallback, as a lone send does;
- the account is refused (credentials, credit): each row fails over (or fails);
- the content is refused (121, 102…): every row fails with the code.

``reap_batches`` (beat) is the one reaper of batches: groups left ``sending`` by a lost worker
(after ``campaigns.batch_stuck_after``, well under the single-send reaper's threshold, which
leaves batch rows alone) and ``unknown`` groups, sent again under their request_id while
Octopush still remembers it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, literal, select

from postier import metrics
from postier.dispatch.health import note_failure, note_success
from postier.dispatch.lanes import Lane
from postier.dispatch.sending import ACCOUNT_ERRORS, Dispatcher, backoff_delay
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus, messages_table
from postier.ledger.queries import detached_message, unsettled_batch_tags
from postier.ledger.states import transition_many
from postier.providers.base import OutgoingSms
from postier.providers.errors import (
    AmbiguousError,
    PermanentError,
    ProviderError,
    RetryableError,
)
from postier.providers.octopush import CODES, is_already_accepted
from postier.providers.results import Provider, SendReceipt
from postier.rules.errors import RuleViolation

log = logging.getLogger(__name__)

#: the provider this batch path speaks to: its ``request_id`` deduplication and its
#: ``<ticket>:<number>`` ids are Octopush's (its profile is the one declaring batch sending)
PROVIDER = Provider.OCTOPUSH
#: ``provider_message_id`` of a group's rows while its request is out
BATCH_PREFIX = "batch:"
#: Octopush remembers a request_id this long (v1 ``request_id``)
REQUEST_ID_MEMORY = timedelta(hours=24)
#: resend a group under its request_id only this long: after it, the answer proves nothing
SETTLE_WITHIN = REQUEST_ID_MEMORY - timedelta(hours=1)


@dataclass
class BatchResult:
    """What one group's request did to its rows."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    #: back to ``scheduled`` (retry, rate limit)
    scheduled: int = 0
    #: ids queued again for a fallback provider, to hand to the broker now
    republish: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _count(state: MessageStatus, n: int) -> None:
    for _ in range(n):
        metrics.count_message(PROVIDER, state)


def send_group(dispatcher: Dispatcher, group: Sequence[Row[Any]], lane: Lane) -> BatchResult:
    """A token, the claim of ``group``'s queued rows, and their one request."""
    ids = [row.id for row in group]
    wait = dispatcher.take_token(PROVIDER, lane)
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
        return BatchResult(scheduled=len(deferred))
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
    # read back as claimed (``sending``, the attempt counted): what the outcomes start from
    rows = claimed_rows(dispatcher, request_id) if claimed else []
    for row in rows:
        metrics.observe_lane_wait(lane, row.published_at, now)
    return send_claimed(dispatcher, request_id, rows)


def claimed_rows(dispatcher: Dispatcher, request_id: str) -> list[Row[Any]]:
    """The rows a claim tagged with ``request_id`` and left ``sending`` (every column)."""
    messages = messages_table
    with session_scope(dispatcher.engine) as session:
        return list(
            session.execute(
                select(messages).where(
                    messages.c.provider_message_id == BATCH_PREFIX + request_id,
                    messages.c.status == MessageStatus.SENDING,
                )
            )
        )


def send_claimed(dispatcher: Dispatcher, request_id: str, rows: Sequence[Row[Any]]) -> BatchResult:
    """The request of a group already claimed (``sending``, tagged ``batch:<request_id>``,
    ``attempts`` counted), and each row's outcome."""
    if not rows:
        return BatchResult()
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
            return _settle_later(dispatcher, rows, request_id, exc)
    except RetryableError as exc:
        note_failure(dispatcher, PROVIDER, exc)  # health
        return _retry_later(dispatcher, rows, exc)
    except ACCOUNT_ERRORS as exc:
        note_failure(dispatcher, PROVIDER, exc)  # health
        return _give_up_each(dispatcher, rows, exc)
    except PermanentError as exc:
        return _fail_all(dispatcher, rows, MessageStatus.SENDING, str(exc), exc)
    except (RuleViolation, KeyError, TypeError, ValueError) as exc:
        reason = f"invalid at send time: {exc}"
        return _fail_all(dispatcher, rows, MessageStatus.SENDING, reason, None)
    note_success(dispatcher, PROVIDER)  # health
    return record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.SENDING)


def _request(dispatcher: Dispatcher, request_id: str, rows: Sequence[Row[Any]]) -> OutgoingSms:
    first = rows[0]
    payload = first.payload or {}
    return OutgoingSms(
        recipients=tuple(row.recipient for row in rows),
        # the route's text as a lone send would have it (the STOP mention of a failed-over
        # marketing text, the text policy): ``Dispatcher.prepared_text``
        text=dispatcher.prepared_text(PROVIDER, first.body, first.category).text,
        sender=payload.get("sender"),
        category="marketing" if first.category == "marketing" else "notification",
        request_id=request_id,
        campaign=payload.get("campaign"),
    )


def record_receipt(
    dispatcher: Dispatcher,
    request_id: str,
    rows: Sequence[Row[Any]],
    receipt: SendReceipt,
    from_: MessageStatus,
) -> BatchResult:
    """Each recipient's outcome on its own row (``from_ → sent | failed | unknown``)."""
    result = BatchResult(claimed=len(rows))
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
        result.sent = len(sent)
        return result
    listed = {item.recipient: item for item in receipt.recipients}
    accepted: dict[tuple[Any, Any], list[str]] = {}
    refused: dict[str, list[str]] = {}
    missing: list[str] = []
    for row in rows:
        item = listed.get(row.recipient)
        if item is None and listed:
            missing.append(row.id)
        elif item is None or item.accepted:
            # an answer per request (v1) lists nobody: the request, so each row, was accepted
            cost = item.cost if item is not None and item.cost is not None else receipt.cost
            parts = item.parts if item is not None and item.parts is not None else receipt.parts
            if item is None and len(rows) > 1:
                cost = None  # the request's cost, not this recipient's
            accepted.setdefault((cost, parts), []).append(row.id)
        else:
            refused.setdefault(item.error_code or "", []).append(row.id)
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
                provider_status=receipt.provider_status,
                detail=f"batch {request_id}",
                raw={**raw, "cost": str(cost) if cost is not None else None},
                provider_message_id=provider_id,
                cost=float(cost) if cost is not None else None,
                last_error=None,
                **counted,
            )
            result.sent += len(moved)
        for code, ids in refused.items():
            meaning = CODES[code].meaning if code in CODES else "refused"
            reason = f"{PROVIDER} [{code}]: {meaning} (batch {request_id})"
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
            result.failed += len(moved)
        if missing and from_ is not MessageStatus.UNKNOWN:
            moved = transition_many(
                session,
                missing,
                from_,
                MessageStatus.UNKNOWN,
                detail=f"batch {request_id}: the answer does not list this recipient",
                raw=raw,
            )
            result.unknown += len(moved)
        elif missing:
            result.unknown += len(missing)
    _count(MessageStatus.SENT, result.sent)
    _count(MessageStatus.FAILED, result.failed)
    _count(MessageStatus.UNKNOWN, result.unknown if from_ is not MessageStatus.UNKNOWN else 0)
    log.info(
        "batch sent",
        extra={
            "batch": request_id,
            "provider": PROVIDER,
            "sent": result.sent,
            "failed": result.failed,
            "unknown": result.unknown,
            "rows": len(rows),
        },
    )
    return result


def _settle_later(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], request_id: str, exc: ProviderError
) -> BatchResult:
    """The answer was lost twice: ``unknown``, still tagged, for ``reap_batches``."""
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
    return BatchResult(claimed=len(rows), unknown=len(moved))


def _as_message(row: Row[Any]) -> Message:
    """The ``Message`` of a claimed row (``sending``, its attempt counted), for the
    dispatcher's one-message steps; detached, never added to a session."""
    return detached_message(dict(row._mapping))


def _retry_later(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], exc: RetryableError
) -> BatchResult:
    """Nothing was sent: ``scheduled`` after the backoff; rows out of attempts give up."""
    result = BatchResult(claimed=len(rows))
    budget = dispatcher.settings.dispatch
    for row in rows:
        if row.attempts >= budget.max_attempts:
            message = _as_message(row)
            outcome = dispatcher.give_up(
                message, f"gave up after {message.attempts} attempts: {exc}", exc
            )
            if outcome.republish:
                result.republish.append(row.id)
            result.failed += int(outcome.status is MessageStatus.FAILED)
    again = [row.id for row in rows if row.attempts < budget.max_attempts]
    if again:
        delay = exc.retry_after
        if delay is None:
            attempt = max(row.attempts for row in rows)
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
        result.scheduled = len(moved)
    return result


def _give_up_each(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]], exc: ProviderError
) -> BatchResult:
    """The account was refused: each row fails over (or fails) as a lone send would."""
    result = BatchResult(claimed=len(rows))
    for row in rows:
        outcome = dispatcher.give_up(_as_message(row), str(exc), exc)
        if outcome.republish:
            result.republish.append(row.id)
        result.failed += int(outcome.status is MessageStatus.FAILED)
    return result


def _fail_all(
    dispatcher: Dispatcher,
    rows: Sequence[Row[Any]],
    from_: MessageStatus,
    reason: str,
    exc: ProviderError | None,
) -> BatchResult:
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
    return BatchResult(claimed=len(rows), failed=len(moved))


# -- the one reaper of batches -------------------------------------------------------------


def stuck_after(dispatcher: Dispatcher) -> float:
    """Seconds a group may stay ``sending`` before it is settled: under the single-send
    reaper's threshold, so a batch row is never resent alone under its own id."""
    settings = dispatcher.settings
    return min(settings.campaigns.batch_stuck_after, settings.dispatch.stuck_after / 2)


def unsettled_batches(dispatcher: Dispatcher, now: datetime | None = None) -> list[str]:
    """Request ids of groups whose outcome is not known: rows ``sending`` for longer than
    ``stuck_after`` (their worker was lost), or ``unknown``; only groups Octopush still
    remembers (``SETTLE_WITHIN``)."""
    at = now or _now()
    stuck_before = at - timedelta(seconds=stuck_after(dispatcher))
    with session_scope(dispatcher.engine) as session:
        tags = unsettled_batch_tags(session, stuck_before, at - SETTLE_WITHIN)
    return [tag.removeprefix(BATCH_PREFIX) for tag in tags]


def settle_batch(dispatcher: Dispatcher, request_id: str) -> BatchResult:
    """Settle the group sent under ``request_id``: the request again, under that request_id.

    Octopush answers 120 when the first request went through (every row ``sent``) and a
    ticket when it had not (sent now). Every unsettled row of the group goes in the one
    request, so no row can be marked sent by another's acceptance. A lost answer again leaves
    them ``unknown`` for the next pass.
    """
    tag = BATCH_PREFIX + request_id
    messages = messages_table
    with session_scope(dispatcher.engine) as session:
        stuck = session.execute(
            select(messages.c.id).where(
                messages.c.provider_message_id == tag,
                messages.c.status == MessageStatus.SENDING,
            )
        ).scalars()
        transition_many(
            session,
            list(stuck),
            MessageStatus.SENDING,
            MessageStatus.UNKNOWN,
            detail=f"batch {request_id} unsettled: its worker was lost",
        )
        rows = list(
            session.execute(
                select(messages).where(
                    messages.c.provider_message_id == tag,
                    messages.c.status == MessageStatus.UNKNOWN,
                )
            )
        )
    if not rows:
        return BatchResult()
    try:
        receipt = dispatcher.clients.octopush.send_sms(_request(dispatcher, request_id, rows))
    except (AmbiguousError, RetryableError):
        return BatchResult(claimed=len(rows), unknown=len(rows))
    except PermanentError as exc:
        return _fail_all(dispatcher, rows, MessageStatus.UNKNOWN, str(exc), exc)
    return record_receipt(dispatcher, request_id, rows, receipt, MessageStatus.UNKNOWN)


def reap_batches(dispatcher: Dispatcher, limit: int = 100) -> int:
    """Beat's pass: settle up to ``limit`` unsettled groups; how many messages were settled."""
    settled = 0
    for request_id in unsettled_batches(dispatcher)[:limit]:
        result = settle_batch(dispatcher, request_id)
        settled += result.sent + result.failed
    return settled
