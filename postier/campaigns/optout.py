"""Numbers that must get no campaign: one ledger table, fed by every source of opt-outs.

- ``local``: added by hand (``postier campaign optout add``) or by the application.
- ``primotexto``: Primotexto's unsubscribers list (``GET /v2/unsubscribers/default/contacts``,
  docs/PROVIDERS.md): numbers that answered STOP or were added in its interface. Synced before
  each campaign is planned; a number Primotexto dropped from its list is dropped here too.
- ``octopush``: Octopush has no list to read; STOP answers reach us as inbound SMS on the
  webhook (``postier.webhooks``), stored in ``inbound_messages``. An inbound Octopush SMS
  whose text starts with STOP (any case) opts its sender out, for good.

The fan-out asks the table about each chunk's numbers (``opted_out``), so one query per
chunk and no list held in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, any_, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.ledger.bulk import chunks, insert_or_ignore
from postier.ledger.db import session_scope
from postier.ledger.models import OptOut, inbound_messages_table, opt_outs_table, utcnow
from postier.privacy.retention import REDACTED
from postier.rules.errors import RuleViolation
from postier.rules.phones import normalize_number

log = logging.getLogger(__name__)

LOCAL = "local"
PRIMOTEXTO = "primotexto"
OCTOPUSH = "octopush"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync found: numbers added from each source, and Primotexto's removals."""

    octopush_added: int
    primotexto_added: int
    primotexto_removed: int
    primotexto_synced: bool


def opted_out(session: Session, numbers: Iterable[str], *, hash_key: str | None = None) -> set[str]:
    """The numbers among ``numbers`` (E.164) that opted out.

    With ``hash_key`` (``POSTIER_RETENTION__HASH_KEY``), an opt-out kept as a keyed hash after
    its number was erased (``postier erase``) counts too.
    """
    from postier.privacy.erasure import opt_out_hash

    wanted = sorted(set(numbers))
    hashed = {opt_out_hash(n, hash_key): n for n in wanted} if hash_key else {}
    keys = [*wanted, *hashed]
    if not keys:
        return set()
    rows = session.execute(select(opt_outs_table.c.recipient).where(_among(session, keys)))
    return {hashed.get(recipient, recipient) for recipient in rows.scalars()}


def _among(session: Session, keys: list[str]) -> ColumnElement[bool]:
    """``recipient`` is one of ``keys``, the list bound as one parameter: an ``IN`` of 500
    bound values cost SQLAlchemy more to render than the database to answer (a chunk of
    5,000 numbers was a fifth of a fan-out's CPU on PostgreSQL)."""
    column = opt_outs_table.c.recipient
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("keys", keys, type_=postgresql.ARRAY(String)))
    listed = func.json_each(bindparam("keys", json.dumps(keys))).table_valued("value")
    return column.in_(select(listed.c.value))


def add_opt_out(
    session: Session, number: str, *, source: str = LOCAL, detail: str | None = None
) -> bool:
    """Opt ``number`` out; False when it already was. Raises ``RuleViolation`` for a bad number."""
    recipient = normalize_number(number, field="number")
    return _insert(session, [recipient], source, detail, utcnow()) == 1


def remove_opt_out(session: Session, number: str) -> bool:
    """Take ``number`` off the list (whatever its source); False when it was not on it."""
    recipient = normalize_number(number, field="number")
    result = session.execute(delete(opt_outs_table).where(opt_outs_table.c.recipient == recipient))
    return bool(getattr(result, "rowcount", 0))


def list_opt_outs(session: Session, *, limit: int = 100) -> list[OptOut]:
    """The newest opt-outs first."""
    query = select(OptOut).order_by(opt_outs_table.c.created_at.desc()).limit(limit)
    return list(session.execute(query).scalars())


def _insert(
    session: Session, recipients: Sequence[str], source: str, detail: str | None, at: datetime
) -> int:
    added = 0
    for chunk in chunks(list(dict.fromkeys(recipients))):
        statement = insert_or_ignore(session, opt_outs_table, ["recipient"]).returning(
            opt_outs_table.c.recipient
        )
        rows = session.execute(
            statement,
            [{"recipient": r, "source": source, "detail": detail, "created_at": at} for r in chunk],
        )
        added += len(rows.all())
    return added


def octopush_stops(session: Session) -> list[str]:
    """Senders of inbound Octopush SMS starting with STOP (any case)."""
    inbound = inbound_messages_table
    query = select(inbound.c.sender).where(
        inbound.c.provider == OCTOPUSH,
        inbound.c.sender != REDACTED,
        func.upper(func.trim(inbound.c.text)).like("STOP%"),
    )
    return sorted(set(session.execute(query).scalars()))


def _hashed_present(session: Session, numbers: Sequence[str], key: str) -> set[str]:
    from postier.privacy.erasure import opt_out_hash

    hashed = {opt_out_hash(number, key): number for number in numbers}
    found: set[str] = set()
    for chunk in chunks(list(hashed)):
        rows = session.execute(
            select(opt_outs_table.c.recipient).where(opt_outs_table.c.recipient.in_(chunk))
        )
        found.update(hashed[value] for value in rows.scalars())
    return found


def record_octopush_stops(session: Session) -> int:
    """Opt out the senders of inbound Octopush STOPs not on the list yet; how many were added."""
    return _insert(
        session, _normalised(octopush_stops(session)), OCTOPUSH, "STOP received", utcnow()
    )


def _normalised(numbers: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for number in numbers:
        try:
            kept.append(normalize_number(number, field="number"))
        except RuleViolation:
            log.warning("opt-out list holds an unreadable number; skipped")
    return kept


def sync_opt_outs(engine: Engine, settings: Settings, clients: ProviderClients) -> SyncReport:
    """Bring the table up to date with Octopush STOPs and Primotexto's unsubscribers.

    Primotexto is read when it has an API key and ``sync_primotexto_unsubscribers`` is on;
    a ``ProviderError`` from it propagates (a campaign must not go out with a list it could
    not read: the plan is retried).
    """
    now = utcnow()
    with session_scope(engine) as session:
        octopush_added = record_octopush_stops(session)
    wanted = settings.campaigns.sync_primotexto_unsubscribers
    if not (wanted and settings.primotexto.api_key.get_secret_value()):
        return SyncReport(octopush_added, 0, 0, primotexto_synced=False)
    listed = set(_normalised(clients.primotexto.list_unsubscribers()))
    with session_scope(engine) as session:
        known = set(
            session.execute(
                select(opt_outs_table.c.recipient).where(opt_outs_table.c.source == PRIMOTEXTO)
            ).scalars()
        )
        gone = sorted(known - listed)
        for chunk in chunks(gone):
            session.execute(
                delete(opt_outs_table).where(
                    opt_outs_table.c.source == PRIMOTEXTO, opt_outs_table.c.recipient.in_(chunk)
                )
            )
        new = sorted(listed - known)
        key = settings.retention.hash_key.get_secret_value()
        if key:
            # a number erased here stays a hash, even while Primotexto still lists it
            erased = _hashed_present(session, new, key)
            new = [number for number in new if number not in erased]
        added = _insert(session, new, PRIMOTEXTO, "Primotexto unsubscriber", now)
    return SyncReport(octopush_added, added, len(gone), primotexto_synced=True)
