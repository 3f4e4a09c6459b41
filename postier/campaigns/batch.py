"""Octopush campaigns with one text for all: up to 500 recipients per request.

A batch task (``send_campaign_batch``, only the campaign id crosses the broker) checks that
the campaign may send now (running; marketing outside the quiet hours), takes a rate-limit
token, and claims up to ``campaigns.batch_size`` queued messages of the campaign with one same
text in one UPDATE (``queued → sending``, tagged ``batch:<request_id>``). From there the batch
is the dispatcher's: the request, each recipient's outcome, retries, failover, lost answers
and the reaper are ``postier.dispatch.batches``, the one Octopush batch path bulk chunks take
too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from postier.campaigns.context import CampaignContext
from postier.campaigns.queries import claim_batch, get_campaign
from postier.campaigns.spec import CampaignSpec
from postier.dispatch import batches
from postier.dispatch.lanes import Lane, reserve_for
from postier.dispatch.routing import account_id
from postier.ledger.db import session_scope
from postier.ledger.models import CampaignStatus
from postier.ratelimit import limiter_key

log = logging.getLogger(__name__)

PROVIDER = batches.PROVIDER


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
        claimed = claim_batch(
            session, campaign_id, batch_id, _now(), limit=ctx.settings.campaigns.batch_size
        )
    if not claimed:
        return BatchOutcome(skipped="nothing queued")
    dispatcher = ctx.sender
    result = batches.send_claimed(dispatcher, batch_id, batches.claimed_rows(dispatcher, batch_id))
    if result.republish:
        ctx.publisher.publish(result.republish)
    return BatchOutcome(
        claimed=result.claimed,
        sent=result.sent,
        failed=result.failed,
        unknown=result.unknown,
        requeued=result.scheduled + len(result.republish),
    )


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
