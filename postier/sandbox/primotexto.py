"""Simulated Primotexto REST API v2 (docs/PROVIDERS.md, "Primotexto").

Routes under ``/v2/``, authenticated by the ``X-Primotexto-ApiKey`` header, JSON in and out.
Errors answer ``{"code": N, "error": "<text>"}`` with the HTTP status of ``STATUS_FOR_CODE``.

Where the sources are silent the simulator chooses, and says so here (all unconfirmed):

- HTTP status per error code (``STATUS_FOR_CODE``): 400 for input errors, 401 for a refused
  key (72), 402 for credits (71), 403 for an account disabled or blocked (70, 92), 429 with a
  ``Retry-After`` for the quota (76), 500 for the unknown error (1000).
- An unknown ``snapshotId``, or a blacklist entry that is not there, answers
  404 ``{"code": 404}`` (``NOT_FOUND_CODE``).
- A message is at most ``MAX_PARTS`` (8) GSM parts, the limit ``postier.rules.limits`` checks
  before sending; parts are counted by ``postier.rules.segments`` (160, then 153 septets, an
  extension character ``^{}\\|~`` counting two). One part costs one credit: ``creditsUsed``.
- Allowed characters: the docs' list plus space and line feed (``ALLOWED_CHARS``), as
  ``postier.rules.charsets`` reads it.
- Request forms: besides the documented JSON body, the send routes take the forms the
  Primotexto API docs' own examples use: ``identifier`` for ``number`` and ``tag`` for
  ``category`` (Ruby, Node), and the "paste this URL in your browser" GET with ``apiKey``,
  ``identifier``, ``sender``, ``message`` (and any other body field) as URL parameters. When
  both names are given, ``number``/``category`` win (unconfirmed). ``apiKey`` as a URL
  parameter authenticates only that GET form (unconfirmed elsewhere); the header works too.
- Numbers: ``0600000000``/``+33600000000`` as the docs say, and any E.164 number of
  ``SUPPORTED_REGIONS`` (else 90); a valid number that is not a mobile is 19.
- Blacklists are named lists (``/v2/unsubscribers/{list}/contacts``); a send is refused when
  the number is on the ``default`` list or on the list named like the send's ``category``.
  A reply starting with ``STOP`` puts its number on the ``default`` unsubscribers list.
- Replies are not consumed by reading them; a reply moves the replied message to ``reply``.
- Delivery: ``SentRecord.delivery_state`` on the sandbox clock; numbers ending in ``9999``
  bounce.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.rules.segments import count_parts
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.core import SandboxCore, SentRecord

NAME = "primotexto"
API_KEY_HEADER = "X-Primotexto-ApiKey"

#: message characters the docs allow, plus space and LF (Primotexto API docs, "Caractères
#: autorisés")
ALLOWED_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
    " \n"
)
#: unconfirmed: the longest message accepted, in parts
MAX_PARTS = 8
SENDER_MIN, SENDER_MAX = 3, 11
#: unconfirmed: the countries a number may belong to (else code 90)
SUPPORTED_REGIONS = frozenset(
    {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "BE", "CH", "LU", "MC"}
)
MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
#: the sandbox's code for an unknown snapshotId or blacklist entry (unconfirmed)
NOT_FOUND_CODE = 404
#: Retry-After of a quota error (76), in seconds
QUOTA_RETRY_AFTER = 60

#: error code -> (HTTP status, text); docs/PROVIDERS.md, "Primotexto, Errors" lists the codes; the
#: statuses are our choice
ERRORS: dict[int, tuple[int, str]] = {
    10: (400, "number missing"),
    11: (400, "number invalid"),
    12: (400, "number unsubscribed"),
    13: (400, "number bounced"),
    14: (400, "number bounced (unassigned)"),
    19: (400, "number is a fixed line"),
    20: (400, "sender has invalid characters"),
    21: (400, "sender too short"),
    22: (400, "sender too long"),
    23: (400, "sender is all digits"),
    30: (400, "message empty"),
    31: (400, "message has invalid characters"),
    32: (400, "message too long"),
    41: (400, "invalid scheduling date"),
    70: (403, "API access disabled"),
    71: (402, "insufficient credits"),
    72: (401, "authentication failed"),
    73: (400, "invalid JSON"),
    76: (429, "quota exceeded"),
    90: (400, "country not supported"),
    92: (403, "account blocked"),
    1000: (500, "unknown error"),
    NOT_FOUND_CODE: (404, "not found"),
}
STATUS_FOR_CODE: dict[int, int] = {code: status for code, (status, _) in ERRORS.items()}

#: SentRecord.delivery_state -> Primotexto state
STATE_NAMES = {
    "scheduled": "submitted",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "bounced",
}

BlacklistKind = Literal["unsubscribers", "bounces"]
BLACKLIST_KINDS: tuple[BlacklistKind, ...] = ("unsubscribers", "bounces")
DEFAULT_LIST = "default"


class PrimotextoFault(Exception):
    """A Primotexto error code to answer with ``{"code": N, "error": ...}``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def response(self) -> JSONResponse:
        status, text = ERRORS.get(self.code, ERRORS[1000])
        headers = {"Retry-After": str(QUOTA_RETRY_AFTER)} if status == 429 else None
        return JSONResponse({"code": self.code, "error": text}, status_code=status, headers=headers)


@dataclass
class Reply:
    """An SMS a recipient sent back, kept until reset."""

    id: str
    identifier: str
    message: str
    category: str | None
    received_at: float

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "identifier": self.identifier, "message": self.message}


def normalize_number(value: Any) -> str:
    """E.164 form of a recipient, or the Primotexto fault (10, 11, 90, 19)."""
    if value is None or value == "":
        raise PrimotextoFault(10)
    if not isinstance(value, str):
        raise PrimotextoFault(11)
    try:
        parsed = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException as exc:
        raise PrimotextoFault(11) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PrimotextoFault(11)
    if phonenumbers.region_code_for_number(parsed) not in SUPPORTED_REGIONS:
        raise PrimotextoFault(90)
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise PrimotextoFault(19)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def message_parts(message: Any) -> int:
    """GSM parts of ``message``, or the fault (30 empty, 31 characters, 32 too long)."""
    if message is None or message == "":
        raise PrimotextoFault(30)
    if not isinstance(message, str):
        raise PrimotextoFault(31)
    if any(ch not in ALLOWED_CHARS for ch in message):
        raise PrimotextoFault(31)
    parts = count_parts(message)
    if parts > MAX_PARTS:
        raise PrimotextoFault(32)
    return parts


def check_sender(sender: Any) -> str | None:
    """The sender, or the fault (20 characters, 21 short, 22 long, 23 all digits)."""
    if sender is None:
        return None
    if not isinstance(sender, str) or not all(ch.isascii() and ch.isalnum() for ch in sender):
        raise PrimotextoFault(20)
    if len(sender) < SENDER_MIN:
        raise PrimotextoFault(21)
    if len(sender) > SENDER_MAX:
        raise PrimotextoFault(22)
    if sender.isdigit():
        raise PrimotextoFault(23)
    return sender


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    return _text_or_none(body.get(name))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


#: documented field -> the other name the Primotexto API docs' Ruby and Node examples send
FIELD_ALIASES: dict[str, str] = {"number": "identifier", "category": "tag"}


def _field(body: Mapping[str, Any], name: str) -> Any:
    """``body[name]``, else its alias's value (``identifier``, ``tag``); the name wins."""
    value = body.get(name)
    if value is None or value == "":
        return body.get(FIELD_ALIASES[name], value)
    return value


class PrimotextoSim:
    """The simulated Primotexto account: credits, messages, replies, blacklists."""

    name = NAME

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.reset()

    def reset(self) -> None:
        """Forget every message, reply, blacklist entry and account setting."""
        self.credits: float = SANDBOX_ACCOUNTS.primotexto_credits
        self.credits_used: float = 0.0
        self.api_enabled = True
        self.blocked = False
        self.messages: dict[str, SentRecord] = {}
        self.replies: list[Reply] = []
        #: message id -> time of the first reply to it
        self.replied: dict[str, float] = {}
        self.blacklists: dict[BlacklistKind, dict[str, set[str]]] = {
            kind: {DEFAULT_LIST: set()} for kind in BLACKLIST_KINDS
        }
        self.forced: deque[int] = deque()

    # -- Python admin API, for tests ------------------------------------------------------

    def set_credits(self, credits: float) -> None:
        with self.core.lock:
            self.credits = credits

    def force_error(self, code: int, count: int = 1) -> None:
        """Answer the next ``count`` authenticated requests with error ``code``."""
        if code not in ERRORS:
            raise ValueError(f"code: unknown Primotexto error code {code}")
        with self.core.lock:
            self.forced.extend([code] * count)

    def blacklist(self, kind: BlacklistKind, list_name: str = DEFAULT_LIST) -> set[str]:
        """The numbers (E.164) on one blacklist; a live set, change it under ``core.lock``."""
        return self.blacklists[kind].setdefault(list_name, set())

    def inject_reply(self, identifier: str, message: str, category: str | None = None) -> Reply:
        """A recipient answers: store the reply, mark the replied message, honour STOP."""
        with self.core.lock:
            return self._inject_reply(identifier, message, category)

    def _inject_reply(self, identifier: str, message: str, category: str | None) -> Reply:
        number = normalize_number(identifier)
        now = self.core.clock.now()
        reply = Reply(self.core.next_id(), number, message, category, now)
        self.replies.append(reply)
        latest = self._latest_for(number, category)
        if latest is not None:
            self.replied.setdefault(latest.message_id, now)
        if message.strip().upper().startswith("STOP"):
            self.blacklist("unsubscribers").add(number)
        return reply

    # -- the API, as plain functions raising PrimotextoFault --------------------------------

    def send(self, kind: Literal["notification", "marketing"], body: Any) -> dict[str, Any]:
        """``POST /v2/{kind}/messages/send``: validate, debit, record."""
        if not isinstance(body, dict):
            raise PrimotextoFault(73)
        number = normalize_number(_field(body, "number"))
        category = _text_or_none(_field(body, "category"))
        lists = [DEFAULT_LIST] + ([category] if category else [])
        if any(number in self.blacklist("unsubscribers", name) for name in lists):
            raise PrimotextoFault(12)
        if any(number in self.blacklist("bounces", name) for name in lists):
            raise PrimotextoFault(13)
        sender = check_sender(body.get("sender"))
        parts = message_parts(body.get("message"))
        now = self.core.clock.now()
        send_at = self._send_at(body.get("date"), now)
        if self.credits < parts:
            raise PrimotextoFault(71)
        self.credits -= parts
        self.credits_used += parts
        record = SentRecord(
            provider=NAME,
            message_id=self.core.next_id(),
            recipient=number,
            text=body["message"],
            accepted_at=now,
            send_at=send_at,
            extra={
                "type": kind,
                "sender": sender,
                "category": category,
                "campaignName": _optional_text(body, "campaignName"),
                "parts": parts,
            },
        )
        self.messages[record.message_id] = record
        self.core.record(record)
        return {"creditsUsed": float(parts), "snapshotId": record.message_id}

    @staticmethod
    def _send_at(date: Any, now: float) -> float:
        if date is None:
            return now
        if isinstance(date, bool) or not isinstance(date, int | float | str):
            raise PrimotextoFault(41)
        try:
            when = float(date) / 1000
        except ValueError as exc:
            raise PrimotextoFault(41) from exc
        if not math.isfinite(when) or when < now:
            raise PrimotextoFault(41)
        return when

    def _latest_for(self, number: str, category: str | None = None) -> SentRecord | None:
        for record in reversed(self.messages.values()):
            if record.recipient != number:
                continue
            if category is None or record.extra.get("category") == category:
                return record
        return None

    def state_of(self, record: SentRecord) -> str:
        """The Primotexto state of ``record`` now."""
        now = self.core.clock.now()
        state = STATE_NAMES[record.delivery_state(now, self.core.delivery_delay)]
        if state == "delivered" and record.message_id in self.replied:
            return "reply"
        return state

    def status(self, snapshot_id: str | None, identifier: str | None) -> dict[str, Any]:
        """``GET /v2/messages/status``: one message by snapshotId, or a number's latest."""
        record: SentRecord | None
        if snapshot_id:
            record = self.messages.get(snapshot_id)
        elif identifier:
            record = self._latest_for(normalize_number(identifier))
        else:
            raise PrimotextoFault(10)
        if record is None:
            raise PrimotextoFault(NOT_FOUND_CODE)
        delay = self.core.delivery_delay
        state = self.state_of(record)
        sent = record.send_at if state != "submitted" else None
        final = record.final_at(delay) if state in ("delivered", "reply") else None
        state_date = {
            "submitted": record.accepted_at,
            "sent": record.send_at,
            "delivered": record.final_at(delay),
            "bounced": record.final_at(delay),
            "reply": self.replied.get(record.message_id),
        }[state]
        return {
            "id": record.message_id,
            "state": state,
            "stateDate": _ms(state_date),
            "submitted": _ms(record.accepted_at),
            "sent": _ms(sent),
            "delivered": _ms(final),
            "test": False,
        }

    def replies_for(self, category: str | None) -> list[dict[str, str]]:
        """``GET /v2/messages/replies``: every reply of ``category`` (all when None)."""
        return [r.to_json() for r in self.replies if category is None or r.category == category]

    def stats(self, category: str | None) -> dict[str, Any]:
        """``GET /v2/messages/stats``: counts per state of the category's messages."""
        records = [
            r
            for r in self.messages.values()
            if category is None or r.extra.get("category") == category
        ]
        counts = dict.fromkeys(("submitted", "sent", "delivered", "bounced", "reply"), 0)
        for record in records:
            counts[self.state_of(record)] += 1
        replies = [r for r in self.replies if category is None or r.category == category]
        return {
            "category": category,
            "messages": len(records),
            "creditsUsed": float(sum(int(r.extra["parts"]) for r in records)),
            **counts,
            "replies": len(replies),
            "unsubscribed": sum(r.message.strip().upper().startswith("STOP") for r in replies),
        }

    def account(self) -> dict[str, Any]:
        """``GET /v2/account/stats``."""
        return {
            "credits": self.credits,
            "creditsUsed": self.credits_used,
            "messages": len(self.messages),
        }

    def blacklist_call(
        self, method: str, kind: BlacklistKind, list_name: str, identifier: Any
    ) -> Any:
        """``GET|POST|DELETE /v2/{kind}/{list}/contacts``."""
        numbers = self.blacklist(kind, list_name)
        if method == "GET":
            return [{"identifier": n} for n in sorted(numbers)]
        number = normalize_number(identifier)
        if method == "POST":
            numbers.add(number)
        elif number in numbers:
            numbers.discard(number)
        else:
            raise PrimotextoFault(NOT_FOUND_CODE)
        return {"identifier": number}

    # -- HTTP ---------------------------------------------------------------------------------

    def _authenticate(self, request: Request, *, url_key: bool = False) -> None:
        key = request.headers.get(API_KEY_HEADER)
        if key is None and url_key:
            key = request.query_params.get("apiKey")
        if key != SANDBOX_ACCOUNTS.primotexto_api_key:
            raise PrimotextoFault(72)
        if not self.api_enabled:
            raise PrimotextoFault(70)
        if self.blocked:
            raise PrimotextoFault(92)
        if self.forced:
            raise PrimotextoFault(self.forced.popleft())

    def _endpoint(
        self,
        handler: Callable[[Request, Any], Any],
        *,
        with_json: bool = False,
        get_form: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        """``get_form``: a GET carries the body as URL parameters, ``apiKey`` included."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            from_url = get_form and request.method == "GET"
            try:
                with self.core.lock:
                    self._authenticate(request, url_key=from_url)
                    body: Any = None
                    if from_url:
                        body = {
                            k: v for k, v in request.query_params.items() if k and k != "apiKey"
                        }
                    elif with_json and raw:
                        try:
                            body = json.loads(raw)
                        except (ValueError, UnicodeDecodeError) as exc:
                            raise PrimotextoFault(73) from exc
                    result = handler(request, body)
            except PrimotextoFault as fault:
                return fault.response()
            return JSONResponse(result)

        return endpoint

    def routes(self) -> list[BaseRoute]:
        def send(kind: Literal["notification", "marketing"]) -> Callable[[Request, Any], Any]:
            return lambda request, body: self.send(kind, body)

        def status(request: Request, body: Any) -> Any:
            q = request.query_params
            return self.status(q.get("snapshotId"), q.get("identifier"))

        def replies(request: Request, body: Any) -> Any:
            return self.replies_for(request.query_params.get("category"))

        def stats(request: Request, body: Any) -> Any:
            return self.stats(request.query_params.get("category"))

        def account(request: Request, body: Any) -> Any:
            return self.account()

        def blacklist(kind: BlacklistKind) -> Callable[[Request, Any], Any]:
            return lambda request, body: blacklist_call(request, body, kind)

        def blacklist_call(request: Request, body: Any, kind: BlacklistKind) -> Any:
            identifier = request.query_params.get("identifier")
            if isinstance(body, dict):
                identifier = body.get("identifier", identifier)
            return self.blacklist_call(
                request.method, kind, request.path_params["list"], identifier
            )

        return [
            Route(
                "/v2/notification/messages/send",
                self._endpoint(send("notification"), with_json=True, get_form=True),
                methods=["GET", "POST"],
            ),
            Route(
                "/v2/marketing/messages/send",
                self._endpoint(send("marketing"), with_json=True, get_form=True),
                methods=["GET", "POST"],
            ),
            Route("/v2/messages/status", self._endpoint(status)),
            Route("/v2/messages/replies", self._endpoint(replies)),
            Route("/v2/messages/stats", self._endpoint(stats)),
            Route("/v2/account/stats", self._endpoint(account)),
            *(
                Route(
                    f"/v2/{kind}/{{list}}/contacts",
                    self._endpoint(blacklist(kind), with_json=True),
                    methods=["GET", "POST", "DELETE"],
                )
                for kind in BLACKLIST_KINDS
            ),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        """Under ``/_sandbox/primotexto``: inject replies, set credits and account flags.

        ``POST /reply`` {identifier, message, category}; ``POST /account`` {credits,
        api_enabled, blocked} (any subset); ``POST /force_error`` {code, count}.
        """

        async def reply(request: Request) -> Response:
            body = await _admin_body(request)
            if body is None:
                return JSONResponse({"error": "expected a JSON object"}, status_code=400)
            identifier, category = body.get("identifier"), body.get("category")
            try:
                if not isinstance(identifier, str):
                    raise PrimotextoFault(10)
                injected = self.inject_reply(
                    identifier,
                    str(body.get("message", "")),
                    category if isinstance(category, str) else None,
                )
            except PrimotextoFault as fault:
                return fault.response()
            return JSONResponse(injected.to_json())

        async def account(request: Request) -> Response:
            body = await _admin_body(request)
            if body is None:
                return JSONResponse({"error": "expected a JSON object"}, status_code=400)
            try:
                credits = float(body.get("credits", self.credits))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            with self.core.lock:
                self.credits = credits
                if "api_enabled" in body:
                    self.api_enabled = bool(body["api_enabled"])
                if "blocked" in body:
                    self.blocked = bool(body["blocked"])
            return JSONResponse(
                {"credits": self.credits, "api_enabled": self.api_enabled, "blocked": self.blocked}
            )

        async def force(request: Request) -> Response:
            body = await _admin_body(request)
            if body is None:
                return JSONResponse({"error": "expected a JSON object"}, status_code=400)
            try:
                self.force_error(int(body["code"]), int(body.get("count", 1)))
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"forced": list(self.forced)})

        return [
            Route("/reply", reply, methods=["POST"]),
            Route("/account", account, methods=["POST"]),
            Route("/force_error", force, methods=["POST"]),
        ]


async def _admin_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
