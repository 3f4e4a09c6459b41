"""The producer: what ``producers.send_sms`` and friends do (the public API is ``producers``).

What application code calls to send: validate, store in the ledger, publish after commit.

Every input is checked with ``postier.rules`` before anything is stored; a bad one raises
``RuleViolation`` naming the field and the rule. The ledger row is committed before the
task is published, so a broker outage delays a message but never loses it (beat republishes
rows left unpublished). The same ``idempotency_key`` gives back the same message: no second
row, no second send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy.engine import Engine

from postier.config import Settings, get_settings
from postier.dispatch.lanes import Priority
from postier.dispatch.publishing import Publisher
from postier.dispatch.routing import WHATSAPP_PROVIDERS
from postier.dispatch.rows import (
    MAX_TEXT_CHARS,
    WHATSAPP_TRANSPORT,
    Category,
    Row,
    RowBuilder,
    SmsRequest,
)
from postier.ledger.bulk import collector_paused
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Lane, MessageKind, MessageStatus, utcnow
from postier.ledger.queries import get_message, insert_messages, statuses_of
from postier.rules import (
    check_file_url,
    check_text,
    file_type_for_url,
)
from postier.rules.errors import RuleViolation
from postier.rules.inputs import (
    MAX_ID_CHARS,
    check_header,
    check_optional_string,
    check_string,
    check_template_params,
)

#: a file URL (or thumbnail URL) longer than this is refused
MAX_URL_CHARS = 2048
#: a row's lane as stored, by the value it may hold (saves an Enum call per row)
_LANES: dict[Any, Lane] = {**{lane: lane for lane in Lane}, **{lane.value: lane for lane in Lane}}
#: no value yet (a status or lane may be None)
_UNSET: Any = object()
#: messages one ``send_many`` call may queue (larger sends: a campaign, or several calls)
MAX_BULK_ROWS = 100_000

__all__ = [
    "BulkResult",
    "Category",
    "MessageHandle",
    "Priority",
    "Producer",
    "Row",
    "SmsRequest",
    "default_producer",
]


@dataclass(frozen=True, slots=True)
class MessageHandle:
    """The ledger's id for an accepted message, and whether it was already there."""

    id: str
    status: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What ``send_many`` accepted, and what it refused (by position in the input)."""

    accepted: list[MessageHandle] = field(default_factory=list)
    rejected: list[tuple[int, RuleViolation]] = field(default_factory=list)


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
        self.rows = RowBuilder(self.settings)

    # -- building rows (validation only; nothing stored) ----------------------------------
    def build_sms(self, request: SmsRequest) -> Row:
        """A validated, unsaved ledger row for ``request``; raises ``RuleViolation``."""
        return self.rows.sms(request)

    # -- storing and publishing ----------------------------------------------------------
    def enqueue(self, rows: Sequence[Row]) -> list[MessageHandle]:
        """Store ``rows`` in one transaction, then publish the new, due ones."""
        if not rows:
            return []
        # stamped as handed to the broker before it is: one UPDATE per 500 rows saved (after
        # a bulk insert PostgreSQL's stale statistics made each a scan); the publish clears
        # the stamp of any id the broker does not take, and a crash in between leaves rows
        # that look published ``republish_after`` ago at most, which beat republishes
        now = utcnow()
        queued = MessageStatus.QUEUED
        wanted: list[str] = []
        for row in rows:
            wanted.append(row["id"])
            if row["status"] == queued:
                row["published_at"] = now
        with session_scope(self.engine) as session:
            ids = insert_messages(session, rows)
        stored: dict[str, str] = {}
        if ids != wanted:
            duplicates = {got for want, got in zip(wanted, ids, strict=True) if want != got}
            with session_scope(self.engine) as session:
                stored = statuses_of(session, duplicates)
        handles: list[MessageHandle] = []
        to_publish: dict[Lane, list[str]] = {}
        # a status or lane is worked out again only when it is not the previous row's object:
        # a call's rows share them, and hashing an Enum member is a Python call
        last_status: Any = _UNSET
        last_lane: Any = _UNSET
        text = ""
        due = False
        publishing: list[str] = []
        for row, want, got in zip(rows, wanted, ids, strict=True):
            status = row["status"]
            if want != got:
                handles.append(MessageHandle(got, str(stored.get(got, status)), True))
                continue
            if status is not last_status:
                last_status, text, due = status, str(status), status == queued
            if due:
                lane = row.get("lane")
                if lane is not last_lane:
                    last_lane = lane
                    known = _LANES.get(lane or Lane.TRANSACTIONAL)
                    publishing = to_publish.setdefault(known or Lane(row["lane"]), [])
                publishing.append(got)
            handles.append(MessageHandle(got, text))
        for lane, ids_of_lane in to_publish.items():
            self.publisher.publish(ids_of_lane, lane=lane, stamped=True)
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
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> MessageHandle:
        """Queue one SMS (now, or at ``send_at``).

        ``priority``: the lane, "transactional" (default for notifications) or "bulk" (default
        for marketing); see ``postier.dispatch.lanes``. ``callback_url``: an https URL its
        status events are POSTed to, instead of the global ``callbacks.target`` (README,
        "Status callbacks"); every ``send_*`` takes it.
        """
        row = self.build_sms(
            SmsRequest(
                to,
                text,
                sender,
                category,
                send_at,
                idempotency_key,
                provider,
                priority=priority,
                callback_url=callback_url,
            )
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
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp text message (transactional lane unless ``priority="bulk"``)."""
        check_string(text, field="text", max_chars=MAX_TEXT_CHARS)
        check_text(WHATSAPP_PROVIDERS[0], text, transport=WHATSAPP_TRANSPORT, field="text")
        row = self.rows.whatsapp(
            kind=MessageKind.WHATSAPP_TEXT,
            to=to,
            body=text,
            payload={},
            platform_id=platform_id,
            send_at=send_at,
            idempotency_key=idempotency_key,
            provider=provider,
            priority=priority,
            callback_url=callback_url,
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
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp file (image, video or document at a public URL)."""
        check_string(file_url, field="file_url", max_chars=MAX_URL_CHARS)
        check_optional_string(file_type, field="file_type", max_chars=32)
        check_optional_string(thumb_url, field="thumb_url", max_chars=MAX_URL_CHARS)
        check_optional_string(caption, field="caption", max_chars=MAX_TEXT_CHARS)
        check_file_url(file_url, file_type, field="file_url")
        detected = file_type or file_type_for_url(file_url, field="file_url")
        payload: dict[str, Any] = {"file_url": file_url, "file_type": detected}
        if thumb_url:
            check_file_url(thumb_url, "image", field="thumb_url")
            payload["thumb_url"] = thumb_url
        if caption:
            check_text(
                WHATSAPP_PROVIDERS[0], caption, transport=WHATSAPP_TRANSPORT, field="caption"
            )
        row = self.rows.whatsapp(
            kind=MessageKind.WHATSAPP_FILE,
            to=to,
            body=caption or "",
            payload=payload,
            platform_id=platform_id,
            send_at=send_at,
            idempotency_key=idempotency_key,
            provider=provider,
            priority=priority,
            callback_url=callback_url,
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
        priority: Priority | None = None,
        callback_url: str | None = None,
    ) -> MessageHandle:
        """Queue one WhatsApp template message; ``params`` fill its ``{{name}}`` placeholders.

        ``header`` is ``{"file": url}`` or ``{"latitude", "longitude", "name", "address"}``.
        """
        from postier.dispatch.templates import header_from_payload

        check_string(template_id, field="template_id", max_chars=MAX_ID_CHARS, required=True)
        clean_params = check_template_params(params)
        header_dict = check_header(header) or None
        header_from_payload(header_dict)  # validates
        row = self.rows.whatsapp(
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
            priority=priority,
            callback_url=callback_url,
        )
        return self.enqueue([row])[0]

    def send_many(self, requests: Iterable[SmsRequest]) -> BulkResult:
        """Queue many SMS in one transaction and one pipelined publish.

        Invalid requests are reported by position and the valid ones are still queued. More
        than ``dispatch.bulk_threshold`` requests go on the bulk lane, except those that name
        their own ``priority``.
        """
        with collector_paused():
            return self._send_many(requests)

    def _send_many(self, requests: Iterable[SmsRequest]) -> BulkResult:
        result = BulkResult()
        rows: list[Row] = []
        chosen: list[bool] = []
        memo = self.rows.memo()
        build = self.rows.sms
        for index, request in enumerate(requests):
            try:
                rows.append(build(request, memo))
                chosen.append(request.priority is not None)
            except RuleViolation as exc:
                result.rejected.append((index, exc))
        if len(rows) > MAX_BULK_ROWS:
            raise RuleViolation(
                "requests", "requests.count", f"{len(rows)} messages; at most {MAX_BULK_ROWS}"
            )
        if len(rows) > self.settings.dispatch.bulk_threshold:
            for row, fixed in zip(rows, chosen, strict=True):
                if not fixed:
                    row["lane"] = Lane.BULK
        result.accepted.extend(self.enqueue(rows))
        return result

    def cancel(self, message_id: str, *, detail: str = "cancelled by the caller") -> str | None:
        """Cancel a message not handed to a provider yet (``scheduled`` or ``queued``).

        Returns its status afterwards: ``"cancelled"``, or the status that kept it from being
        cancelled (it was already sent, say); None when there is no such message.
        """
        from postier.ledger.states import transition

        cancellable = [MessageStatus.SCHEDULED, MessageStatus.QUEUED]
        with session_scope(self.engine) as session:
            if transition(session, message_id, cancellable, MessageStatus.CANCELLED, detail=detail):
                return str(MessageStatus.CANCELLED)
            message = get_message(session, message_id)
            return str(message.status) if message else None

    def status(self, message_id: str) -> str | None:
        """The ledger status of ``message_id`` (None when there is no such message)."""
        with session_scope(self.engine) as session:
            message = get_message(session, message_id)
            return str(message.status) if message else None


@lru_cache(maxsize=1)
def default_producer() -> Producer:
    """The process-wide producer, built on first use from ``POSTIER_*`` settings (what
    ``producers.send_sms`` and the CLI use)."""
    return Producer()
