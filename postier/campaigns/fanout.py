"""The worker side of a campaign: read its audience into chunks, then each chunk into messages.

``plan_campaign`` (one task per campaign) reads the audience as stored — parses the CSV,
decodes the list, or fetches the Afilnet group — brings the opt-out list up to date
(``optout.py``), and stores the contacts in chunks of ``chunk_size``, each one task of
``fan_out_chunk`` whose arguments are the campaign id and the chunk's bounds. Reading is
cheap (no number is parsed), so a 100,000-contact audience is planned in well under a second
and its chunks run on every worker at once.

``fan_out_chunk`` builds each contact's row with the producer's validation (``rows.py``),
reports refused contacts by line, drops repeated numbers and opted-out ones (counted), and
stores the rest in one transaction that also marks the chunk done: a chunk delivered twice
stores once, and a chunk cut short by a lost worker stores nothing and is published again by
the campaign's pass on beat. The rows go ``queued`` and are published at once when the
campaign is running and may send now; otherwise they are held (``queries.HELD_UNTIL``) until
the campaign's pass releases them. Octopush campaigns with one text for all are published as
batch tasks (``batch.py``) instead of one send per message.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from postier.campaigns.audience import (
    Audience,
    Rejection,
    contacts_from_json,
    contacts_to_json,
    decode_list,
    group_audience,
    parse_csv,
    parse_list,
    slices,
)
from postier.campaigns.context import CampaignContext
from postier.campaigns.optout import opted_out, sync_opt_outs
from postier.campaigns.queries import (
    HELD_UNTIL,
    add_rejections,
    audience_of,
    finish_chunk,
    get_campaign,
    lock_for_chunk,
    pending_chunk,
    set_status,
    store_plan,
    unpublish_chunk,
    update_campaign,
)
from postier.campaigns.rows import build_row
from postier.campaigns.spec import CampaignSpec
from postier.dispatch.rows import Row
from postier.ledger.bulk import collector_paused
from postier.ledger.db import session_scope
from postier.ledger.models import CampaignStatus, Lane, MessageStatus
from postier.ledger.queries import store_messages
from postier.providers.afilnet.groups import AfilnetGroups
from postier.providers.errors import PermanentError, ProviderError
from postier.rules.errors import RuleViolation

log = logging.getLogger(__name__)

#: campaigns whose audience may be read and fanned out
LIVE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING})
#: a campaign paused before its plan ran is planned all the same (nothing is sent)
PLANNABLE = LIVE | {CampaignStatus.PAUSED}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """What a plan task did: the chunks it made, or why it made none."""

    chunks: int = 0
    contacts: int = 0
    rejected: int = 0
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What a fan-out task did with its chunk."""

    created: int = 0
    invalid: int = 0
    duplicates: int = 0
    opted_out: int = 0
    published: int = 0
    skipped: str | None = None


def read_audience(ctx: CampaignContext, kind: str, content: str, spec: CampaignSpec) -> Audience:
    """The contacts of a stored audience; raises ``RuleViolation`` or ``ProviderError``."""
    if kind == "csv":
        return parse_csv(content, spec.columns, phone_field=spec.phone_field)
    if kind == "list":
        return parse_list(decode_list(content), phone_field=spec.phone_field)
    if kind == "group":
        groups = AfilnetGroups(ctx.clients.afilnet_api)
        return group_audience(groups, content, phone_field=spec.phone_field, used=spec.placeholders)
    raise RuleViolation("audience", "audience.kind", f"unknown audience kind {kind!r}")


def plan_campaign(ctx: CampaignContext, campaign_id: str) -> PlanOutcome:
    """Read the campaign's audience into chunks and publish their fan-out tasks, once."""
    with session_scope(ctx.engine) as session:
        campaign = get_campaign(session, campaign_id)
        stored = audience_of(session, campaign_id)
    if campaign is None or stored is None:
        return PlanOutcome(skipped="no such campaign")
    if campaign.chunks_total is not None:
        return PlanOutcome(skipped="planned already")
    if campaign.status not in PLANNABLE:
        return PlanOutcome(skipped=f"campaign is {campaign.status}")
    spec = CampaignSpec.model_validate(campaign.spec)
    kind, content = stored
    try:
        audience = read_audience(ctx, kind, content, spec)
        sync_opt_outs(ctx.engine, ctx.settings, ctx.clients)
    except (RuleViolation, PermanentError, ValueError, csv.Error) as exc:
        # ValueError, csv.Error: an audience stored before it was read at create
        _fail(ctx, campaign_id, f"audience unusable: {exc}")
        return PlanOutcome(skipped=str(exc))
    except ProviderError as exc:
        with session_scope(ctx.engine) as session:
            update_campaign(session, campaign_id, _now(), error=f"retrying the plan: {exc}")
        log.warning("campaign plan postponed", extra={"campaign_id": campaign_id})
        return PlanOutcome(skipped=str(exc))
    bounds = list(slices(audience.contacts, spec.chunk_size))
    chunk_contacts = [
        (start, stop, contacts_to_json(audience.contacts[start:stop])) for start, stop in bounds
    ]
    with session_scope(ctx.engine) as session:
        stored_now = store_plan(
            session,
            campaign_id,
            audience_size=len(audience.contacts) + len(audience.rejections),
            chunk_contacts=chunk_contacts,
            rejections=audience.rejections,
            now=_now(),
        )
    if not stored_now:
        return PlanOutcome(skipped="planned already")
    ctx.tasks.fan_out(campaign_id, bounds)
    log.info(
        "campaign planned",
        extra={
            "campaign_id": campaign_id,
            "chunks": len(bounds),
            "contacts": len(audience.contacts),
        },
    )
    return PlanOutcome(
        chunks=len(bounds), contacts=len(audience.contacts), rejected=len(audience.rejections)
    )


def _fail(ctx: CampaignContext, campaign_id: str, reason: str) -> None:
    with session_scope(ctx.engine) as session:
        set_status(session, campaign_id, PLANNABLE, CampaignStatus.FAILED, _now(), error=reason)
    log.warning("campaign failed", extra={"campaign_id": campaign_id, "reason": reason})


def fan_out_chunk(ctx: CampaignContext, campaign_id: str, start: int, stop: int) -> ChunkOutcome:
    """Turn contacts ``start``–``stop`` of the campaign into stored (and published) messages."""
    with collector_paused():
        return _fan_out_chunk(ctx, campaign_id, start, stop)


def _fan_out_chunk(ctx: CampaignContext, campaign_id: str, start: int, stop: int) -> ChunkOutcome:
    with session_scope(ctx.engine) as session:
        chunk = pending_chunk(session, campaign_id, start)
        campaign = get_campaign(session, campaign_id)
    if chunk is None or campaign is None or chunk.stop != stop:
        return ChunkOutcome(skipped="no such pending chunk")
    if campaign.status not in LIVE:
        return _skip(ctx, campaign_id, start, campaign.status)
    spec = CampaignSpec.model_validate(campaign.spec)

    rows: list[Row] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    duplicates = 0
    factory = ctx.factory.batch()
    for contact in contacts_from_json(chunk.contacts or []):
        try:
            row = build_row(factory, spec, campaign_id, contact)
        except RuleViolation as exc:
            rejections.append(Rejection.of(contact.line, exc))
            continue
        if row["id"] in seen:
            duplicates += 1
            continue
        seen.add(row["id"])
        rows.append(row)
    with session_scope(ctx.engine) as session:
        blocked = opted_out(
            session,
            (row["recipient"] for row in rows),
            hash_key=ctx.settings.retention.hash_key.get_secret_value() or None,
        )
    kept = [row for row in rows if row["recipient"] not in blocked]

    now = _now()
    with session_scope(ctx.engine) as session:
        status = lock_for_chunk(session, campaign_id, start)
        if status is None:
            return ChunkOutcome(skipped="stored already")
        if status not in LIVE:
            unpublish_chunk(session, campaign_id, start)
            return ChunkOutcome(skipped=f"campaign is {status}")
        campaign = get_campaign(session, campaign_id)
        assert campaign is not None
        go_now = status is CampaignStatus.RUNNING and _may_send(ctx, spec, campaign.starts_at)
        placed = _placement(go_now=go_now, batched=spec.batched, now=now)
        for row in kept:
            row.update(placed)
        # rows a previous run stored are left as they are (ON CONFLICT DO NOTHING)
        inserted = store_messages(session, kept).inserted
        new_rows = [row for row in kept if row["id"] in inserted]
        duplicates += len(kept) - len(new_rows)
        add_rejections(session, campaign_id, rejections)
        finish_chunk(
            session,
            campaign_id,
            start,
            now,
            created=len(new_rows),
            invalid=len(rejections),
            duplicates=duplicates,
            opted_out=len(rows) - len(kept),
        )
    published = (
        publish_queued(ctx, campaign_id, spec, [row["id"] for row in new_rows]) if go_now else 0
    )
    return ChunkOutcome(
        created=len(new_rows),
        invalid=len(rejections),
        duplicates=duplicates,
        opted_out=len(rows) - len(kept),
        published=published,
    )


def _skip(ctx: CampaignContext, campaign_id: str, start: int, status: str) -> ChunkOutcome:
    """A paused campaign's chunk waits for the resume, which publishes it again."""
    with session_scope(ctx.engine) as session:
        unpublish_chunk(session, campaign_id, start)
    return ChunkOutcome(skipped=f"campaign is {status}")


def _may_send(ctx: CampaignContext, spec: CampaignSpec, starts_at: datetime | None) -> bool:
    """Whether the messages may go now: the start has come, and the quiet hours allow."""
    now = ctx.clock()
    if starts_at is not None and starts_at > now:
        return False
    if spec.category != "marketing":
        return True
    return ctx.quiet_hours.reason_within(now, ctx.quiet_margin) is None


def _placement(*, go_now: bool, batched: bool, now: datetime) -> dict[str, Any]:
    """The columns every row of a chunk gets: its lane, and queued now or held."""
    if go_now:
        # batch tasks claim these rows; stamped so beat's republish leaves them to the batches
        return {
            "lane": Lane.BULK,
            "status": MessageStatus.QUEUED,
            "send_at": None,
            "published_at": now if batched else None,
        }
    return {
        "lane": Lane.BULK,
        "status": MessageStatus.SCHEDULED,
        "send_at": HELD_UNTIL,
        "published_at": None,
    }


def publish_queued(
    ctx: CampaignContext, campaign_id: str, spec: CampaignSpec, message_ids: list[str]
) -> int:
    """Publish queued messages of the campaign: Octopush batch tasks, or send tasks."""
    if not message_ids:
        return 0
    if spec.batched:
        batches = math.ceil(len(message_ids) / ctx.settings.campaigns.batch_size)
        ctx.tasks.send_batches(campaign_id, batches)
        return len(message_ids)
    return ctx.publisher.publish(message_ids, lane=Lane.BULK)
