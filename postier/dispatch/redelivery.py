"""A failed delivery for a temporary reason is sent once more, through the routing's fallback.

An ``undelivered`` receipt whose provider status is temporary (the network, a handset off,
the validity expired: ``StatusReport.failure``, classified in each provider's module) means
another operator route may well get through; a permanent one (bad number, blacklisted,
opted out) never is resent. ``undelivered`` is final (``ledger.states``), so the resend is a
new message, as the state table prescribes:

- its id is derived from the original's (``resend_id``): however many times the receipt
  arrives (poll and webhook, a provider pushing twice), one resend exists;
- it is stored ``scheduled`` for now, so beat releases and publishes it on its next pass; its
  payload names the original (``resend_of``) and the providers tried, so a resend is never
  resent itself;
- the original gets an event saying where and as which message it was resent.

``routing.resend_undelivered`` (``POSTIER_ROUTING__RESEND_UNDELIVERED``) turns it off.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from postier.config import Settings
from postier.dispatch.routing import fallback_for
from postier.ledger.bulk import insert_messages
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus, delivery_events_table, utcnow
from postier.providers.results import DeliveryFailure, StatusReport
from postier.rules.phones import mask_number

log = logging.getLogger(__name__)

#: columns of the original a resend does not inherit (a new send's own)
_FRESH = {
    "id": None,
    "status": MessageStatus.SCHEDULED,
    "previous_status": None,
    "idempotency_key": None,
    "campaign_id": None,
    "attempts": 0,
    "provider_message_id": None,
    "cost": None,
    "last_error": None,
    "published_at": None,
    "sending_started_at": None,
    "status_checked_at": None,
    # its own events from 1; its callback_url is kept (the application follows the resend)
    "callback_seq": 0,
}


def resend_id(message_id: str) -> str:
    """The id of ``message_id``'s one resend (32 hex characters, like every message id)."""
    return hashlib.blake2b(f"resend:{message_id}".encode(), digest_size=16).hexdigest()


def resend_undelivered(
    engine: Engine, settings: Settings, message: Message, report: StatusReport
) -> str | None:
    """Store the resend of ``message`` (just moved to ``undelivered`` by ``report``) through
    the fallback; its id, or None when it is not to be resent (or already was)."""
    if not settings.routing.resend_undelivered or report.failure is not DeliveryFailure.TEMPORARY:
        return None
    payload: dict[str, Any] = dict(message.payload or {})
    if payload.get("resend_of"):
        return None
    provider = message.provider or ""
    tried = [*payload.get("tried_providers", []), provider]
    fallback = fallback_for(settings, channel=message.channel, provider=provider, tried=tried)
    if fallback is None:
        return None
    new_id = resend_id(message.id)
    now = utcnow()
    row = {key: getattr(message, key) for key in Message.model_fields}
    row.update(_FRESH)
    row.update(
        id=new_id,
        provider=fallback,
        send_at=now,
        created_at=now,
        updated_at=now,
        payload={**payload, "tried_providers": tried, "resend_of": message.id},
    )
    with session_scope(engine) as session:
        if session.get(Message, new_id) is not None:
            return None
        insert_messages(session, [row])
        session.execute(
            insert(delivery_events_table).values(
                message_id=message.id,
                from_status=MessageStatus.UNDELIVERED,
                to_status=MessageStatus.UNDELIVERED,
                at=now,
                provider_status=report.provider_status,
                detail=(
                    f"resend through {fallback} as {new_id}: undelivered for a temporary "
                    f"reason ({report.provider_status})"
                ),
            )
        )
    log.info(
        "undelivered: resent through the fallback",
        extra={
            "message_id": message.id,
            "resend": new_id,
            "provider": provider,
            "fallback": fallback,
            "provider_status": report.provider_status,
            "recipient": mask_number(message.recipient),
        },
    )
    return new_id
