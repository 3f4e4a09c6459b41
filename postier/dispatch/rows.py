"""Ledger rows built from what callers ask for, validated by ``postier.rules`` first.

The producers (``send_sms``…) and the campaign fan-out in the worker build rows the same way,
so a campaign message is checked exactly like a single send. Nothing here stores anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final, Literal

from postier.config import Settings
from postier.dispatch.lanes import Priority, lane_for
from postier.dispatch.routing import (
    choose_provider,
    prepare_text,
    text_policy_for,
    text_transport_for,
)
from postier.ledger.models import (
    Channel,
    MessageKind,
    MessageStatus,
    new_message_id,
    new_message_ids,
)
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
from postier.rules.phones import plain_french_mobile
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


@dataclass(frozen=True, slots=True)
class _CheckedText:
    """What one text of one category and provider request comes to on its route."""

    provider: str
    body: str
    parts: int
    #: ``payload["text_policy"]`` when the policy changed the text
    policy: dict[str, Any] | None


class RowMemo:
    """What the rows of one producer call share: one clock reading, and each distinct text's
    checks (a bulk send of one text checks it once, not once per recipient; a refusal is not
    remembered, it raises for each row that has it).

    Scoped to one call, so a change of settings between calls is always seen.
    """

    __slots__ = ("hash_key", "ids", "now", "rows", "senders", "texts")

    #: distinct texts (and rows) remembered; beyond, each further one is checked row by row
    MAX_TEXTS = 4096

    def __init__(self, now: datetime, hash_key: str = "") -> None:
        self.now = now
        self.hash_key = hash_key
        self.texts: dict[tuple[str, str, str | None], _CheckedText] = {}
        self.senders: dict[str, str] = {}
        #: a checked row by everything of its request but the number (``_shared_key``)
        self.rows: dict[tuple[Any, ...], Row] = {}
        #: the ids of the call's rows, drawn a block at a time
        self.ids = new_message_ids()


def _text_key(request: SmsRequest) -> tuple[str, str, str | None] | None:
    """``request``'s key in ``RowMemo.texts``; None for values of the wrong type (checked,
    and refused, row by row)."""
    text, category, provider = request.text, request.category, request.provider
    if type(text) is str and type(category) is str and (provider is None or type(provider) is str):
        return (text, category, provider)
    return None


#: everything of a request but its number: ``send_at`` and ``idempotency_key`` first
_SHAPE: Final = attrgetter(
    "send_at",
    "idempotency_key",
    "text",
    "category",
    "provider",
    "sender",
    "campaign_id",
    "priority",
    "callback_url",
)
#: the types a remembered request's values may have (a subclass of ``str`` is checked alone)
_PLAIN_TYPES: Final = frozenset({str, type(None)})


def _shared_key(request: SmsRequest) -> tuple[Any, ...] | None:
    """``request``'s key in ``RowMemo.rows``: all of it but the number. None when it has a
    value of its own (``send_at``, ``idempotency_key``) or one of a type the checks refuse
    (checked, and refused, row by row).

    One ``attrgetter`` call and one set test (both in C) per row: this runs for every row of
    a bulk send. A ``None`` text or category is a key too: its checks refuse it, so no row is
    ever remembered under it.
    """
    shape = _SHAPE(request)
    if shape[0] is not None or shape[1] is not None:
        return None
    if not _PLAIN_TYPES.issuperset(map(type, shape)):
        return None
    return shape


def _copied_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` copied two levels deep (a row is the caller's to change)."""
    return {
        key: dict(value) if isinstance(value, dict) else value for key, value in payload.items()
    }


def _copied(row: Row) -> Row:
    """``row`` with its payload copied."""
    copy = row.copy()
    payload = row["payload"]
    copy["payload"] = _copied_payload(payload) if payload else {}
    return copy


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

    def _marketing_send_at(
        self, send_at: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """``send_at``, or the next instant marketing may go out when it falls in quiet hours."""
        due = send_at if send_at is not None else (now or self.clock())
        if self.quiet_hours.is_allowed(due):
            return send_at
        return self.quiet_hours.next_allowed(due)

    def _check_send_at(self, send_at: datetime | None) -> datetime | None:
        return check_send_at(send_at, now=self.clock())

    def memo(self) -> RowMemo:
        """A fresh ``RowMemo`` for the rows of one call."""
        return RowMemo(self.clock(), self.settings.retention.hash_key.get_secret_value())

    def sms(self, request: SmsRequest, memo: RowMemo | None = None) -> Row:
        """A validated, unsaved ledger row for ``request``; raises ``RuleViolation``.

        ``memo``: shared by the rows of one call (``memo()``): they are stamped with one
        clock reading, and a text repeated across them is checked once.
        """
        if not isinstance(request, SmsRequest):
            raise RuleViolation("request", "request.type", "must be an SmsRequest")
        return self.sms_to(request.to, request, memo)

    def sms_to(self, to: str, request: SmsRequest, memo: RowMemo | None = None) -> Row:
        """``sms`` of ``request`` sent to ``to`` instead of ``request.to``: a campaign's chunk
        builds its contacts' rows from one request (an ``SmsRequest`` per row cost a third
        of the row)."""
        if memo is None:
            memo = self.memo()
        region = self.settings.default_region
        # a plainly written mobile passes the string checks and libphonenumber's: one match
        recipient = plain_french_mobile(to, region) if type(to) is str else None
        if recipient is None:
            recipient = normalize_number(_check_to(to), region=region, field="to")
        shared = _shared_key(request)
        if shared is not None:
            # everything but the number was checked for an earlier row of this call: its row
            # with this number (and a new id) is the row the checks below would build
            known = memo.rows.get(shared)
            if known is not None:
                row = known.copy()
                payload = known["payload"]
                row["payload"] = _copied_payload(payload) if payload else {}
                row["id"] = next(memo.ids)
                row["recipient"] = recipient
                if memo.hash_key:
                    row["recipient_hash"] = number_hash(recipient, memo.hash_key)
                return row
            built = self._checked_sms(request, recipient, memo)
            if len(memo.rows) < RowMemo.MAX_TEXTS:
                memo.rows[shared] = _copied(built)
            return built
        return self._checked_sms(request, recipient, memo)

    def _checked_sms(self, request: SmsRequest, recipient: str, memo: RowMemo) -> Row:
        """``sms``'s row, every check made (the text's through ``memo``)."""
        key = _text_key(request)
        checked = memo.texts.get(key) if key is not None else None
        if checked is None:
            checked = self._checked_text(request)
            if key is not None and len(memo.texts) < RowMemo.MAX_TEXTS:
                memo.texts[key] = checked
        send_at = check_send_at(request.send_at, now=memo.now)
        if request.category == "marketing":
            send_at = self._marketing_send_at(send_at, memo.now)
        sender = request.sender
        if sender is not None:
            known = memo.senders.get(sender) if type(sender) is str else None
            if known is None:
                known = check_string(sender, field="sender", max_chars=64)
                known = validate_sender(known, field="sender") if known else known
                memo.senders[known] = known
            sender = known
        campaign_id = check_optional_string(request.campaign_id, field="campaign_id", max_chars=32)
        payload: dict[str, Any] = {}
        if sender:
            payload["sender"] = sender
        if checked.policy is not None:
            payload["text_policy"] = dict(checked.policy)
        return self.row(
            kind=MessageKind.SMS,
            channel=Channel.SMS,
            provider=checked.provider,
            recipient=recipient,
            body=checked.body,
            payload=payload,
            category=request.category,
            send_at=send_at,
            idempotency_key=_check_key(request.idempotency_key),
            parts=checked.parts,
            campaign_id=campaign_id,
            priority=request.priority,
            callback_url=request.callback_url,
            now=memo.now,
        )

    def _checked_text(self, request: SmsRequest) -> _CheckedText:
        """The text, category and provider of ``request`` checked on its route (the checks
        of ``sms`` that depend on nothing else)."""
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
        info = check_text(provider, outcome.text, transport=transport, field="text")
        policy = outcome.to_payload() if outcome.changed else None
        return _CheckedText(provider, outcome.text, info.parts, policy)

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
        now: datetime | None = None,
    ) -> Row:
        """A plain row (building 100,000 ``Message`` objects would cost seconds)."""
        if callback_url is not None:
            callback_url = check_callback_url(
                callback_url, allow_http=self.settings.callbacks.allow_http
            )
        lane = lane_for(
            category, threshold=self.settings.dispatch.bulk_threshold, priority=priority
        )
        if now is None:
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
