"""Afilnet WhatsApp Business (``class=whatsapp``; docs/PROVIDERS.md, "Afilnet, class=whatsapp").

Numbers go in as E.164 (``+33612345678``) and out to Afilnet as international digits
(``33612345678``); numbers read back are turned into E.164 again.

The three sends answer no result (Afilnet WhatsApp API docs: "aucune valeur supplémentaire"), yet
the dispatcher needs an id for status lookups. When the answer carries a ``messageid`` it is
used; otherwise the client reads the chat (``getmessages``) right after the send and takes the
newest outbound message stamped no earlier than ``SEND_LOOKUP_WINDOW`` before the send
(matching the text when it knows it). Two sends to one chat inside that window with the same
text could swap ids; a failed lookup leaves ``message_id`` None and never fails the send.

``getunreadmessages`` marks what it returns as read, so it is called as a state-changing
call: a lost answer is ambiguous, not retried. Statuses (unconfirmed, docs/PROVIDERS.md) are
mapped by ``STATUS_STATES``; times are Afilnet's local time (``api.TIMEZONE``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from postier.providers.afilnet.api import NAME, AfilnetApi, parse_datetime
from postier.providers.errors import (
    ContentRejectedError,
    NotFoundError,
    ProviderError,
    RecipientRejectedError,
)
from postier.providers.results import (
    DeliveryState,
    InboundMessage,
    Provider,
    SendReceipt,
    StatusReport,
)
from postier.providers.transport import now_utc
from postier.rules.errors import RuleViolation
from postier.rules.files import FileType, file_type_for_url
from postier.rules.phones import to_international_digits

CLASS = "whatsapp"
CHANNEL = "whatsapp"

#: WhatsApp message status (lower-cased) -> our state; values unconfirmed (docs/PROVIDERS.md)
STATUS_STATES: dict[str, DeliveryState] = {
    "pending": DeliveryState.ACCEPTED,
    "queued": DeliveryState.ACCEPTED,
    "accepted": DeliveryState.ACCEPTED,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "failed": DeliveryState.UNDELIVERED,
    "undelivered": DeliveryState.UNDELIVERED,
    "rejected": DeliveryState.UNDELIVERED,
    "error": DeliveryState.UNDELIVERED,
}

#: how far before the send an outbound message may be stamped and still be the one we sent
#: (clock skew with Afilnet, whole-second stamps)
SEND_LOOKUP_WINDOW = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class FileHeader:
    """A template header with an image, video or document at a public URL."""

    url: str

    def to_option(self) -> dict[str, Any]:
        return {"file": self.url}


@dataclass(frozen=True, slots=True)
class LocationHeader:
    """A template header with a map location."""

    latitude: float
    longitude: float
    name: str
    address: str

    def __post_init__(self) -> None:
        if not -90 <= self.latitude <= 90 or not -180 <= self.longitude <= 180:
            raise ValueError("latitude/longitude: out of range")

    def to_option(self) -> dict[str, Any]:
        # the docs write "(0,0000, 0,0000)": the comma decimal is the French page's; we send dots
        return {
            "file": f"({self.latitude}, {self.longitude})",
            "location": {"name": self.name, "address": self.address},
        }


TemplateHeader = FileHeader | LocationHeader


def template_options(params: Mapping[str, str] | None, header: TemplateHeader | None) -> str | None:
    """The ``options`` JSON of ``sendmessagefromtemplate``, or None if empty.

    The form is the Afilnet WhatsApp API docs' annex (docs/PROVIDERS.md, "Afilnet, class=whatsapp").
    """
    options: dict[str, Any] = {}
    if header is not None:
        options["header"] = header.to_option()
    if params:
        options["params"] = dict(params)
    return json.dumps(options, ensure_ascii=False) if options else None


@dataclass(frozen=True, slots=True)
class ChatEntry:
    """One message of a chat as ``getchats``/``getmessages`` list it."""

    platform_id: str
    #: the other party, E.164
    destination: str
    message_id: str
    text: str
    #: True for a message we sent (``sent``/``issent`` = 1)
    outbound: bool
    status: str
    at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> DeliveryState:
        return STATUS_STATES.get(self.status.lower(), DeliveryState.UNKNOWN)


def _flag(value: Any) -> bool:
    """Afilnet's ``sent``/``issent``: 0/1 most likely, tolerate booleans and strings."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _entry(raw: Mapping[str, Any]) -> ChatEntry:
    sent = raw.get("sent", raw.get("issent", 0))
    destination = str(raw.get("destination", ""))
    return ChatEntry(
        platform_id=str(raw.get("platformid", "")),
        destination=destination if destination.startswith("+") else f"+{destination}",
        message_id=str(raw.get("messageid", "")),
        text=str(raw.get("message") or ""),
        outbound=_flag(sent),
        status=str(raw.get("status") or ""),
        at=parse_datetime(raw.get("datetime")),
        raw=dict(raw),
    )


def _entries(result: Any) -> list[ChatEntry]:
    if not isinstance(result, list):
        return []
    return [_entry(item) for item in result if isinstance(item, Mapping)]


def _digits(e164: str) -> str:
    try:
        return to_international_digits(e164, field="destination")
    except RuleViolation as exc:
        raise RecipientRejectedError(str(exc), provider=NAME) from exc


def _file_type_for_url(url: str) -> FileType:
    """The sendfile ``type`` its extension names (``postier.rules.files``)."""
    try:
        return file_type_for_url(url, field="file_url")
    except RuleViolation as exc:
        raise ContentRejectedError(str(exc), provider=NAME) from exc


class AfilnetWhatsApp:
    """Sends WhatsApp messages through an Afilnet channel (``platformid``) and reads its chats."""

    provider = Provider.AFILNET

    def __init__(self, api: AfilnetApi) -> None:
        self.api = api

    def send_message(self, platform_id: str, destination: str, text: str) -> SendReceipt:
        """A text message (``sendmessage``); the chat is opened if needed."""
        params = {"platformid": platform_id, "destination": _digits(destination), "message": text}
        return self._send("sendmessage", params, platform_id, destination, text)

    def send_file(
        self,
        platform_id: str,
        destination: str,
        file_url: str,
        file_type: FileType | None = None,
        caption: str | None = None,
        thumb_url: str | None = None,
    ) -> SendReceipt:
        """A file at a public URL (``sendfile``) into an existing chat.

        ``file_type`` defaults to the one its extension names; Afilnet checks the URL, the
        type and the thumbnail (INCORRECT_FILEURL/FILETYPE/THUMBURL -> ContentRejectedError).
        """
        params = {
            "platformid": platform_id,
            "destination": _digits(destination),
            "type": file_type or _file_type_for_url(file_url),
            "fileurl": file_url,
        }
        if thumb_url:
            params["thumburl"] = thumb_url
        if caption:
            params["message"] = caption
        return self._send("sendfile", params, platform_id, destination, caption or None)

    def send_template(
        self,
        platform_id: str,
        destination: str,
        template_id: str,
        *,
        params: Mapping[str, str] | None = None,
        header: TemplateHeader | None = None,
    ) -> SendReceipt:
        """An approved template (``sendmessagefromtemplate``); ``params`` fill its ``{{name}}``."""
        call = {
            "idtemplate": template_id,
            "platformid": platform_id,
            "destination": _digits(destination),
        }
        options = template_options(params, header)
        if options is not None:
            call["options"] = options
        return self._send("sendmessagefromtemplate", call, platform_id, destination, None)

    def get_chats(self, platform_id: str) -> list[ChatEntry]:
        """The latest message of each chat of the channel; [] when it has no chat."""
        try:
            result = self.api.call(
                CLASS, "getchats", {"platformid": platform_id}, changes_state=False
            )
        except NotFoundError as exc:
            # the docs list CHAT_NOT_FOUND for getchats: a channel without any chat
            if exc.code == "CHAT_NOT_FOUND":
                return []
            raise
        return _entries(result)

    def get_messages(self, platform_id: str, destination: str) -> list[ChatEntry]:
        """Every message of the chat with ``destination`` (E.164)."""
        params = {"platformid": platform_id, "destination": _digits(destination)}
        return _entries(self.api.call(CLASS, "getmessages", params, changes_state=False))

    def get_unread_messages(self, platform_id: str, destination: str) -> list[InboundMessage]:
        """The chat's unread inbound messages; Afilnet marks them read, so each comes once.

        Reading changes state, so a lost answer is not retried blindly: it raises
        ``AmbiguousError`` (a retry would answer [] and the messages would be missed). The
        caller then reconciles with ``get_messages``, which still lists them (``outbound``
        False) with the ids it already knows.
        """
        params = {"platformid": platform_id, "destination": _digits(destination)}
        result = self.api.call(CLASS, "getunreadmessages", params, changes_state=True)
        return [
            InboundMessage(
                provider=Provider.AFILNET,
                message_id=entry.message_id,
                sender=entry.destination,
                text=entry.text,
                received_at=entry.at,
                channel=CHANNEL,
                raw=entry.raw,
            )
            for entry in _entries(result)
            if not entry.outbound
        ]

    def delivery_status(self, platform_id: str, destination: str, message_id: str) -> StatusReport:
        """The status of one sent message, read from its chat; UNKNOWN if the chat lacks it."""
        try:
            entries = self.get_messages(platform_id, destination)
        except NotFoundError as exc:
            if exc.code != "CHAT_NOT_FOUND":
                raise
            entries = []
        for entry in entries:
            if entry.message_id == message_id:
                return StatusReport(
                    provider=Provider.AFILNET,
                    message_id=message_id,
                    state=entry.state,
                    provider_status=entry.status,
                    at=entry.at,
                    raw=entry.raw,
                )
        return StatusReport(
            provider=Provider.AFILNET,
            message_id=message_id,
            state=DeliveryState.UNKNOWN,
            provider_status="",
        )

    def _send(
        self,
        method: str,
        params: Mapping[str, str],
        platform_id: str,
        destination: str,
        text: str | None,
    ) -> SendReceipt:
        started = now_utc()
        result = self.api.call(CLASS, method, params, changes_state=True)
        if isinstance(result, Mapping) and result.get("messageid"):
            message_id: str | None = str(result["messageid"])
            found: Mapping[str, Any] = {}
        else:
            entry = self._find_sent(platform_id, destination, started, text)
            message_id = entry.message_id if entry is not None else None
            found = entry.raw if entry is not None else {}
        return SendReceipt(
            provider=Provider.AFILNET,
            message_id=message_id,
            raw={"result": result, "message": found},
        )

    def _find_sent(
        self, platform_id: str, destination: str, started: datetime, text: str | None
    ) -> ChatEntry | None:
        """The message a send just created, found in its chat (module docstring)."""
        try:
            entries = self.get_messages(platform_id, destination)
        except ProviderError:
            return None
        since = started.replace(microsecond=0) - SEND_LOOKUP_WINDOW
        candidates = [
            (position, entry)
            for position, entry in enumerate(entries)
            if entry.outbound and entry.message_id and (entry.at is None or entry.at >= since)
        ]
        if text is not None:
            candidates = [c for c in candidates if c[1].text == text] or candidates
        if not candidates:
            return None
        floor = datetime.min.replace(tzinfo=started.tzinfo)
        return max(candidates, key=lambda c: (c[1].at or floor, c[0]))[1]
