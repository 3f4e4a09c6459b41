"""A campaign's life: start, quiet hours, pause, resume, cancel, done; and what it reports.

States (``CampaignStatus``): ``scheduled`` (waiting for ``starts_at``), ``running``,
``paused``, ``done``, ``cancelled``, ``failed`` (its audience could not be read). Every move
is one conditional UPDATE of the campaign row, so two callers never both win, and the
campaign's messages move with it in the same transaction (``queries.py``):

- ``pause``: unsent messages are held (``scheduled``, nothing lost); fan-out stops.
- ``resume``: ``scheduled`` again from now (or the next allowed instant for marketing); the
  pass below restarts the fan-out and releases the held messages.
- ``cancel``: unsent messages move to ``cancelled``; those already with a provider finish.

``tick`` is the campaigns' pass on beat (every ``campaigns.tick_interval`` seconds). For each
live campaign it publishes again a plan or fan-out task that was lost (the broker was down,
the worker died), stops a running marketing campaign when the quiet hours begin (held until
the next allowed instant), starts a scheduled one whose time has come, releases held
messages of a running one, and marks done a campaign with nothing left to send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier.campaigns.audience import Rejection
from postier.campaigns.context import CampaignContext
from postier.campaigns.fanout import publish_queued
from postier.campaigns.queries import (
    FanOutCounts,
    campaigns_in,
    cancel_rows,
    chunks_to_publish,
    count_active,
    count_states,
    drop_pending_contacts,
    fan_out_counts,
    get_campaign,
    hold_rows,
    parts_and_cost,
    rejections_of,
    release_held,
    set_status,
    update_campaign,
)
from postier.campaigns.spec import CampaignSpec
from postier.ledger.db import session_scope
from postier.ledger.models import Campaign, CampaignStatus, campaign_rejections_table
from postier.rules.quiet_hours import QuietHours

log = logging.getLogger(__name__)

S = CampaignStatus
#: held messages released per transaction by the pass
RELEASE_SLICE = 5000
#: held messages one pass releases at most per campaign (the next pass goes on)
RELEASE_PER_TICK = 50_000


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What a pause, resume or cancel did."""

    changed: bool
    status: str | None
    messages: int = 0
    detail: str = ""


def postpone(engine: Engine, campaign_id: str, until: datetime, reason: str) -> bool:
    """Stop a live campaign until ``until``: back to ``scheduled``, unsent messages held."""
    now = _now()
    with session_scope(engine) as session:
        moved = set_status(
            session, campaign_id, {S.SCHEDULED, S.RUNNING}, S.SCHEDULED, now, starts_at=until
        )
        if moved:
            hold_rows(session, campaign_id, now, detail=reason)
    if moved:
        log.info("campaign postponed", extra={"campaign_id": campaign_id, "reason": reason})
    return moved


def pause(engine: Engine, campaign_id: str) -> ControlResult:
    """Pause a scheduled or running campaign; its unsent messages are held, none lost."""
    now = _now()
    with session_scope(engine) as session:
        changed = set_status(session, campaign_id, {S.SCHEDULED, S.RUNNING}, S.PAUSED, now)
        held = hold_rows(session, campaign_id, now, detail="campaign paused") if changed else 0
        campaign = get_campaign(session, campaign_id)
    return ControlResult(changed, str(campaign.status) if campaign else None, held)


def resume(engine: Engine, quiet_hours: QuietHours, campaign_id: str) -> ControlResult:
    """Resume a paused campaign from now (marketing: from the next allowed instant)."""
    now = _now()
    with session_scope(engine) as session:
        campaign = get_campaign(session, campaign_id)
        if campaign is None or campaign.status is not S.PAUSED:
            return ControlResult(False, str(campaign.status) if campaign else None)
        spec = CampaignSpec.model_validate(campaign.spec)
        start = max(campaign.starts_at or now, now)
        if spec.category == "marketing":
            start = quiet_hours.next_allowed(start)
        changed = set_status(session, campaign_id, {S.PAUSED}, S.SCHEDULED, now, starts_at=start)
    detail = f"starts {start.isoformat(timespec='seconds')}" if start > now else ""
    return ControlResult(changed, str(S.SCHEDULED) if changed else str(campaign.status), 0, detail)


def cancel(engine: Engine, campaign_id: str) -> ControlResult:
    """Cancel a campaign: unsent messages ``cancelled``, contacts not fanned out dropped."""
    now = _now()
    with session_scope(engine) as session:
        changed = set_status(
            session, campaign_id, {S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED}, S.CANCELLED, now
        )
        moved = 0
        if changed:
            moved = cancel_rows(session, campaign_id, now)
            drop_pending_contacts(session, campaign_id)
        campaign = get_campaign(session, campaign_id)
    return ControlResult(changed, str(campaign.status) if campaign else None, moved)


# -- the pass on beat ---------------------------------------------------------------------


@dataclass
class TickReport:
    """What one pass did, summed over campaigns."""

    plans: int = 0
    chunks: int = 0
    started: int = 0
    postponed: int = 0
    released: int = 0
    done: int = 0


def tick(ctx: CampaignContext) -> TickReport:
    """One pass over the live campaigns (see the module docstring).

    Start times and quiet hours are decided at ``ctx.clock()``; staleness and the ledger's
    timestamps use the wall clock.
    """
    report = TickReport()
    with session_scope(ctx.engine) as session:
        live = campaigns_in(session, {S.SCHEDULED, S.RUNNING})
    for campaign in live:
        try:
            _tick_one(ctx, campaign, report)
        except Exception:  # one campaign's trouble must not stop the pass over the others
            log.exception("campaign pass failed", extra={"campaign_id": campaign.id})
    return report


def _tick_one(ctx: CampaignContext, campaign: Campaign, report: TickReport) -> None:
    spec = CampaignSpec.model_validate(campaign.spec)
    real = _now()
    _republish(ctx, campaign, real, report)
    now = ctx.clock()
    quiet = ctx.quiet_hours
    margin = ctx.quiet_margin
    reason = quiet.reason_within(now, margin) if spec.category == "marketing" else None
    resume_at = quiet.next_allowed(now + margin) if reason else now
    status = campaign.status
    if status is S.RUNNING and reason is not None:
        if postpone(ctx.engine, campaign.id, resume_at, f"quiet hours: {reason}"):
            report.postponed += 1
        return
    if status is S.SCHEDULED:
        with session_scope(ctx.engine) as session:
            # a retry the dispatcher scheduled after the campaign stopped waits with it
            hold_rows(session, campaign.id, real, detail="campaign waiting for its start")
        if campaign.starts_at is not None and campaign.starts_at > now:
            return
        with session_scope(ctx.engine) as session:
            if reason is not None:
                update_campaign(session, campaign.id, real, starts_at=resume_at)
                return
            if not set_status(session, campaign.id, {S.SCHEDULED}, S.RUNNING, real):
                return
        report.started += 1
    report.released += _release(ctx, campaign.id, spec, real)
    if campaign.chunks_total is not None:
        with session_scope(ctx.engine) as session:
            counts = fan_out_counts(session, campaign.id)
            finished = counts.chunks_done >= campaign.chunks_total and not count_active(
                session, campaign.id
            )
            if finished and set_status(session, campaign.id, {S.RUNNING}, S.DONE, real):
                report.done += 1


def _republish(ctx: CampaignContext, campaign: Campaign, now: datetime, report: TickReport) -> None:
    """Publish again a plan or fan-out task that never ran (or whose worker was lost)."""
    stale = now - timedelta(seconds=ctx.settings.campaigns.republish_after)
    if campaign.chunks_total is None:
        if campaign.plan_published_at is not None and campaign.plan_published_at >= stale:
            return
        with session_scope(ctx.engine) as session:
            update_campaign(session, campaign.id, now, plan_published_at=now)
        if ctx.tasks.plan(campaign.id):
            report.plans += 1
        return
    with session_scope(ctx.engine) as session:
        bounds = chunks_to_publish(session, campaign.id, stale, now)
    if bounds:
        report.chunks += ctx.tasks.fan_out(campaign.id, bounds)


def _release(ctx: CampaignContext, campaign_id: str, spec: CampaignSpec, now: datetime) -> int:
    released = 0
    while released < RELEASE_PER_TICK:
        with session_scope(ctx.engine) as session:
            ids = release_held(
                session,
                campaign_id,
                now,
                limit=RELEASE_SLICE,
                published_at=now if spec.batched else None,
            )
        if not ids:
            break
        publish_queued(ctx, campaign_id, spec, ids)
        released += len(ids)
        if len(ids) < RELEASE_SLICE:
            break
    return released


# -- reports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """A campaign as ``postier campaign status`` shows it."""

    campaign: Campaign
    spec: CampaignSpec
    fan_out: FanOutCounts
    #: contacts left out, the rows refused while reading the audience included
    invalid: int
    #: messages in each state (``count_by_status(campaign_id)``)
    states: dict[str, int]
    parts: int
    cost: Decimal | None
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def contacts_done(self) -> int:
        """Contacts read into messages or left out so far."""
        read_refused = self.invalid - self.fan_out.invalid
        return self.fan_out.contacts_done + read_refused

    @property
    def messages(self) -> int:
        return self.fan_out.created

    @property
    def settled(self) -> int:
        """Messages past sending (sent, delivered, undelivered, failed, cancelled, unknown)."""
        active = sum(self.states.get(state, 0) for state in ("scheduled", "queued", "sending"))
        return sum(self.states.values()) - active


def report(engine: Engine, campaign_id: str, *, rejections: int = 20) -> CampaignReport | None:
    """The campaign, its fan-out and its messages' states."""
    with session_scope(engine) as session:
        campaign = get_campaign(session, campaign_id)
        if campaign is None:
            return None
        invalid = session.execute(
            select(func.count()).where(campaign_rejections_table.c.campaign_id == campaign_id)
        ).scalar_one()
        parts, cost = parts_and_cost(session, campaign_id)
        return CampaignReport(
            campaign=campaign,
            spec=CampaignSpec.model_validate(campaign.spec),
            fan_out=fan_out_counts(session, campaign_id),
            invalid=int(invalid),
            states=count_states(session, campaign_id),
            parts=parts,
            cost=cost,
            rejections=rejections_of(session, campaign_id, limit=rejections) if rejections else [],
        )
