"""One person's data: ``export_number`` (the right of access) and ``erase_number`` (erasure).

A number is looked for in every form it is written in: E.164 (``+33612345678``), national
(``0612345678``, also with spaces, dots or dashes), ``33612345678`` and ``0033612345678`` as
providers write it, ``%2B33612345678`` inside a URL. The significant digits (``612345678``)
are in all but the spaced forms, so each column is searched for them and for those.

Erasure redacts, it does not delete: a message keeps its state, parts, cost and timings for
statistics; its number, text, template values, file URLs, provider answers and errors go, and
so does the keyed hash of the number retention keeps (``recipient_hash``): nothing leads from
the number to its messages any more. An unsent message to the number is cancelled first.
Inbound messages lose their text and sender; the number leaves campaign audiences, pending
chunks and refused contacts. An opt-out stays, as a keyed hash (``POSTIER_RETENTION__HASH_KEY``),
so the STOP is still honoured. What the ledger cannot reach is listed in ``NOT_REACHABLE``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from postier.ledger.db import session_scope
from postier.ledger.models import (
    MessageStatus,
    campaign_audiences_table,
    campaign_chunks_table,
    campaign_rejections_table,
    campaigns_table,
    delivery_events_table,
    inbound_messages_table,
    messages_table,
    opt_outs_table,
    utcnow,
)
from postier.privacy.retention import REDACTED, redacted_payload
from postier.rules.errors import RuleViolation
from postier.rules.phones import normalize_number, number_hash

#: what ``postier erase`` cannot reach, printed with its report (and in the README)
NOT_REACHABLE: Final = (
    "the providers' own copies: Afilnet, Primotexto and Octopush keep sent messages, numbers"
    " and delivery reports in their accounts (and Primotexto's unsubscriber list, Afilnet's"
    " contact groups); ask each provider to erase them",
    "database backups and replicas: they hold the number until they expire",
    "logs and log collectors: numbers are masked there, but message ids can be matched to"
    " the ledger's copy until the logs expire",
    "files outside the ledger: CSV files given to `postier campaign create`, earlier exports",
)
#: states of a message that has not gone out yet: erasing its number cancels it
UNSENT: Final = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


class ErasureError(ValueError):
    """Erasure cannot keep its promises (no key to keep the opt-out as a hash)."""


def opt_out_hash(e164: str, key: str) -> str:
    """The keyed hash an opt-out of ``e164`` is kept as: ``h:`` and 30 hex digits."""
    return number_hash(e164, key)


def number_forms(e164: str) -> list[str]:
    """Every way ``e164`` may be written in the ledger, most specific first."""
    parsed = phonenumbers.parse(e164)
    digits = e164.lstrip("+")
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    compact = "".join(ch for ch in national if ch.isdigit())
    spaced = " ".join(compact[i : i + 2] for i in range(0, len(compact), 2))
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    forms = [
        e164,
        f"%2B{digits}",
        f"00{digits}",
        digits,
        compact,
        national,
        spaced,
        spaced.replace(" ", "."),
        spaced.replace(" ", "-"),
        international,
        str(parsed.national_number),
    ]
    return list(dict.fromkeys(form for form in forms if len(form) >= 6))


def search_forms(e164: str) -> list[str]:
    """The forms a column is searched for: significant digits, then those it misses."""
    significant = str(phonenumbers.parse(e164).national_number)
    return [significant, *(form for form in number_forms(e164) if significant not in form)]


def _holds(value: Any, forms: Sequence[str]) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return any(form in text for form in forms)


def _any_form(column: Any, forms: Sequence[str]) -> Any:
    text = sa.cast(column, sa.Text)
    return sa.or_(*(text.contains(form, autoescape=True) for form in forms))


def _text_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns that can hold text: strings, texts, JSON (SQLModel's are decorated)."""
    found = []
    for column in table.columns:
        kind = column.type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if isinstance(kind, (sa.String, sa.Text, sa.JSON)):
            found.append(column)
    return found


@dataclass(frozen=True, slots=True)
class Trace:
    """A column of a table where a form of the number still is."""

    table: str
    column: str
    rows: int


def find_traces(session: Session, e164: str) -> list[Trace]:
    """Every column of every ledger table that still holds a form of ``e164``."""
    forms = search_forms(e164)
    traces: list[Trace] = []
    for table in SQLModel.metadata.sorted_tables:
        for column in _text_columns(table):
            count = session.execute(
                sa.select(sa.func.count()).select_from(table).where(_any_form(column, forms))
            ).scalar_one()
            if count:
                traces.append(Trace(table.name, column.name, int(count)))
    return traces


def _normalised(number: str, region: str) -> str:
    if not isinstance(number, str):
        raise RuleViolation("number", "number.type", "must be text")
    return normalize_number(number, region=region, field="number")


# -- export -------------------------------------------------------------------------------


def _plain(row: Any) -> dict[str, Any]:
    return {key: value for key, value in row._mapping.items()}


def export_number(
    engine: Engine, number: str, *, region: str = "FR", hash_key: str | None = None
) -> dict[str, Any]:
    """Everything the ledger holds about ``number``, as plain JSON-ready data.

    With ``hash_key``, the messages whose number retention redacted are in it too: they still
    hold its keyed hash (``recipient_hash``), so they are still about this person.
    """
    e164 = _normalised(number, region)
    hashed = None
    if hash_key:
        hashed = number_hash(e164, hash_key)
    forms = search_forms(e164)
    m, e, i = messages_table, delivery_events_table, inbound_messages_table
    a, ch, r, o = (
        campaign_audiences_table,
        campaign_chunks_table,
        campaign_rejections_table,
        opt_outs_table,
    )
    with session_scope(engine) as session:
        messages = [
            _plain(row)
            for row in session.execute(
                sa.select(m)
                .where(
                    sa.or_(
                        m.c.recipient == e164,
                        m.c.recipient_hash == hashed if hashed else sa.false(),
                        *[_any_form(c, forms) for c in (m.c.body, m.c.payload)],
                    )
                )
                .order_by(m.c.created_at)
            )
        ]
        ids = [message["id"] for message in messages]
        events = [
            _plain(row)
            for row in session.execute(
                sa.select(e)
                .where(sa.or_(e.c.message_id.in_(ids), _any_form(e.c.raw, forms)))
                .order_by(e.c.id)
            )
        ]
        inbound = [
            _plain(row)
            for row in session.execute(
                sa.select(i)
                .where(sa.or_(i.c.sender == e164, _any_form(i.c.raw, forms)))
                .order_by(i.c.id)
            )
        ]
        audiences = []
        for campaign_id, kind, content in session.execute(
            sa.select(a.c.campaign_id, a.c.kind, a.c.content).where(_any_form(a.c.content, forms))
        ):
            name = session.execute(
                sa.select(campaigns_table.c.name).where(campaigns_table.c.id == campaign_id)
            ).scalar_one_or_none()
            audiences.append(
                {
                    "campaign_id": campaign_id,
                    "campaign": name,
                    "kind": kind,
                    "entries": _entries(kind, content, forms),
                }
            )
        chunks = [
            {
                "campaign_id": cid,
                "start": start,
                "contacts": [c for c in contacts if _holds(c, forms)],
            }
            for cid, start, contacts in session.execute(
                sa.select(ch.c.campaign_id, ch.c.start, ch.c.contacts).where(
                    _any_form(ch.c.contacts, forms)
                )
            )
        ]
        rejections = [
            _plain(row)
            for row in session.execute(sa.select(r).where(_any_form(r.c.message, forms)))
        ]
        opt_out = session.execute(sa.select(o).where(o.c.recipient == e164)).first()
    return {
        "number": e164,
        "exported_at": utcnow(),
        "messages": [
            {**message, "events": [ev for ev in events if ev["message_id"] == message["id"]]}
            for message in messages
        ],
        "other_provider_answers": [ev for ev in events if ev["message_id"] not in ids],
        "inbound_messages": inbound,
        "campaign_audiences": audiences,
        "campaign_chunks": chunks,
        "campaign_rejections": rejections,
        "opt_out": _plain(opt_out) if opt_out is not None else None,
        "not_reachable": list(NOT_REACHABLE),
    }


def export_json(data: dict[str, Any]) -> str:
    """``export_number``'s data as indented JSON (times in ISO 8601, amounts as text)."""
    return json.dumps(data, default=str, ensure_ascii=False, indent=2)


def _entries(kind: str, content: str, forms: Sequence[str]) -> list[Any]:
    if kind == "list":
        try:
            entries = json.loads(content)
        except ValueError:
            return []
        return [entry for entry in entries if _holds(entry, forms)]
    lines = content.splitlines()
    header = lines[:1] if kind == "csv" else []
    return [*header, *(line for line in lines[1:] if _holds(line, forms))] if kind == "csv" else []


# -- erasure ------------------------------------------------------------------------------


@dataclass
class ErasureReport:
    """What ``erase_number`` changed, what it found left, and what it cannot reach."""

    number_hash: str
    messages: int = 0
    cancelled: int = 0
    events: int = 0
    inbound: int = 0
    audiences: int = 0
    chunks: int = 0
    rejections: int = 0
    opt_out_kept: bool = False
    remaining: list[Trace] = field(default_factory=list)
    not_reachable: tuple[str, ...] = NOT_REACHABLE


def _stripped(value: str | None, forms: Sequence[str]) -> str | None:
    """``value`` without any form of the number (an Octopush ``ticket:+33…`` keeps its ticket)."""
    if value is None:
        return None
    for form in sorted(forms, key=len, reverse=True):
        value = value.replace(form, "")
    return value.rstrip(":+") or None


def _without(kind: str, content: str, forms: Sequence[str]) -> str:
    """An audience's content without the entries that hold the number."""
    if kind == "list":
        try:
            entries = json.loads(content)
        except ValueError:
            return ""
        kept = [entry for entry in entries if not _holds(entry, forms)]
        return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    if kind == "csv":
        lines = content.splitlines(keepends=True)
        return "".join(lines[:1] + [line for line in lines[1:] if not _holds(line, forms)])
    return "" if _holds(content, forms) else content


def erase_number(
    engine: Engine, number: str, *, hash_key: str, region: str = "FR"
) -> ErasureReport:
    """Erase ``number`` from every table; ``ErasureError`` without a ``hash_key``."""
    if len(hash_key) < 16:
        raise ErasureError(
            "POSTIER_RETENTION__HASH_KEY is not set (16 characters at least): without it the"
            " number's opt-out could not be kept, and a STOP would be forgotten"
        )
    from postier.campaigns.optout import LOCAL, record_octopush_stops
    from postier.ledger.states import transition_many

    e164 = _normalised(number, region)
    forms = search_forms(e164)
    now = utcnow()
    report = ErasureReport(number_hash=opt_out_hash(e164, hash_key))
    m, e, i = messages_table, delivery_events_table, inbound_messages_table
    a, ch, r, o = (
        campaign_audiences_table,
        campaign_chunks_table,
        campaign_rejections_table,
        opt_outs_table,
    )
    with session_scope(engine) as session:
        record_octopush_stops(session)  # a STOP from this number is kept, as a hash below
        for sources, target in (
            (UNSENT, MessageStatus.CANCELLED),
            ((MessageStatus.UNKNOWN,), MessageStatus.FAILED),  # never resent once erased
        ):
            unsent = list(
                session.execute(
                    sa.select(m.c.id).where(m.c.recipient == e164, m.c.status.in_(sources))
                ).scalars()
            )
            if unsent:
                report.cancelled += len(
                    transition_many(session, unsent, list(sources), target, detail="erased")
                )
        holders = [m.c.recipient == e164, m.c.recipient_hash == report.number_hash] + [
            _any_form(c, forms)
            for c in (m.c.body, m.c.payload, m.c.last_error, m.c.idempotency_key)
        ]
        holders.append(_any_form(m.c.provider_message_id, forms))
        rows = session.execute(
            sa.select(m.c.id, m.c.recipient, m.c.payload, m.c.provider_message_id).where(
                sa.or_(*holders)
            )
        ).all()
        for message_id, recipient, payload, provider_id in rows:
            session.execute(
                sa.update(m)
                .where(m.c.id == message_id)
                .values(
                    recipient=REDACTED if recipient in (e164, REDACTED) else recipient,
                    recipient_hash=None,
                    body="",
                    payload=redacted_payload(payload),
                    idempotency_key=None,
                    last_error=None,
                    redacted_at=now,
                    provider_message_id=_stripped(provider_id, forms),
                )
            )
        report.messages = len(rows)
        ids = [row[0] for row in rows]
        result = session.execute(
            sa.update(e)
            .where(
                sa.or_(
                    e.c.message_id.in_(ids),
                    _any_form(e.c.raw, forms),
                    _any_form(e.c.detail, forms),
                )
            )
            .values(raw=sa.null(), detail=None)
        )
        report.events = int(getattr(result, "rowcount", 0) or 0)
        result = session.execute(
            sa.update(i)
            .where(
                sa.or_(
                    i.c.sender == e164,
                    *[_any_form(c, forms) for c in (i.c.sender, i.c.text, i.c.raw)],
                )
            )
            .values(text="", sender=REDACTED, raw=sa.null())
        )
        report.inbound = int(getattr(result, "rowcount", 0) or 0)
        for campaign_id, kind, content in session.execute(
            sa.select(a.c.campaign_id, a.c.kind, a.c.content).where(_any_form(a.c.content, forms))
        ).all():
            session.execute(
                sa.update(a)
                .where(a.c.campaign_id == campaign_id)
                .values(content=_without(kind, content, forms))
            )
            report.audiences += 1
        for campaign_id, start, contacts in session.execute(
            sa.select(ch.c.campaign_id, ch.c.start, ch.c.contacts).where(
                _any_form(ch.c.contacts, forms)
            )
        ).all():
            kept = [contact for contact in contacts or [] if not _holds(contact, forms)]
            session.execute(
                sa.update(ch)
                .where(ch.c.campaign_id == campaign_id, ch.c.start == start)
                .values(contacts=kept)
            )
            report.chunks += 1
        result = session.execute(
            sa.update(r).where(_any_form(r.c.message, forms)).values(message=REDACTED)
        )
        report.rejections = int(getattr(result, "rowcount", 0) or 0)
        if session.execute(sa.select(o.c.recipient).where(o.c.recipient == e164)).first():
            session.execute(sa.delete(o).where(o.c.recipient == report.number_hash))
            session.execute(
                sa.update(o)
                .where(o.c.recipient == e164)
                .values(
                    recipient=report.number_hash,
                    source=LOCAL,
                    detail="kept as a keyed hash after an erasure",
                )
            )
            report.opt_out_kept = True
        report.remaining = find_traces(session, e164)
    return report
