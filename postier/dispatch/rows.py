"""Ledger rows built from what callers ask for, validated by ``postier.rules`` first.

The producers (``send_sms``…) and the campaign fan-out in the worker build rows the same way,
so a campaign message is checked exactly like a single send. Nothing here stores anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from postier.config import Settings
from postier.dispatch.lanes import Priority, lane_for
from postier.dispatch.routing import (
    choose_provider,
    prepare_text,
    text_policy_for,
    text_transport_for,
)
from postier.ledger.models import Channel, MessageKind, MessageStatus, new_message_id
from postier.rules import (
    PolicyOutcome,
    apply_text_policy,
    check_text,
    normalize_number,
    number_hash,
    validate_sender,
)
from postier.rules.callback_targets import check_callback_url
from postier.rules.errors import RuleViolation
from postier.rules.inputs import (
    MAX_ID_CHARS,
    check_optional_string,
    check_send_at,
    check_string,
)
from postier.rules.quiet_hours import QuietHours

Category = Literal["notification", "marketing"]
#: a ledger row ready for ``insert_messages``
Row = dict[str, Any]

#: WhatsApp captions share the text limit of a WhatsApp message
WHATSAPP_TRANSPORT = "whatsapp"
#: a text longer than this is refused before any provider's own limit is looked at
MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class SmsRequest:
    """One SMS for ``send_many``."""

    to: str
    text: str
    sender: str | None = None
    category: Category = "notification"
    send_at: datetime | None = None
    idempotency_key: str | None = None
    provider: str | None = None
    campaign_id: str | None = None
    #: the lane: "transactional" or "bulk" (default: by category and the call's size)
    priority: Priority | None = None
    #: where its status events go (https), instead of the global ``callbacks.target``
    callback_url: str | None = None


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise RuleViolation(
            "idempotency_key", "idempotency_key.length", "must be 1 to 200 characters"
        )
    return check_string(key, field="idempotency_key", max_chars=200)


def _check_provider(provider: str | None) -> str | None:
    return check_optional_string(provider, field="provider", max_chars=MAX_ID_CHARS)


def _check_to(to: str) -> str:
    return check_string(to, field="to", max_chars=64)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def sms_text(
    settings: Settings, provider: str, text: str, *, transport: str | None = None
) -> PolicyOutcome:
    """``text`` under the text policy of ``provider``'s route (``postier.rules.textpolicy``)."""
    return apply_text_policy(
        provider, text, text_policy_for(settings, provider), transport=transport, field="text"
    )


class RowBuilder:
    """Validated, unsaved ledger rows; raises ``RuleViolation`` naming the field and rule.

    A marketing SMS due inside the French quiet hours (20:00–08:00 Europe/Paris, Sundays,
    public holidays: ``postier.rules.quiet_hours``) is scheduled for the next allowed
    instant instead, like a campaign; the ledger event says so.

    An SMS text passes its route's text policy first: characters the provider's alphabet
    lacks are refused, transliterated or sent as UCS-2. A transliterated text is stored as
    sent (``body``, and the parts it costs), the text as written and every change in
    ``payload["text_policy"]``.
    """

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.quiet_hours = QuietHours.from_settings(settings.campaigns)

    def _marketing_send_at(self, send_at: datetime | None) -> datetime | None:
        """``send_at``, or the next instant marketing may go out when it falls in quiet hours."""
        due = send_at if send_at is not None else self.clock()
        if self.quiet_hours.is_allowed(due):
            return send_at
        return self.quiet_hours.next_allowed(due)

    def _check_send_at(self, send_at: datetime | None) -> datetime | None:
        return check_send_at(send_at, now=self.clock())

    def sms(self, request: SmsRequest) -> Row:
        """A validated, unsaved ledger row for ``request``; raises ``RuleViolation``."""
        if not isinstance(request, SmsRequest):
            raise RuleViolation("request", "request.type", "must be an SmsRequest")
        recipient = normalize_number(
            _check_to(request.to), region=self.settings.default_region, field="to"
        )
        check_string(request.text, field="text", max_chars=MAX_TEXT_CHARS)
        if request.category not in ("notification", "marketing"):
            raise RuleViolation("category", "category.value", "use 'notification' or 'marketing'")
        provider = choose_provider(
            self.settings,
            channel="sms",
            category=request.category,
            requested=_check_provider(request.provider),
        )
        transport = text_transport_for(self.settings, provider)
        # e.g. French premium marketing on Octopush must carry "STOP au XXXXX" (error 121)
        text = prepare_text(self.settings, provider, request.text, request.category)
        outcome = sms_text(self.settings, provider, text, transport=transport)
        text = outcome.text
        info = check_text(provider, text, transport=transport, field="text")
        send_at = self._check_send_at(request.send_at)
        if request.category == "marketing":
            send_at = self._marketing_send_at(send_at)
        sender = check_optional_string(request.sender, field="sender", max_chars=64)
        sender = validate_sender(sender, field="sender") if sender else None
        campaign_id = check_optional_string(request.campaign_id, field="campaign_id", max_chars=32)
        payload: dict[str, Any] = {}
        if sender:
            payload["sender"] = sender
        if outcome.changed:
            payload["text_policy"] = outcome.to_payload()
        return self.row(
            kind=MessageKind.SMS,
            channel=Channel.SMS,
            provider=provider,
            recipient=recipient,
            body=text,
            payload=payload,
            category=request.category,
            send_at=send_at,
            idempotency_key=_check_key(request.idempotency_key),
            parts=info.parts,
            campaign_id=campaign_id,
            priority=request.priority,
            callback_url=request.callback_url,
        )

    def row(
        self,
        *,
        kind: MessageKind,
        channel: Channel,
        provider: str,
        recipient: str,
        body: str,
        payload: dict[str, Any],
        category: str,
        send_at: datetime | None,
        idempotency_key: str | None,
        parts: int | None = None,
        campaign_id: str | None = None,
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> Row:
        """A plain row (building 100,000 ``Message`` objects would cost seconds)."""
        if callback_url is not None:
            callback_url = check_callback_url(
                callback_url, allow_http=self.settings.callbacks.allow_http
            )
        lane = lane_for(
            category, threshold=self.settings.dispatch.bulk_threshold, priority=priority
        )
        now = self.clock()
        scheduled = send_at is not None and send_at > now
        hash_key = self.settings.retention.hash_key.get_secret_value()
        return {
            "id": new_message_id(),
            "channel": channel,
            "kind": kind,
            "provider": provider,
            "recipient": recipient,
            "recipient_hash": number_hash(recipient, hash_key) if hash_key else None,
            "body": body,
            "payload": payload,
            "category": category,
            "status": MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED,
            "send_at": send_at,
            "idempotency_key": idempotency_key,
            "parts": parts,
            "campaign_id": campaign_id,
            "lane": lane,
            "callback_url": callback_url,
            "created_at": now,
            "updated_at": now,
        }

    def whatsapp(
        self,
        *,
        kind: MessageKind,
        to: str,
        body: str,
        payload: dict[str, Any],
        platform_id: str | None,
        send_at: datetime | None,
        idempotency_key: str | None,
        provider: str | None,
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> Row:
        """A WhatsApp row of ``kind``; ``payload`` holds what the kind needs (file, template)."""
        recipient = normalize_number(_check_to(to), region=self.settings.default_region, field="to")
        check_string(body, field="text", max_chars=MAX_TEXT_CHARS)
        chosen = choose_provider(
            self.settings,
            channel="whatsapp",
            category="notification",
            requested=_check_provider(provider),
        )
        platform_id = check_optional_string(
            platform_id, field="platform_id", max_chars=MAX_ID_CHARS
        )
        platform = platform_id or next(iter(self.settings.afilnet.whatsapp_platform_ids), None)
        if not platform:
            raise RuleViolation(
                "platform_id",
                "platform_id.required",
                "no WhatsApp channel: pass platform_id or set"
                " POSTIER_AFILNET__WHATSAPP_PLATFORM_IDS",
            )
        return self.row(
            kind=kind,
            channel=Channel.WHATSAPP,
            provider=chosen,
            recipient=recipient,
            body=body,
            payload={**payload, "platform_id": str(platform)},
            category="notification",
            send_at=self._check_send_at(send_at),
            idempotency_key=_check_key(idempotency_key),
            priority=priority,
            callback_url=callback_url,
        )
