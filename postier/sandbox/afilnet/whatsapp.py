"""Simulated Afilnet ``class=whatsapp`` (docs/PROVIDERS.md, "Afilnet, class=whatsapp").

Choices where Afilnet's WhatsApp API docs are silent (each is one constant or one branch below):

- Sends answer ``success`` with no ``result``, as documented ("aucune valeur
  supplémentaire"); ``SEND_RESULT_HAS_MESSAGEID`` switches on ``{"messageid": …}`` for a
  provider that turns out to return it. Clients find the id with ``getmessages``.
- ``destination`` must be the international number as digits (``33612345678``); anything
  else answers ``INCORRECT_DESTINATION`` (not in the docs; the client maps it to a rejected
  recipient).
- ``sendmessage`` and ``sendmessagefromtemplate`` open the chat when needed; ``sendfile``
  documents ``CHAT_NOT_FOUND`` and so needs an existing chat (WhatsApp only lets a business
  send free media inside a conversation).
- Outbound ``status``: ``sent`` → ``delivered`` after ``core.delivery_delay`` → ``read`` one
  more delay later; ``failed`` for numbers ending in 9999 (``SentRecord.delivery_state``).
  Inbound: ``received`` until read, then ``read``. ``sent``/``issent`` are 0/1 integers,
  ``datetime`` is ``yyyy-mm-dd hh:mm:ss`` in Madrid time (``AFILNET_TIMEZONE``).
- ``getchats`` lists the latest message of each chat of the channel, newest first; a channel
  without any chat answers ``CHAT_NOT_FOUND``, the one case its error table can mean.
- ``getunreadmessages`` lists the chat's unread inbound messages and marks them read.
- Templates: an unknown ``idtemplate`` answers ``CHANNEL_NOT_FOUND`` (templates are approved
  per WhatsApp Business channel and this is the method's only documented not-found code);
  ``options`` that is not a JSON object, a placeholder without a value in ``params``, or a
  location header without ``name``/``address`` answer ``MISSING_COMPULSORY_PARAM``; a header
  file that is neither an http(s) URL of an allowed format nor ``(lat, lon)`` answers
  ``INCORRECT_FILEURL``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.afilnet import Handler, require
from postier.sandbox.afilnet.state import (
    AfilnetFault,
    AfilnetState,
    ChatMessage,
    afilnet_datetime,
)
from postier.sandbox.core import SentRecord

#: the docs document no result for the three sends; flip to answer {"messageid": ...}
SEND_RESULT_HAS_MESSAGEID = False

#: sendfile ``type`` -> allowed file extensions (Afilnet WhatsApp API docs, sendfile and template
#: annex)
FILE_FORMATS: dict[str, frozenset[str]] = {
    "image": frozenset({"jpg", "jpeg", "png", "webp"}),
    "video": frozenset({"mp4", "mpeg", "3gp"}),
    "document": frozenset({"txt", "pdf", "ppt", "doc", "docx", "xls", "pptx", "xlsx"}),
}
_ALL_FORMATS = frozenset().union(*FILE_FORMATS.values())

_DIGITS = re.compile(r"[1-9][0-9]{6,14}")
_LOCATION = re.compile(r"\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")

#: outbound ``SentRecord.delivery_state`` -> WhatsApp message status
_OUTBOUND_STATUS = {
    "scheduled": "pending",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed",
}


def _platform(state: AfilnetState, platformid: str) -> str:
    if platformid not in state.platforms:
        raise AfilnetFault("CHANNEL_NOT_FOUND")
    return platformid


def _destination(value: str) -> str:
    if not _DIGITS.fullmatch(value):
        raise AfilnetFault("INCORRECT_DESTINATION")
    return value


def _chat(state: AfilnetState, platformid: str, destination: str) -> list[ChatMessage]:
    chat = state.chats.get((platformid, destination))
    if chat is None:
        raise AfilnetFault("CHAT_NOT_FOUND")
    return chat


def _extension(path: str) -> str:
    return PurePosixPath(path).suffix.lower().lstrip(".")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _status(state: AfilnetState, msg: ChatMessage) -> str:
    """The message's status now: outbound ones move on with the sandbox clock."""
    if msg.record is not None:
        core = state.core
        now = core.clock.now()
        status = _OUTBOUND_STATUS[msg.record.delivery_state(now, core.delivery_delay)]
        if status == "delivered" and now >= msg.record.final_at(core.delivery_delay) + (
            core.delivery_delay
        ):
            status = "read"
        msg.status = status
    return msg.status


def _entry(state: AfilnetState, msg: ChatMessage, sent_key: str = "sent") -> dict[str, Any]:
    return {
        "platformid": msg.platformid,
        "message": msg.message,
        "destination": msg.destination,
        "messageid": msg.messageid,
        sent_key: 1 if msg.sent else 0,
        "status": _status(state, msg),
        "datetime": msg.datetime,
    }


def _send(
    state: AfilnetState,
    platformid: str,
    destination: str,
    text: str,
    extra: dict[str, Any],
) -> dict[str, str] | None:
    """Append the outbound message to its chat and to the provider's record."""
    core = state.core
    now = core.clock.now()
    messageid = core.next_id()
    record = SentRecord(
        provider="afilnet",
        message_id=messageid,
        recipient=f"+{destination}",
        text=text,
        accepted_at=now,
        send_at=now,
        channel="whatsapp",
        extra={"platformid": platformid, **extra},
    )
    core.record(record)
    state.chats.setdefault((platformid, destination), []).append(
        ChatMessage(
            messageid=messageid,
            platformid=platformid,
            destination=destination,
            message=text,
            sent=True,
            status="sent",
            datetime=afilnet_datetime(now),
            extra=extra,
            record=record,
        )
    )
    return {"messageid": messageid} if SEND_RESULT_HAS_MESSAGEID else None


def sendmessage(state: AfilnetState, params: Mapping[str, str]) -> dict[str, str] | None:
    """A text message; opens the chat if needed."""
    platformid, destination, message = require(params, "platformid", "destination", "message")
    _platform(state, platformid)
    return _send(state, platformid, _destination(destination), message, {"kind": "text"})


def sendfile(state: AfilnetState, params: Mapping[str, str]) -> dict[str, str] | None:
    """A file (image, video, document) by public URL, with an optional caption and thumbnail."""
    platformid, destination, filetype, fileurl = require(
        params, "platformid", "destination", "type", "fileurl"
    )
    _platform(state, platformid)
    destination = _destination(destination)
    formats = FILE_FORMATS.get(filetype)
    if formats is None:
        raise AfilnetFault("INCORRECT_FILETYPE")
    if not _is_http_url(fileurl):
        raise AfilnetFault("INCORRECT_FILEURL")
    extension = _extension(urlsplit(fileurl).path)
    # an URL without extension is accepted: the real service looks at the downloaded file
    if extension and extension not in formats:
        raise AfilnetFault("INCORRECT_FILETYPE")
    thumburl = params.get("thumburl", "")
    if thumburl:
        thumb_extension = _extension(urlsplit(thumburl).path)
        if not _is_http_url(thumburl) or (
            thumb_extension and thumb_extension not in FILE_FORMATS["image"]
        ):
            raise AfilnetFault("INCORRECT_THUMBURL")
    _chat(state, platformid, destination)
    caption = params.get("message", "")
    extra = {"kind": "file", "type": filetype, "fileurl": fileurl, "thumburl": thumburl}
    return _send(state, platformid, destination, caption or fileurl, extra)


def _template_header(header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or not isinstance(header.get("file"), str):
        raise AfilnetFault("MISSING_COMPULSORY_PARAM")
    file = header["file"]
    location = _LOCATION.fullmatch(file)
    if location is not None:
        place = header.get("location")
        if not isinstance(place, dict) or not all(
            isinstance(place.get(key), str) and place[key] for key in ("name", "address")
        ):
            raise AfilnetFault("MISSING_COMPULSORY_PARAM")
        return {
            "latitude": float(location.group(1)),
            "longitude": float(location.group(2)),
            "name": place["name"],
            "address": place["address"],
        }
    if not _is_http_url(file) or _extension(urlsplit(file).path) not in _ALL_FORMATS:
        raise AfilnetFault("INCORRECT_FILEURL")
    return {"file": file}


def sendmessagefromtemplate(
    state: AfilnetState, params: Mapping[str, str]
) -> dict[str, str] | None:
    """A template message: ``options`` JSON fills ``{{name}}`` placeholders and the header."""
    idtemplate, platformid, destination = require(params, "idtemplate", "platformid", "destination")
    _platform(state, platformid)
    destination = _destination(destination)
    template = state.templates.get(idtemplate)
    if template is None:
        raise AfilnetFault("CHANNEL_NOT_FOUND")
    raw_options = params.get("options", "")
    try:
        options = json.loads(raw_options) if raw_options else {}
    except json.JSONDecodeError as exc:
        raise AfilnetFault("MISSING_COMPULSORY_PARAM") from exc
    if not isinstance(options, dict):
        raise AfilnetFault("MISSING_COMPULSORY_PARAM")
    values = options.get("params") or {}
    if not isinstance(values, dict):
        raise AfilnetFault("MISSING_COMPULSORY_PARAM")
    header = _template_header(options["header"]) if options.get("header") else None

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None or isinstance(value, dict | list):
            raise AfilnetFault("MISSING_COMPULSORY_PARAM")
        return str(value)

    text = _PLACEHOLDER.sub(fill, template)
    extra = {"kind": "template", "idtemplate": idtemplate, "header": header}
    return _send(state, platformid, destination, text, extra)


def getchats(state: AfilnetState, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """The latest message of every chat of the channel, newest first; CHAT_NOT_FOUND if none."""
    (platformid,) = require(params, "platformid")
    _platform(state, platformid)
    latest = [msgs[-1] for (pid, _), msgs in state.chats.items() if pid == platformid and msgs]
    if not latest:
        raise AfilnetFault("CHAT_NOT_FOUND")
    latest.sort(key=lambda m: int(m.messageid), reverse=True)
    return [_entry(state, m) for m in latest]


def getmessages(state: AfilnetState, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every message of one chat, oldest first."""
    platformid, destination = require(params, "platformid", "destination")
    _platform(state, platformid)
    return [_entry(state, m) for m in _chat(state, platformid, destination)]


def getunreadmessages(state: AfilnetState, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """The chat's unread inbound messages (with ``issent``), which are marked read."""
    platformid, destination = require(params, "platformid", "destination")
    _platform(state, platformid)
    unread = [m for m in _chat(state, platformid, destination) if not m.sent and not m.read]
    entries = [_entry(state, m, sent_key="issent") for m in unread]
    for msg in unread:
        msg.read = True
        msg.status = "read"
    return entries


METHODS: dict[str, Handler] = {
    "sendmessage": sendmessage,
    "sendfile": sendfile,
    "sendmessagefromtemplate": sendmessagefromtemplate,
    "getchats": getchats,
    "getmessages": getmessages,
    "getunreadmessages": getunreadmessages,
}


def inject_inbound(state: AfilnetState, platformid: str, destination: str, message: str) -> str:
    """A message from ``destination`` (digits) to channel ``platformid``; returns its id.

    Opens the chat when needed. Raises ``AfilnetFault`` for an unknown channel or a number
    that is not international digits.
    """
    core = state.core
    with core.lock:
        _platform(state, platformid)
        _destination(destination)
        messageid = core.next_id()
        state.chats.setdefault((platformid, destination), []).append(
            ChatMessage(
                messageid=messageid,
                platformid=platformid,
                destination=destination,
                message=message,
                sent=False,
                status="received",
                datetime=afilnet_datetime(core.clock.now()),
                read=False,
            )
        )
    return messageid


def admin_routes(state: AfilnetState) -> list[BaseRoute]:
    """``POST /whatsapp/inbound`` ``{platformid, destination, message}`` -> ``{messageid}``."""

    async def inbound(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": "body: not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body: not a JSON object"}, status_code=400)
        missing = [k for k in ("platformid", "destination", "message") if not body.get(k)]
        if missing:
            return JSONResponse({"error": f"missing: {missing}"}, status_code=400)
        try:
            messageid = inject_inbound(
                state, str(body["platformid"]), str(body["destination"]), str(body["message"])
            )
        except AfilnetFault as fault:
            return JSONResponse({"error": fault.code}, status_code=400)
        return JSONResponse({"messageid": messageid})

    return [Route("/whatsapp/inbound", inbound, methods=["POST"])]
