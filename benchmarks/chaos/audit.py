"""The audit that ends every chaos scenario: the provider's record against the ledger.

The sandbox's record (``Sandbox.records()``) is what the provider accepted, one entry per
recipient; the ledger is what Postier believes. A scenario gives every message its own
recipient, so the two are compared recipient by recipient:

- every accepted message is in a final state (delivered, undelivered, expired, failed,
  cancelled) or explicitly ``unknown`` — nothing is left ``queued``, ``scheduled``,
  ``sending`` or ``sent``;
- no recipient got the message more often than the ledger has messages for it, unless the
  ledger records why (an event saying the send was made again by policy or by a person);
- no message the ledger calls sent or delivered is missing from the provider's record.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from postier.ledger.bulk import chunks
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus, delivery_events_table, messages_table
from postier.ledger.states import FINAL_STATUSES

#: where a message may rest at the end of a scenario
SETTLED = frozenset({*FINAL_STATUSES, MessageStatus.UNKNOWN})
#: states in which the provider must have the message
PROVIDER_HAS_IT = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.EXPIRED}
)
#: event details that explain a second send: a resend by policy, or by a person
RESEND_REASONS = ("sending again", "resend", "by hand")


@dataclass(frozen=True, slots=True)
class Audit:
    """What the audit found; ``ok`` when nothing was lost, left open or sent twice unexplained."""

    messages: int
    statuses: Mapping[str, int]
    provider_sends: int
    #: messages not final nor ``unknown``: id -> status
    unsettled: Mapping[str, str] = field(default_factory=dict)
    #: recipients the provider has more often than the ledger explains
    duplicates: Sequence[str] = ()
    #: recipients the ledger calls sent whose message the provider does not have
    phantoms: Sequence[str] = ()
    #: second sends the ledger explains (resend policy, a person's retry)
    explained: int = 0

    @property
    def ok(self) -> bool:
        return not self.unsettled and not self.duplicates and not self.phantoms

    def summary(self) -> str:
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()) if v)
        problems = []
        if self.unsettled:
            problems.append(f"{len(self.unsettled)} unsettled")
        if self.duplicates:
            problems.append(f"{len(self.duplicates)} sent twice")
        if self.phantoms:
            problems.append(f"{len(self.phantoms)} sent in the ledger only")
        return f"{states}; " + ("; ".join(problems) if problems else "audit clean")


def _rows(engine: Engine, message_ids: Sequence[str]) -> list[tuple[str, str, str]]:
    messages = messages_table
    found: list[tuple[str, str, str]] = []
    with session_scope(engine) as session:
        for chunk in chunks(list(message_ids)):
            query = select(messages.c.id, messages.c.recipient, messages.c.status).where(
                messages.c.id.in_(chunk)
            )
            found.extend((str(i), str(r), str(s)) for i, r, s in session.execute(query))
    return found


def _explained(engine: Engine, message_ids: Iterable[str]) -> set[str]:
    """Messages with an event that explains a second send."""
    events = delivery_events_table
    ids = list(message_ids)
    explained: set[str] = set()
    with session_scope(engine) as session:
        for chunk in chunks(ids):
            query = select(events.c.message_id, events.c.detail).where(
                events.c.message_id.in_(chunk)
            )
            for message_id, detail in session.execute(query):
                if detail and any(reason in detail for reason in RESEND_REASONS):
                    explained.add(str(message_id))
    return explained


def audit(
    engine: Engine, records: Sequence[Mapping[str, Any]], message_ids: Sequence[str]
) -> Audit:
    """Compare the provider's ``records`` with the ledger rows of ``message_ids``."""
    rows = _rows(engine, message_ids)
    statuses = Counter(status for _, _, status in rows)
    wanted = {recipient for _, recipient, _ in rows}
    sends = Counter(str(r["recipient"]) for r in records if str(r["recipient"]) in wanted)
    per_recipient: dict[str, list[tuple[str, str]]] = {}
    for message_id, recipient, status in rows:
        per_recipient.setdefault(recipient, []).append((message_id, status))
    unsettled = {
        message_id: status for message_id, _, status in rows if MessageStatus(status) not in SETTLED
    }
    missing = [i for i in message_ids if i not in {row[0] for row in rows}]
    unsettled.update({message_id: "missing from the ledger" for message_id in missing})
    over = {
        recipient: count - len(per_recipient.get(recipient, []))
        for recipient, count in sends.items()
        if count > len(per_recipient.get(recipient, []))
    }
    why = _explained(engine, [m for r in over for m, _ in per_recipient.get(r, [])])
    duplicates = [
        recipient
        for recipient in over
        if not any(m in why for m, _ in per_recipient.get(recipient, []))
    ]
    phantoms = [
        recipient
        for recipient, messages in per_recipient.items()
        if sends.get(recipient, 0)
        < sum(1 for _, status in messages if MessageStatus(status) in PROVIDER_HAS_IT)
    ]
    return Audit(
        messages=len(message_ids),
        statuses=dict(statuses),
        provider_sends=sum(sends.values()),
        unsettled=unsettled,
        duplicates=sorted(duplicates),
        phantoms=sorted(phantoms),
        explained=len(over) - len(duplicates),
    )


def wait_settled(engine: Engine, message_ids: Sequence[str], *, timeout: float) -> bool:
    """Poll until every message is final or ``unknown``; False when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(engine, message_ids)
        if len(rows) == len(message_ids) and all(
            MessageStatus(status) in SETTLED for _, _, status in rows
        ):
            return True
        time.sleep(0.25)
    return False
