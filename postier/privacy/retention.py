"""Retention: a beat pass redacts personal data older than its category's period.

Categories and periods (``POSTIER_RETENTION__*_DAYS``, 30 days by default, 0 keeps forever),
each counted from the row's last change:

- texts: a settled message's body, template values, file URLs, idempotency key;
- numbers: a settled message's recipient (replaced by ``REDACTED``; its keyed hash,
  ``recipient_hash``, stays, written now if the row has none and the hash key is set, so the
  support page still finds the message by number);
- provider answers: delivery events' raw answers and details, messages' last errors, and
  settled status callback events (their reason copies the move's detail);
- inbound: an inbound message's text, sender and raw answer (an Octopush STOP is recorded as
  an opt-out first, so it is still honoured);
- audiences: a finished campaign's audience, leftover chunk contacts and refused contacts'
  messages.

"Settled" is delivered, undelivered, failed, cancelled or sent: a message still to be sent
(scheduled, queued, sending) or waiting for a person's decision (unknown) keeps its data.
Rows stay, with their states, counts, parts, costs and timings, for statistics. Each statement
touches at most ``batch_size`` rows and a pass stops after ``pass_budget`` seconds: the next
pass goes on where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from postier.config import RetentionSettings
from postier.ledger.db import session_scope
from postier.ledger.models import (
    CampaignStatus,
    MessageStatus,
    api_idempotency_table,
    callback_events_table,
    campaign_audiences_table,
    campaign_chunks_table,
    campaign_rejections_table,
    campaigns_table,
    delivery_events_table,
    inbound_messages_table,
    messages_table,
    utcnow,
)
from postier.rules.phones import number_hash

log = logging.getLogger(__name__)

#: what a redacted number or sender reads
REDACTED: Final = "redacted"
#: message states whose data is no longer needed to send
SETTLED: Final = (
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
    MessageStatus.SENT,
)
#: campaign states after which its audience is no longer read
FINISHED: Final = (CampaignStatus.DONE, CampaignStatus.CANCELLED, CampaignStatus.FAILED)
#: keys of a message's payload that hold nothing personal (the others are dropped)
KEPT_PAYLOAD_KEYS: Final = frozenset(
    {"sender", "template_id", "platform_id", "file_type", "tried_providers", "campaign"}
)


@dataclass
class RetentionReport:
    """Rows redacted in one pass, per category; ``complete`` False when time ran out."""

    texts: int = 0
    numbers: int = 0
    provider_answers: int = 0
    inbound: int = 0
    audiences: int = 0
    idempotency_keys: int = 0
    opt_outs_recorded: int = 0
    complete: bool = True
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.texts + self.numbers + self.provider_answers + self.inbound + self.audiences


def redacted_payload(payload: Any) -> dict[str, Any]:
    """A message payload without its personal values (template params, header, file URLs)."""
    if not isinstance(payload, dict):
        return {}
    return {key: value for key, value in payload.items() if key in KEPT_PAYLOAD_KEYS}


def _ids(session: Any, query: sa.Select[Any]) -> list[Any]:
    return list(session.execute(query).scalars())


def _texts(engine: Engine, cutoff: datetime, size: int, now: datetime) -> int:
    m = messages_table
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(m.c.id, m.c.payload)
            .where(m.c.redacted_at.is_(None), m.c.status.in_(SETTLED), m.c.updated_at < cutoff)
            .limit(size)
        ).all()
        for message_id, payload in rows:
            session.execute(
                sa.update(m)
                .where(m.c.id == message_id)
                .values(
                    body="",
                    payload=redacted_payload(payload),
                    idempotency_key=None,
                    redacted_at=now,
                )
            )
    return len(rows)


def _numbers(
    engine: Engine, cutoff: datetime, size: int, now: datetime, *, hash_key: str = ""
) -> int:
    m = messages_table
    with session_scope(engine) as session:
        ids = _ids(
            session,
            sa.select(m.c.id)
            .where(m.c.recipient != REDACTED, m.c.status.in_(SETTLED), m.c.updated_at < cutoff)
            .limit(size),
        )
        if ids and hash_key:
            # a row stored before the key was set gets its hash from the number still there,
            # so support can find it by number once the number is gone
            unhashed = session.execute(
                sa.select(m.c.id, m.c.recipient).where(
                    m.c.id.in_(ids), m.c.recipient_hash.is_(None)
                )
            ).all()
            for message_id, recipient in unhashed:
                session.execute(
                    sa.update(m)
                    .where(m.c.id == message_id)
                    .values(recipient_hash=number_hash(recipient, hash_key))
                )
        if ids:
            session.execute(sa.update(m).where(m.c.id.in_(ids)).values(recipient=REDACTED))
            # an Octopush receipt's id is "ticket:+33…": the ticket is enough once settled
            receipts = session.execute(
                sa.select(m.c.id, m.c.provider_message_id).where(
                    m.c.id.in_(ids), m.c.provider_message_id.contains(":")
                )
            ).all()
            for message_id, provider_id in receipts:
                session.execute(
                    sa.update(m)
                    .where(m.c.id == message_id)
                    .values(provider_message_id=provider_id.split(":", 1)[0])
                )
    return len(ids)


def _provider_answers(engine: Engine, cutoff: datetime, size: int, now: datetime) -> int:
    e, m = delivery_events_table, messages_table
    with session_scope(engine) as session:
        ids = _ids(
            session,
            sa.select(e.c.id)
            .where(e.c.at < cutoff, sa.or_(e.c.raw.is_not(None), e.c.detail.is_not(None)))
            .limit(size),
        )
        if ids:
            session.execute(sa.update(e).where(e.c.id.in_(ids)).values(raw=sa.null(), detail=None))
        errors = _ids(
            session,
            sa.select(m.c.id)
            .where(m.c.last_error.is_not(None), m.c.status.in_(SETTLED), m.c.updated_at < cutoff)
            .limit(size),
        )
        if errors:
            session.execute(sa.update(m).where(m.c.id.in_(errors)).values(last_error=None))
        # settled callback events: their ``reason`` is a copy of the move's detail
        c = callback_events_table
        events = _ids(
            session,
            sa.select(c.c.id)
            .where(
                c.c.created_at < cutoff,
                sa.or_(c.c.delivered_at.is_not(None), c.c.given_up_at.is_not(None)),
            )
            .limit(size),
        )
        if events:
            session.execute(sa.delete(c).where(c.c.id.in_(events)))
    return len(ids) + len(errors) + len(events)


def _inbound(engine: Engine, cutoff: datetime, size: int, now: datetime) -> int:
    i = inbound_messages_table
    with session_scope(engine) as session:
        ids = _ids(
            session,
            sa.select(i.c.id).where(i.c.sender != REDACTED, i.c.created_at < cutoff).limit(size),
        )
        if ids:
            session.execute(
                sa.update(i).where(i.c.id.in_(ids)).values(text="", sender=REDACTED, raw=sa.null())
            )
    return len(ids)


def _audiences(engine: Engine, cutoff: datetime, size: int, now: datetime) -> int:
    c, a = campaigns_table, campaign_audiences_table
    ch, r = campaign_chunks_table, campaign_rejections_table
    finished = sa.select(c.c.id).where(c.c.status.in_(FINISHED), c.c.updated_at < cutoff)
    with session_scope(engine) as session:
        ids = _ids(
            session,
            sa.select(a.c.campaign_id)
            .where(a.c.content != "", a.c.campaign_id.in_(finished))
            .limit(size),
        )
        if ids:
            session.execute(sa.update(a).where(a.c.campaign_id.in_(ids)).values(content=""))
        chunks = session.execute(
            sa.select(ch.c.campaign_id, ch.c.start)
            .where(ch.c.contacts.is_not(None), ch.c.campaign_id.in_(finished))
            .limit(size)
        ).all()
        for campaign_id, start in chunks:
            session.execute(
                sa.update(ch)
                .where(ch.c.campaign_id == campaign_id, ch.c.start == start)
                .values(contacts=sa.null())
            )
        rejected = _ids(
            session,
            sa.select(r.c.id)
            .where(r.c.message != REDACTED, r.c.campaign_id.in_(finished))
            .limit(size),
        )
        if rejected:
            session.execute(sa.update(r).where(r.c.id.in_(rejected)).values(message=REDACTED))
    return len(ids) + len(chunks) + len(rejected)


def _idempotency_keys(engine: Engine, cutoff: datetime, size: int, now: datetime) -> int:
    """The API's ``Idempotency-Key`` records older than the window (``api.idempotency``)."""
    t = api_idempotency_table
    with session_scope(engine) as session:
        keys = session.execute(
            sa.select(t.c.api_key_id, t.c.key).where(t.c.created_at < cutoff).limit(size)
        ).all()
        for api_key_id, key in keys:
            session.execute(sa.delete(t).where(t.c.api_key_id == api_key_id, t.c.key == key))
    return len(keys)


def _record_stops(engine: Engine) -> int:
    """Octopush STOPs become opt-outs before their inbound rows lose their sender."""
    from postier.campaigns.optout import record_octopush_stops

    with session_scope(engine) as session:
        return record_octopush_stops(session)


Step = Callable[[Engine, datetime, int, datetime], int]


def redact_expired(
    engine: Engine,
    settings: RetentionSettings,
    *,
    now: datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RetentionReport:
    """One retention pass: every category, batch after batch, until done or out of time."""
    now = now or utcnow()
    report = RetentionReport()
    deadline = clock() + settings.pass_budget
    if settings.inbound_days:
        report.opt_outs_recorded = _record_stops(engine)
    steps: list[tuple[str, int, Step]] = [
        ("texts", settings.texts_days, _texts),
        (
            "numbers",
            settings.numbers_days,
            partial(_numbers, hash_key=settings.hash_key.get_secret_value()),
        ),
        ("provider_answers", settings.provider_answers_days, _provider_answers),
        ("inbound", settings.inbound_days, _inbound),
        ("audiences", settings.audiences_days, _audiences),
        ("idempotency_keys", settings.idempotency_keys_days, _idempotency_keys),
    ]
    for name, days, step in steps:
        if not days:
            report.skipped.append(name)
            continue
        cutoff = now - timedelta(days=days)
        while True:
            if clock() > deadline:
                report.complete = False
                break
            done = step(engine, cutoff, settings.batch_size, now)
            setattr(report, name, getattr(report, name) + done)
            if done == 0:
                break
        if not report.complete:
            break
    if report.total or report.idempotency_keys:
        log.info(
            "personal data redacted",
            extra={
                "texts": report.texts,
                "numbers": report.numbers,
                "provider_answers": report.provider_answers,
                "inbound": report.inbound,
                "audiences": report.audiences,
                "idempotency_keys": report.idempotency_keys,
                "complete": report.complete,
            },
        )
    return report
