"""Settling a send whose outcome is not known (``unknown``), by lookup before any resend.

Each provider offers a different way to find out whether a request took effect; its profile
says which (``ProviderProfile.resend_lookup``):

- ``SAME_REQUEST`` (Octopush): the legacy and v1 APIs deduplicate on ``request_id`` (our
  message id), so the same request is sent again: a new ticket means the first never
  arrived, error 120 ("duplicate request_id", which the client returns as an "already
  accepted" receipt) means it did.
- ``BY_NUMBER`` (Primotexto): ``messages/status?identifier=`` gives the latest message to the
  number; one submitted after our attempt began is ours, none means the request never
  arrived.
- WhatsApp (Afilnet): ``getmessages`` lists the chat; our text sent after the attempt started
  means it arrived, none means it did not.
- ``NONE`` (Afilnet SMS): no lookup can tell. ``dispatch.ambiguous_policy`` decides: keep
  the row ``unknown`` for a person (``hold``, the default) or send again (``resend``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageKind, MessageStatus
from postier.ledger.states import transition
from postier.providers.base import LatestStatusLookup
from postier.providers.errors import (
    AmbiguousError,
    NotFoundError,
    ProviderError,
    UnsupportedFeatureError,
)
from postier.providers.profile import ResendLookup
from postier.providers.registry import find_profile
from postier.providers.results import is_already_accepted

if TYPE_CHECKING:
    from postier.dispatch.sending import Dispatcher

log = logging.getLogger(__name__)

#: the ``provider_message_id`` prefix of a row sent in a multi-recipient batch
#: (``dispatch.batches.BATCH_PREFIX``; not imported: batches builds on this module)
BATCH_TAG = "batch:"

#: clock skew allowed between our attempt's start and the provider's message time
LOOKUP_SLACK = timedelta(minutes=2)
#: the same for Primotexto's lookup by number, which cannot compare texts: kept small, so an
#: earlier message to the same number is not taken for ours (a resend within these seconds
#: still could be; the ledger event says the row was settled "by number")
NUMBER_LOOKUP_SLACK = timedelta(seconds=5)


class Resolution(Enum):
    SENT = "sent"
    RESEND = "resend"
    HOLD = "hold"


def resolve_ambiguous(dispatcher: Dispatcher, message: Message) -> Resolution:
    """Decide an ``unknown`` message: mark it sent, queue it again, or hold it for a person."""
    profile = find_profile(message.provider)
    lookup = ResendLookup.NONE if profile is None else profile.resend_lookup
    try:
        if (message.provider_message_id or "").startswith(BATCH_TAG):
            # sent in a multi-recipient request: only its group's request_id can tell, and
            # the batch reaper asks it for the whole group (``dispatch.batches``)
            resolution = Resolution.HOLD
        elif lookup is ResendLookup.SAME_REQUEST and message.kind == MessageKind.SMS:
            resolution = _resolve_by_dedupe(dispatcher, message)
        elif message.channel == "whatsapp":
            resolution = _resolve_by_chat(dispatcher, message)
        elif lookup is ResendLookup.BY_NUMBER:
            resolution = _resolve_by_number(dispatcher, message)
        else:
            resolution = (
                Resolution.RESEND
                if dispatcher.settings.dispatch.ambiguous_policy == "resend"
                else Resolution.HOLD
            )
    except ProviderError as exc:
        log.warning("lookup failed", extra={"message_id": message.id, "error": str(exc)})
        return Resolution.HOLD
    if resolution is Resolution.RESEND:
        with session_scope(dispatcher.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.UNKNOWN,
                MessageStatus.QUEUED,
                detail="lookup: not received by the provider; sending again",
            )
    return resolution


def _mark_sent(dispatcher: Dispatcher, message: Message, provider_id: str | None, how: str) -> None:
    with session_scope(dispatcher.engine) as session:
        transition(
            session,
            message.id,
            MessageStatus.UNKNOWN,
            MessageStatus.SENT,
            detail=f"lookup: {how}",
            provider_message_id=provider_id,
        )


def _resolve_by_dedupe(dispatcher: Dispatcher, message: Message) -> Resolution:
    try:
        receipt = dispatcher.call_provider(message)
    except AmbiguousError:
        return Resolution.HOLD
    if is_already_accepted(receipt):
        _mark_sent(dispatcher, message, None, "request_id already accepted (Octopush 120)")
    else:
        _mark_sent(dispatcher, message, receipt.message_id, "first request had not arrived; resent")
    return Resolution.SENT


def _resolve_by_number(dispatcher: Dispatcher, message: Message) -> Resolution:
    client = dispatcher.clients.sms(message.provider or "")
    if not isinstance(client, LatestStatusLookup):
        raise UnsupportedFeatureError("no lookup by number", provider=message.provider or "")
    report = client.latest_status_for(message.recipient)
    if report is None:
        return Resolution.RESEND
    submitted_ms = report.raw.get("submitted")
    started = message.sending_started_at
    if started is not None and isinstance(submitted_ms, (int, float)):
        submitted = datetime.fromtimestamp(submitted_ms / 1000, UTC)
        if submitted < started - NUMBER_LOOKUP_SLACK:
            return Resolution.RESEND
    _mark_sent(dispatcher, message, report.message_id, "found by number (Primotexto status)")
    return Resolution.SENT


def _resolve_by_chat(dispatcher: Dispatcher, message: Message) -> Resolution:
    payload = message.payload or {}
    platform = str(
        payload.get("platform_id") or dispatcher.settings.afilnet.whatsapp_platform_ids[0]
    )
    started = message.sending_started_at
    try:
        entries = dispatcher.clients.whatsapp.get_messages(platform, message.recipient)
    except NotFoundError:
        return Resolution.RESEND
    for entry in entries:
        if not entry.outbound:
            continue
        if message.body and entry.text != message.body:
            continue
        if started is not None and entry.at is not None and entry.at < started - LOOKUP_SLACK:
            continue
        _mark_sent(dispatcher, message, entry.message_id, "found in the WhatsApp chat")
        return Resolution.SENT
    return Resolution.RESEND
