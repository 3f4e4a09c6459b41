"""What application code calls to send: validate, store in the ledger, publish after commit.

Every input is checked with ``postier.rules`` before anything is stored; a bad one raises
``RuleViolation`` naming the field and the rule. The ledger row is committed before the
task is published, so a broker outage delays a message but never loses it (beat republishes
rows left unpublished). The same ``idempotency_key`` gives back the same message: no second
row, no second send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from celery import Celery
from sqlalchemy.engine import Engine

from postier.config import Settings, get_settings
from postier.dispatch.publishing import Publisher
from postier.dispatch.routing import choose_provider
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Channel, MessageKind, MessageStatus, new_message_id
from postier.ledger.queries import get_message, insert_messages
from postier.rules import (
    add_stop_mention,
    check_file_url,
    check_text,
    file_type_for_url,
    has_stop_mention,
    normalize_number,
    validate_sender,
)
from postier.rules.errors import RuleViolation

Category = Literal["notification", "marketing"]
#: a ledger row ready for ``insert_messages``
Row = dict[str, Any]

#: WhatsApp captions share the text limit of a WhatsApp message
WHATSAPP_TRANSPORT = "whatsapp"


@dataclass(frozen=True, slots=True)
class MessageHandle:
    """The ledger's id for an accepted message, and whether it was already there."""

    id: str
    status: str
    duplicate: bool = False


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


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What ``send_many`` accepted, and what it refused (by position in the input)."""

    accepted: list[MessageHandle] = field(default_factory=list)
    rejected: list[tuple[int, RuleViolation]] = field(default_factory=list)


def _check_send_at(send_at: datetime | None) -> datetime | None:
    if send_at is None:
        return None
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise RuleViolation(
            "send_at", "send_at.timezone", "send_at must be timezone-aware (e.g. Europe/Paris)"
        )
    return send_at.astimezone(UTC)


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key.strip() or len(key) > 200:
        raise RuleViolation(
            "idempotency_key", "idempotency_key.length", "must be 1 to 200 characters"
        )
    return key


class Producer:
    """Enqueues messages into the ledger and the broker. One per process is enough."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        celery_app: Celery | None = None,
    ) -> None:
        from postier.celery_app import create_celery_app

        self.settings = settings or get_settings()
        self.engine = engine if engine is not None else make_engine(self.settings.database_url)
        self.celery_app = celery_app or create_celery_app(self.settings, main="producer")
        self.publisher = Publisher(self.celery_app, self.engine)

    # -- building rows (validation only; nothing stored) ----------------------------------
    def build_sms(self, request: SmsRequest) -> Row:
        """A validated, unsaved ledger row for ``request``; raises ``RuleViolation``."""
        recipient = normalize_number(request.to, region=self.settings.default_region, field="to")
        if request.category not in ("notification", "marketing"):
            raise RuleViolation("category", "category.value", "use 'notification' or 'marketing'")
        provider = choose_provider(
            self.settings, channel="sms", category=request.category, requested=request.provider
        )
        transport = self.settings.octopush.transport if provider == "octopush" else None
        text = request.text
        octopush = self.settings.octopush
        if (
            provider == "octopush"
            and request.category == "marketing"
            and octopush.sms_type == "FR"
            and text.strip()
            and not has_stop_mention(text)
        ):
            # French premium marketing must carry "STOP au XXXXX" (seed 003, error 121)
            text = add_stop_mention(text, octopush.stop_short_code)
        info = check_text(provider, text, transport=transport, field="text")
        sender = validate_sender(request.sender, field="sender") if request.sender else None
        payload: dict[str, Any] = {}
        if sender:
            payload["sender"] = sender
        return self._row(
            kind=MessageKind.SMS,
            channel=Channel.SMS,
            provider=provider,
            recipient=recipient,
            body=text,
            payload=payload,
            category=request.category,
            send_at=_check_send_at(request.send_at),
            idempotency_key=_check_key(request.idempotency_key),
            parts=info.parts,
            campaign_id=request.campaign_id,
        )

    def _row(
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
    ) -> Row:
        now = datetime.now(UTC)
        scheduled = send_at is not None and send_at > now
        # a plain row, not a ``Message``: building 100,000 model objects costs seconds
        return {
            "id": new_message_id(),
            "channel": channel,
            "kind": kind,
            "provider": provider,
            "recipient": recipient,
            "body": body,
            "payload": payload,
            "category": category,
            "status": MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED,
            "send_at": send_at,
            "idempotency_key": idempotency_key,
            "parts": parts,
            "campaign_id": campaign_id,
            "created_at": now,
            "updated_at": now,
        }

    def _whatsapp_row(
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
    ) -> Row:
        recipient = normalize_number(to, region=self.settings.default_region, field="to")
        chosen = choose_provider(
            self.settings, channel="whatsapp", category="notification", requested=provider
        )
        platform = platform_id or next(iter(self.settings.afilnet.whatsapp_platform_ids), None)
        if not platform:
            raise RuleViolation(
                "platform_id",
                "platform_id.required",
                "no WhatsApp channel: pass platform_id or set"
                " POSTIER_AFILNET__WHATSAPP_PLATFORM_IDS",
            )
        return self._row(
            kind=kind,
            channel=Channel.WHATSAPP,
            provider=chosen,
            recipient=recipient,
            body=body,
            payload={**payload, "platform_id": str(platform)},
            category="notification",
            send_at=_check_send_at(send_at),
            idempotency_key=_check_key(idempotency_key),
        )

    # -- storing and publishing ----------------------------------------------------------
    def enqueue(self, rows: Sequence[Row]) -> list[MessageHandle]:
        """Store ``rows`` in one transaction, then publish the new, due ones."""
        if not rows:
            return []
        wanted = [row["id"] for row in rows]
        statuses = {row["id"]: row["status"] for row in rows}
        with session_scope(self.engine) as session:
            ids = insert_messages(session, rows)
        handles: list[MessageHandle] = []
        to_publish: list[str] = []
        for want, got in zip(wanted, ids, strict=True):
            duplicate = want != got
            status = statuses[want]
            if duplicate:
                with session_scope(self.engine) as session:
                    existing = get_message(session, got)
                    status = existing.status if existing else status
            elif status == MessageStatus.QUEUED:
                to_publish.append(got)
            handles.append(MessageHandle(id=got, status=str(status), duplicate=duplicate))
        if to_publish:
            self.publisher.publish(to_publish)
        return handles

    # -- the public calls ----------------------------------------------------------------
    def send_sms(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = None,
        category: Category = "notification",
        send_at: datetime | None = None,
        idempotency_key: str | None = None,
        provider: str | None = None,
    ) -> MessageHandle:
        """Queue one SMS (now, or at ``send_at``)."""
        row = self.build_sms(
            SmsRequest(to, text, sender, category, send_at, idempotency_key, provider)
        )
        return self.enqueue([row])[0]

    def send_whatsapp(
        self,
        to: str,
        text: str,
        *,
        platform_id: str | None = None,
        send_at: datetime | None = None,
        idempotency_key: str | None = None,
        provider: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp text message."""
        check_text("afilnet", text, transport=WHATSAPP_TRANSPORT, field="text")
        row = self._whatsapp_row(
            kind=MessageKind.WHATSAPP_TEXT,
            to=to,
            body=text,
            payload={},
            platform_id=platform_id,
            send_at=send_at,
            idempotency_key=idempotency_key,
            provider=provider,
        )
        return self.enqueue([row])[0]

    def send_whatsapp_file(
        self,
        to: str,
        file_url: str,
        *,
        file_type: str | None = None,
        caption: str | None = None,
        thumb_url: str | None = None,
        platform_id: str | None = None,
        send_at: datetime | None = None,
        idempotency_key: str | None = None,
        provider: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp file (image, video or document at a public URL)."""
        check_file_url(file_url, file_type, field="file_url")
        detected = file_type or file_type_for_url(file_url, field="file_url")
        payload: dict[str, Any] = {"file_url": file_url, "file_type": detected}
        if thumb_url:
            check_file_url(thumb_url, "image", field="thumb_url")
            payload["thumb_url"] = thumb_url
        if caption:
            check_text("afilnet", caption, transport=WHATSAPP_TRANSPORT, field="caption")
        row = self._whatsapp_row(
            kind=MessageKind.WHATSAPP_FILE,
            to=to,
            body=caption or "",
            payload=payload,
            platform_id=platform_id,
            send_at=send_at,
            idempotency_key=idempotency_key,
            provider=provider,
        )
        return self.enqueue([row])[0]

    def send_whatsapp_template(
        self,
        to: str,
        template_id: str,
        *,
        params: Mapping[str, str] | None = None,
        header: Mapping[str, Any] | None = None,
        platform_id: str | None = None,
        send_at: datetime | None = None,
        idempotency_key: str | None = None,
        provider: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp template message; ``params`` fill its ``{{name}}`` placeholders.

        ``header`` is ``{"file": url}`` or ``{"latitude", "longitude", "name", "address"}``.
        """
        from postier.dispatch.templates import header_from_payload

        if not str(template_id).strip():
            raise RuleViolation("template_id", "template_id.required", "template_id is empty")
        clean_params = {str(k): str(v) for k, v in (params or {}).items()}
        for key in clean_params:
            if not key.strip():
                raise RuleViolation("params", "params.name", "a template parameter has no name")
        header_dict = dict(header) if header else None
        header_from_payload(header_dict)  # validates
        row = self._whatsapp_row(
            kind=MessageKind.WHATSAPP_TEMPLATE,
            to=to,
            body="",
            payload={
                "template_id": str(template_id),
                "params": clean_params,
                "header": header_dict,
            },
            platform_id=platform_id,
            send_at=send_at,
            idempotency_key=idempotency_key,
            provider=provider,
        )
        return self.enqueue([row])[0]

    def send_many(self, requests: Iterable[SmsRequest]) -> BulkResult:
        """Queue many SMS in one transaction and one pipelined publish.

        Invalid requests are reported by position and the valid ones are still queued.
        """
        result = BulkResult()
        rows: list[Row] = []
        for index, request in enumerate(requests):
            try:
                rows.append(self.build_sms(request))
            except RuleViolation as exc:
                result.rejected.append((index, exc))
        result.accepted.extend(self.enqueue(rows))
        return result

    def status(self, message_id: str) -> str | None:
        """The ledger status of ``message_id`` (None when there is no such message)."""
        with session_scope(self.engine) as session:
            message = get_message(session, message_id)
            return str(message.status) if message else None
