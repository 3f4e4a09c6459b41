"""Octopush campaigns with one text for all: up to 500 recipients per request.

Octopush takes many recipients in one request (PROVIDERS.md: ``sms_recipients``, a comma
list; v1 ``recipients`` ≤ 500), so a campaign whose messages all have the same text goes out
in batches instead of one request per message. A batch task (``send_campaign_batch``, only the
campaign id crosses the broker) claims up to ``batch_size`` queued messages of the campaign with
one same text in one UPDATE (``queued → sending``, tagged ``batch:<request_id>``), sends them
in one request whose ``request_id`` is the batch's, and records each recipient's outcome on its
own message: accepted ones ``sent`` with ``<ticket>:<number>`` as provider id (the id Octopush
delivery receipts carry, so the webhook finds each message), refused ones ``failed`` with
their code.

When the request fails:

- the answer was lost (``AmbiguousError``): the same request is sent again at once with the
  same ``request_id``; Octopush answers 120 if the first one went through (PROVIDERS.md), a
  ticket if it did not. If that fails too the messages are ``unknown`` and the pass below
  settles them later, the same way;
- nothing was sent (``RetryableError``): the campaign is postponed by the backoff, its
  messages held, and goes on in batches; a message out of attempts fails;
- the account is refused (credentials, credit): the messages go the normal way, one task
  each, whose dispatcher fails them over to the fallback provider or fails them;
- the content is refused (code 121, 102…): every message of the batch fails with the code.

``reap_campaign_batches`` (beat) settles batches whose worker was lost (``sending`` for
``batch_stuck_after``, kept under ``dispatch.stuck_after`` so the dispatcher's reaper, which
would resend each message under its own id, never sees them) and ``unknown`` ones, by sending
the batch again under its ``request_id`` while Octopush still remembers it (24 hours).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from postier.campaigns.context import CampaignContext
from postier.campaigns.lifecycle import postpone
from postier.campaigns.queries import (
    BatchRow,
    claim_batch,
    get_campaign,
    unsettled_batches,
)
from postier.campaigns.spec import CampaignSpec
from postier.dispatch.lanes import Lane, reserve_for
from postier.dispatch.routing import account_id
from postier.dispatch.sending import ACCOUNT_ERRORS, backoff_delay
from postier.ledger.db import session_scope
from postier.ledger.models import CampaignStatus, MessageStatus
from postier.ledger.states import transition, transition_many
from postier.providers.base import OutgoingSms
from postier.providers.errors import (
    AmbiguousError,
    PermanentError,
    ProviderError,
    RetryableError,
)
from postier.providers.octopush import CODES, is_already_accepted
from postier.providers.results import SendReceipt
from postier.ratelimit import limiter_key

log = logging.getLogger(__name__)

PROVIDER = "octopush"
#: Octopush remembers a request_id this long (PROVIDERS.md, v1 ``request_id``)
REQUEST_ID_MEMORY = timedelta(hours=24)
#: resend a batch under its request_id only this long: after it, the answer proves nothing
SETTLE_WITHIN = REQUEST_ID_MEMORY - timedelta(hours=1)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one batch did to its messages."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    requeued: int = 0
    skipped: str | None = None


def send_campaign_batch(ctx: CampaignContext, campaign_id: str) -> BatchOutcome:
    """Claim up to ``batch_size`` queued messages of the campaign and send them in one request."""
    with session_scope(ctx.engine) as session:
        campaign = get_campaign(session, campaign_id)
    if campaign is None or campaign.status is not CampaignStatus.RUNNING:
        return BatchOutcome(skipped="campaign not running")
    spec = CampaignSpec.model_validate(campaign.spec)
    quiet = ctx.quiet_hours.reason_within(ctx.clock(), ctx.quiet_margin)
    if spec.category == "marketing" and quiet is not None:
        # the campaigns' pass holds the queued messages until the quiet hours end
        return BatchOutcome(skipped="quiet hours")
    wait = _take_token(ctx)
    if wait > 0:
        ctx.tasks.send_batches(campaign_id, 1)
        return BatchOutcome(skipped=f"rate limited ({wait:.1f}s)")
    batch_id = uuid.uuid4().hex
    with session_scope(ctx.engine) as session:
        rows = claim_batch(
            session, campaign_id, batch_id, _now(), limit=ctx.settings.campaigns.batch_size
        )
    if not rows:
        return BatchOutcome(skipped="nothing queued")
    return _send(ctx, campaign_id, batch_id, rows, spec.category)


def _take_token(ctx: CampaignContext) -> float:
    limit = ctx.settings.rate_limits.get(PROVIDER)
    if ctx.limiter is None or limit is None:
        return 0.0
    key = limiter_key(PROVIDER, account_id(ctx.settings, PROVIDER))
    # a campaign is bulk: it leaves the transactional lane's reserve of the burst alone
    reserve = reserve_for(Lane.BULK, limit.burst, ctx.settings.dispatch.transactional_reserve)
    return float(
        ctx.limiter.wait(
            key,
            limit.rate,
            limit.burst,
            max_block=ctx.settings.campaigns.batch_max_block,
            reserve=reserve,
        )
    )


def _request(batch_id: str, rows: Sequence[BatchRow], category: str) -> OutgoingSms:
    first = rows[0]
    return OutgoingSms(
        recipients=tuple(row.recipient for row in rows),
        text=first.body,
        sender=first.sender,
        category="marketing" if category == "marketing" else "notification",
        request_id=batch_id,
    )


def _send(
    ctx: CampaignContext,
    campaign_id: str,
    batch_id: str,
    rows: Sequence[BatchRow],
    category: str,
) -> BatchOutcome:
    sms = _request(batch_id, rows, category)
    octopush = ctx.clients.octopush
    try:
        receipt = octopush.send_sms(sms)
    except AmbiguousError:
        # same request_id: 120 if the first went through, a ticket if it did not. Whatever else
        # the resend meets, the first may have gone out: the batch stays unknown for the reaper
        # to settle under this request_id, never retried under a new one (that sends twice)
        try:
            receipt = octopush.send_sms(sms)
        except ProviderError as exc:
            return _settle_later(ctx, rows, MessageStatus.SENDING, exc)
    except RetryableError as exc:
        return _retry_later(ctx, campaign_id, rows, exc)
    except ACCOUNT_ERRORS as exc:
        return _one_by_one(ctx, rows, exc)
    except PermanentError as exc:
        return _fail_all(ctx, rows, MessageStatus.SENDING, exc)
    return record_receipt(ctx, batch_id, rows, receipt, MessageStatus.SENDING)


def record_receipt(
    ctx: CampaignContext,
    batch_id: str,
    rows: Sequence[BatchRow],
    receipt: SendReceipt,
    from_: MessageStatus,
) -> BatchOutcome:
    """Each recipient's outcome on its own message (``from_ → sent | failed``)."""
    raw_common = {"batch": batch_id, "ticket": receipt.message_id, "recipients": len(rows)}
    if is_already_accepted(receipt):
        with session_scope(ctx.engine) as session:
            earlier = transition_many(
                session,
                [row.id for row in rows],
                from_,
                MessageStatus.SENT,
                provider_status="120",
                detail="batch request_id already accepted (Octopush 120): sent earlier",
                raw=raw_common,
            )
        return BatchOutcome(claimed=len(rows), sent=len(earlier))
    results = {result.recipient: result for result in receipt.recipients}
    sent = failed = unknown = 0
    with session_scope(ctx.engine) as session:
        for row in rows:
            result = results.get(row.recipient)
            if result is None:
                # not listed in the answer: left (or put) unknown for a person
                unknown += 1
                if from_ is not MessageStatus.UNKNOWN:
                    transition(
                        session,
                        row.id,
                        from_,
                        MessageStatus.UNKNOWN,
                        detail=f"batch {batch_id}: the answer does not list this recipient",
                        raw=raw_common,
                    )
            elif result.accepted:
                counted: dict[str, Any] = {"parts": result.parts} if result.parts else {}
                moved = transition(
                    session,
                    row.id,
                    from_,
                    MessageStatus.SENT,
                    provider_status=receipt.provider_status,
                    detail=f"batch {batch_id}",
                    raw={**raw_common, "cost": str(result.cost) if result.cost else None},
                    provider_message_id=f"{receipt.message_id}:{row.recipient}"
                    if receipt.message_id
                    else None,
                    cost=result.cost,
                    last_error=None,
                    **counted,
                )
                sent += int(moved)
            else:
                code = result.error_code or ""
                meaning = CODES[code].meaning if code in CODES else "refused"
                reason = f"octopush [{code}]: {meaning} (batch {batch_id})"
                moved = transition(
                    session,
                    row.id,
                    from_,
                    MessageStatus.FAILED,
                    provider_status=code or None,
                    detail=reason,
                    raw=raw_common,
                    last_error=reason,
                )
                failed += int(moved)
    log.info(
        "campaign batch sent",
        extra={"batch": batch_id, "sent": sent, "failed": failed, "ticket": receipt.message_id},
    )
    return BatchOutcome(claimed=len(rows), sent=sent, failed=failed, unknown=unknown)


def _settle_later(
    ctx: CampaignContext, rows: Sequence[BatchRow], from_: MessageStatus, exc: ProviderError
) -> BatchOutcome:
    """The outcome is not known: ``unknown``, settled by ``reap_campaign_batches``."""
    if from_ is MessageStatus.UNKNOWN:
        return BatchOutcome(claimed=len(rows), unknown=len(rows))
    with session_scope(ctx.engine) as session:
        moved = transition_many(
            session,
            [row.id for row in rows],
            from_,
            MessageStatus.UNKNOWN,
            provider_status=exc.code,
            detail=f"batch outcome unknown: {exc}",
            last_error=str(exc),
        )
    return BatchOutcome(claimed=len(rows), unknown=len(moved))


def _retry_later(
    ctx: CampaignContext, campaign_id: str, rows: Sequence[BatchRow], exc: RetryableError
) -> BatchOutcome:
    """Nothing was sent: out-of-attempts messages fail; the campaign waits the backoff."""
    max_attempts = ctx.settings.dispatch.max_attempts
    spent = [row.id for row in rows if row.attempts >= max_attempts]
    again = [row.id for row in rows if row.attempts < max_attempts]
    attempt = max((row.attempts for row in rows), default=1)
    delay = exc.retry_after
    if delay is None:
        dispatch = ctx.settings.dispatch
        delay = backoff_delay(
            attempt, base=dispatch.backoff_base, cap=dispatch.backoff_max, rng=random.random
        )
    with session_scope(ctx.engine) as session:
        failed = transition_many(
            session,
            spent,
            MessageStatus.SENDING,
            MessageStatus.FAILED,
            provider_status=exc.code,
            detail=f"gave up after {max_attempts} attempts: {exc}",
            last_error=str(exc),
        )
        requeued = transition_many(
            session,
            again,
            MessageStatus.SENDING,
            MessageStatus.QUEUED,
            provider_status=exc.code,
            detail=f"batch retry in {delay:.2f}s: {exc}",
            last_error=str(exc),
            provider_message_id=None,
        )
    postpone(
        ctx.engine,
        campaign_id,
        ctx.clock() + timedelta(seconds=delay),
        f"Octopush batch failed, retry in {delay:.2f}s",
    )
    return BatchOutcome(claimed=len(rows), failed=len(failed), requeued=len(requeued))


def _one_by_one(ctx: CampaignContext, rows: Sequence[BatchRow], exc: ProviderError) -> BatchOutcome:
    """The account was refused: each message goes the dispatcher's way (failover or fail)."""
    with session_scope(ctx.engine) as session:
        moved = transition_many(
            session,
            [row.id for row in rows],
            MessageStatus.SENDING,
            MessageStatus.QUEUED,
            provider_status=exc.code,
            detail=f"batch refused ({exc}); sending one by one",
            last_error=str(exc),
            provider_message_id=None,
            published_at=None,
        )
    ctx.publisher.publish(moved)
    return BatchOutcome(claimed=len(rows), requeued=len(moved))


def _fail_all(
    ctx: CampaignContext, rows: Sequence[BatchRow], from_: MessageStatus, exc: ProviderError
) -> BatchOutcome:
    with session_scope(ctx.engine) as session:
        failed = transition_many(
            session,
            [row.id for row in rows],
            from_,
            MessageStatus.FAILED,
            provider_status=exc.code,
            detail=str(exc),
            raw=dict(exc.raw) if isinstance(exc.raw, dict) else None,
            last_error=str(exc),
        )
    return BatchOutcome(claimed=len(rows), failed=len(failed))


# -- settling lost and unknown batches ----------------------------------------------------


def stuck_after(ctx: CampaignContext) -> float:
    """Seconds in ``sending`` after which a batch is settled: under the reaper's threshold."""
    return min(ctx.settings.campaigns.batch_stuck_after, ctx.settings.dispatch.stuck_after / 2)


def reap_campaign_batches(ctx: CampaignContext) -> int:
    """Settle batches left ``sending`` by a lost worker, or ``unknown``; messages settled."""
    now = _now()
    with session_scope(ctx.engine) as session:
        batches = unsettled_batches(
            session, now - timedelta(seconds=stuck_after(ctx)), now - SETTLE_WITHIN
        )
    settled = 0
    for batch_id, rows in batches.items():
        stuck = [row.id for row in rows]
        with session_scope(ctx.engine) as session:
            transition_many(
                session,
                stuck,
                MessageStatus.SENDING,
                MessageStatus.UNKNOWN,
                detail=f"batch {batch_id} stuck in sending: its worker was lost",
            )
        outcome = _resend(ctx, batch_id, rows)
        settled += outcome.sent + outcome.failed
    return settled


def _resend(ctx: CampaignContext, batch_id: str, rows: Sequence[BatchRow]) -> BatchOutcome:
    """The batch again under its request_id: 120 proves it went, a ticket that it had not."""
    sms = _request(batch_id, rows, rows[0].category)
    try:
        receipt = ctx.clients.octopush.send_sms(sms)
    except (AmbiguousError, RetryableError):
        return BatchOutcome(unknown=len(rows))
    except PermanentError as exc:
        return _fail_all(ctx, rows, MessageStatus.UNKNOWN, exc)
    return record_receipt(ctx, batch_id, rows, receipt, MessageStatus.UNKNOWN)
