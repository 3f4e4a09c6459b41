"""Simulated Octopush: the legacy form API and the v1 JSON API (seed 003; PROVIDERS.md).

Legacy (``www.octopush-dm.com``): ``POST /api/sms`` answers XML, ``POST /api/sms/json`` JSON;
``POST /api/balance[/json]`` the balance. Form parameters, HTTP 200 even on error, the outcome
in ``error_code`` (``"000"`` is success), the per-recipient list spelt ``successs`` (sic).
v1 (``api.octopush.com/v1/public``): ``POST /v1/public/sms-campaign/send`` and
``GET /v1/public/wallet/check-balance``, headers ``api-login``/``api-key``, JSON in and out,
errors HTTP 400 ``{"code": N, "message": "…"}`` with the legacy codes, 401 for credentials.

Where the sources are silent the simulator chooses, and says so here (all unconfirmed):

- ``sending_date`` is Unix seconds in GMT+1 whatever the season (seed 003): the UTC instant
  is ``sending_date - 3600``. A deferred date already past sends at once.
- Prices per SMS part (``PRICES``): FR 0.055 €, XXX 0.035 €, WWW 0.08 €; v1 ``sms_premium`` is
  FR for French numbers and WWW elsewhere, ``sms_low_cost`` is XXX. Parts are counted by
  ``postier.rules.segments`` (GSM-7 160/153, UCS-2 70/67). One euro wallet is charged.
- ``/api/balance`` answers per type the number of SMS of that type the wallet still buys
  (two decimals, rounded down), which is why FR and XXX differ for one account; the send
  answer's ``balance`` and v1's ``check-balance`` ``{"amount", "unit": "euro"}`` are euros.
- Numbers: ``+``/``00`` then 8–15 digits; ``+33`` must be a mobile (``6``/``7`` then 8
  digits). Per recipient: malformed 117, unknown prefix 150 (``COUNTRIES``), FR type outside
  France 151, XXX outside France 152. When every recipient fails the request fails: with
  150/151/152 if all share that code, else 117. Repeated numbers are sent once.
- FR needs ``STOP au <digits>`` (121) unless ``transactional=1``; on v1, ``sms_premium`` with
  ``purpose=wholesale`` needs it. The sender (3–11 alnum, 106) is ignored for XXX/low cost.
- ``request_id`` (legacy and v1 share one namespace per account) is remembered 24 h from the
  accepted request only: a refused request does not consume it. A repeat answers 120.
- ``request_keys`` letters (T text, R recipients, Y type, S sender, D date, W with_replies,
  N transactional, Q request_id) name the form values whose concatenation, UTF-8, hashes to
  ``request_sha1`` (hex, any case); an absent value counts as ``""``; an unknown letter is 124.
- An invalid ``sms_mode``/``sending_date``, or (v1) ``purpose``/``send_at`` without offset,
  more than 500 recipients, or a body that is not a JSON object: 125 (undefined).
- v1 refuses the whole request (400, 117/150/151/152) if any recipient is refused, since its
  answer has no per-recipient list; success is HTTP 201. ``simulation_mode`` prices the
  request without charging, recording or consuming the ``request_id``.
- Error codes with no natural trigger (500, 501, …) are played by the admin route
  ``POST /_sandbox/octopush/next-errors {"codes": ["501", …]}``, one per send after
  authentication; 153 also comes from the ``congestion`` fault of the fault middleware.

Delivery receipts: real Octopush pushes them by HTTP POST to a callback URL set in the account
(PROVIDERS.md); it has no status API to pull. The sandbox pushes nothing: it exposes the bodies
it would push, in the v1 callback shape ``{message_id, number, status, delivery_date}``, at
``GET /_sandbox/octopush/receipts?ticket=…`` (an extension that exists only here), computed
from the sandbox clock: nothing while scheduled, ``ACK`` once sent, then ``DELIVERED`` or
``NOT_DELIVERED`` (numbers ending in ``9999``). ``message_id`` is ``<ticket>:<number>``.
Inbound SMS: ``POST /_sandbox/octopush/inbound {"number", "text"}`` stores one in the v1
inbound callback shape ``{message_id, number, text, reception_date}``; ``GET`` lists them.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.rules.segments import count_parts
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.core import SandboxCore, SentRecord

NAME: Final = "octopush"
#: seed 003: "sending_date: Timestamp, indiqué en GMT+1" — a fixed offset, not Paris time
GMT_PLUS_ONE: Final = 3600
PRICES: Final[dict[str, Decimal]] = {
    "FR": Decimal("0.055"),
    "XXX": Decimal("0.035"),
    "WWW": Decimal("0.08"),
}
LEGACY_MAX_TEXT: Final = 459
V1_MAX_TEXT: Final = 1224
V1_MAX_RECIPIENTS: Final = 500
REQUEST_ID_MEMORY: Final = 24 * 3600.0
V1_TYPES: Final = ("sms_premium", "sms_low_cost")
V1_PURPOSES: Final = ("alert", "wholesale")
#: calling code -> ISO country: the destinations the sandbox knows (else error 150)
COUNTRIES: Final[dict[str, str]] = {
    "33": "FR",
    "32": "BE",
    "41": "CH",
    "352": "LU",
    "377": "MC",
    "44": "GB",
    "34": "ES",
    "49": "DE",
    "39": "IT",
    "1": "US",
    "262": "RE",
    "590": "GP",
    "596": "MQ",
}
#: request_keys letter -> signed form field (PROVIDERS.md, "Octopush")
SIGNED_FIELDS: Final[dict[str, str]] = {
    "T": "sms_text",
    "R": "sms_recipients",
    "Y": "sms_type",
    "S": "sms_sender",
    "D": "sending_date",
    "W": "with_replies",
    "N": "transactional",
    "Q": "request_id",
}
RECEIPT_STATUS: Final[dict[str, str]] = {
    "sent": "ACK",
    "delivered": "DELIVERED",
    "undelivered": "NOT_DELIVERED",
}
_NUMBER = re.compile(r"(?:\+|00)([0-9]{8,15})")
_FRENCH_MOBILE = re.compile(r"33[67][0-9]{8}")
_SENDER = re.compile(r"[A-Za-z0-9]{3,11}")
_STOP = re.compile(r"STOP au [0-9]+")
_MESSAGES: Final[dict[str, str]] = {
    "100": "the request must be a POST",
    "101": "bad login or api key",
    "102": "text too long",
    "103": "no recipients",
    "104": "not enough credit",
    "106": "invalid sender",
    "107": "no text",
    "108": "no login",
    "109": "no api key",
    "112": "no SMS type",
    "117": "no valid recipient",
    "120": "request_id already used",
    "121": "the text must contain the mention 'STOP au XXXXX'",
    "123": "request_keys without request_sha1",
    "124": "request_sha1 does not match",
    "125": "undefined error",
    "150": "no country for this prefix",
    "151": "country not served",
    "152": "low cost SMS not allowed to this country",
    "153": "route congested",
    "500": "cannot process the request",
    "501": "connection error",
}


class OctopushFault(Exception):
    """An Octopush error code (and a message for v1's answer)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or _MESSAGES.get(code, "error")


@dataclass
class Placement:
    """An accepted request: its ticket and the per-recipient outcome."""

    ticket: str
    text_parts: int
    total_cost: Decimal
    accepted: list[tuple[str, str, Decimal]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def normalise_number(raw: str) -> str | None:
    """``+33601020304`` for ``+33…``/``0033…`` input, None when malformed."""
    match = _NUMBER.fullmatch(raw.strip())
    if match is None:
        return None
    digits = match.group(1)
    if digits.startswith("33") and not _FRENCH_MOBILE.fullmatch(digits):
        return None
    return f"+{digits}"


def country_of(number: str) -> str | None:
    """ISO country of a normalised number, by longest known calling code."""
    digits = number.lstrip("+")
    for size in (3, 2, 1):
        country = COUNTRIES.get(digits[:size])
        if country is not None:
            return country
    return None


def route_price(sms_type: str, country: str) -> Decimal:
    """Price per part of ``sms_type`` (FR, XXX, WWW) to ``country``; raise 151/152."""
    if sms_type == "FR" and country != "FR":
        raise OctopushFault("151")
    if sms_type == "XXX" and country != "FR":
        raise OctopushFault("152")
    return PRICES[sms_type]


def signature_of(form: Mapping[str, str], keys: str) -> str:
    """SHA-1 hex of the values ``keys`` names, concatenated; unknown letter -> 124."""
    values = []
    for letter in keys:
        name = SIGNED_FIELDS.get(letter)
        if name is None:
            raise OctopushFault("124", f"unknown request_keys letter {letter!r}")
        values.append(form.get(name, ""))
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.001")))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class OctopushSim:
    """Both Octopush APIs over one simulated account (one wallet, one request_id memory)."""

    name = NAME

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.reset()

    def reset(self) -> None:
        self.wallet = Decimal(str(SANDBOX_ACCOUNTS.octopush_balance))
        #: request_id -> when the request that carried it was accepted
        self.request_ids: dict[str, float] = {}
        self.inbound: list[dict[str, Any]] = []
        self.next_errors: deque[str] = deque()
        self._tickets = 0

    # --- shared by both APIs -------------------------------------------------------------

    def _authenticate(self, login: str | None, key: str | None) -> None:
        if not login:
            raise OctopushFault("108")
        if not key:
            raise OctopushFault("109")
        if (login, key) != (SANDBOX_ACCOUNTS.octopush_login, SANDBOX_ACCOUNTS.octopush_api_key):
            raise OctopushFault("101")

    def _scripted_error(self) -> None:
        if self.next_errors:
            raise OctopushFault(self.next_errors.popleft())

    def _new_ticket(self, transport: str) -> str:
        self._tickets += 1
        if transport == "v1":
            return f"sms_{self._tickets:024x}"
        return f"api{110000000000 + self._tickets}"

    def place(
        self,
        *,
        recipients: list[str],
        text: str,
        price: Callable[[str], Decimal],
        send_at: float,
        request_id: str | None,
        transport: str,
        strict: bool,
        simulate: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> Placement:
        """Route, price, charge and record one accepted request (call under ``core.lock``).

        ``price(country) -> Decimal`` raises ``OctopushFault`` for a destination it refuses.
        ``strict`` refuses the request for one refused recipient (v1).
        """
        now = self.core.clock.now()
        if request_id:
            seen = self.request_ids.get(request_id)
            if seen is not None and now - seen < REQUEST_ID_MEMORY:
                raise OctopushFault("120")
        parts = count_parts(text)
        routed: list[tuple[str, str, Decimal]] = []
        failures: list[tuple[str, str]] = []
        done: set[str] = set()
        for raw in recipients:
            number = normalise_number(raw)
            if number is None:
                failures.append((raw, "117"))
                continue
            if number in done:
                continue
            country = country_of(number)
            if country is None:
                failures.append((raw, "150"))
                continue
            try:
                unit = price(country)
            except OctopushFault as fault:
                failures.append((raw, fault.code))
                continue
            done.add(number)
            routed.append((number, country, unit * parts))
        if failures and (strict or not routed):
            codes = {code for _, code in failures}
            code = codes.pop() if len(codes) == 1 else "117"
            if not routed and code not in ("150", "151", "152"):
                code = "117"
            bad = ", ".join(raw for raw, _ in failures)
            raise OctopushFault(code, f"{_MESSAGES[code]}: {bad}")
        total = sum((cost for _, _, cost in routed), Decimal(0))
        if total > self.wallet:
            raise OctopushFault("104")
        ticket = self._new_ticket(transport)
        placement = Placement(ticket, parts, total, routed, failures)
        if simulate:
            return placement
        self.wallet -= total
        if request_id:
            self.request_ids[request_id] = now
        for number, country, cost in routed:
            self.core.record(
                SentRecord(
                    provider=NAME,
                    message_id=f"{ticket}:{number}",
                    recipient=number,
                    text=text,
                    accepted_at=now,
                    send_at=max(now, send_at),
                    batch_id=ticket,
                    extra={
                        "transport": transport,
                        "country_code": country,
                        "cost": str(cost),
                        "parts": parts,
                        "request_id": request_id,
                        **(extra or {}),
                    },
                )
            )
        return placement

    def balance_per_type(self) -> dict[str, str]:
        """SMS of each legacy type the wallet still buys (see the module docstring)."""
        return {
            sms_type: str((self.wallet / PRICES[sms_type]).quantize(Decimal("0.01"), ROUND_DOWN))
            for sms_type in ("FR", "XXX")
        }

    # --- legacy --------------------------------------------------------------------------

    def legacy_send(self, form: Mapping[str, str]) -> dict[str, Any]:
        """One ``/api/sms`` request; the answer's fields (raise ``OctopushFault`` on error)."""
        self._authenticate(form.get("user_login"), form.get("api_key"))
        self._check_signature(form)
        self._scripted_error()
        recipients = [r.strip() for r in form.get("sms_recipients", "").split(",") if r.strip()]
        if not recipients:
            raise OctopushFault("103")
        text = form.get("sms_text", "")
        if not text:
            raise OctopushFault("107")
        if len(text) > LEGACY_MAX_TEXT:
            raise OctopushFault("102")
        sms_type = form.get("sms_type", "")
        if sms_type not in PRICES:
            raise OctopushFault("112")
        sender = form.get("sms_sender", "")
        if sms_type != "XXX" and sender and not _SENDER.fullmatch(sender):
            raise OctopushFault("106")
        transactional = form.get("transactional", "0") == "1"
        if sms_type == "FR" and not transactional and not _STOP.search(text):
            raise OctopushFault("121")
        now = self.core.clock.now()
        mode = form.get("sms_mode", "1")
        if mode == "1":
            send_at, sending_date = now, int(now) + GMT_PLUS_ONE
        elif mode == "2" and form.get("sending_date", "").isdigit():
            sending_date = int(form["sending_date"])
            send_at = float(sending_date - GMT_PLUS_ONE)
        else:
            raise OctopushFault("125", "sms_mode must be 1, or 2 with a sending_date")
        placed = self.place(
            recipients=recipients,
            text=text,
            price=lambda country: route_price(sms_type, country),
            send_at=send_at,
            request_id=form.get("request_id") or None,
            transport="legacy",
            strict=False,
            extra={
                "sms_type": sms_type,
                "sender": None if sms_type == "XXX" else sender or None,
                "sending_date": sending_date,
                "with_replies": form.get("with_replies", "0") == "1",
                "transactional": transactional,
            },
        )
        return {
            "error_code": "000",
            "cost": _money(placed.total_cost),
            "balance": _money(self.wallet),
            "ticket": placed.ticket,
            "sending_date": sending_date,
            "number_of_sendings": len(placed.accepted),
            "currency_code": "€",
            "successs": [
                {
                    "recipient": number,
                    "country_code": country,
                    "cost": _money(cost),
                    "sms_needed": placed.text_parts,
                }
                for number, country, cost in placed.accepted
            ],
            "failures": [{"recipient": raw, "error_code": code} for raw, code in placed.failures],
        }

    def _check_signature(self, form: Mapping[str, str]) -> None:
        keys = form.get("request_keys", "")
        if not keys:
            return
        given = form.get("request_sha1", "")
        if not given:
            raise OctopushFault("123")
        if signature_of(form, keys) != given.lower():
            raise OctopushFault("124")

    async def _legacy_form(self, request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def legacy_sms(self, request: Request) -> Response:
        as_json = request.url.path.endswith("/json")
        if request.method != "POST":
            return _legacy_answer({"error_code": "100"}, as_json)
        form = await self._legacy_form(request)
        try:
            with self.core.lock:
                body = self.legacy_send(form)
        except OctopushFault as fault:
            body = {"error_code": fault.code}
        return _legacy_answer(body, as_json)

    async def legacy_balance(self, request: Request) -> Response:
        as_json = request.url.path.endswith("/json")
        if request.method != "POST":
            return _legacy_answer({"error_code": "100"}, as_json)
        form = await self._legacy_form(request)
        try:
            with self.core.lock:
                self._authenticate(form.get("user_login"), form.get("api_key"))
                body: dict[str, Any] = {"error_code": "000", "balance": self.balance_per_type()}
        except OctopushFault as fault:
            body = {"error_code": fault.code}
        return _legacy_answer(body, as_json)

    # --- v1 ------------------------------------------------------------------------------

    def v1_send(self, body: Any) -> dict[str, Any]:
        """One ``sms-campaign/send`` body (already authenticated); the success answer."""
        if not isinstance(body, dict):
            raise OctopushFault("125", "the body must be a JSON object")
        self._scripted_error()
        recipients = body.get("recipients") or []
        if not isinstance(recipients, list) or not recipients:
            raise OctopushFault("103")
        if len(recipients) > V1_MAX_RECIPIENTS:
            raise OctopushFault("125", f"at most {V1_MAX_RECIPIENTS} recipients per request")
        numbers = [
            str(r.get("phone_number", "")) if isinstance(r, dict) else "" for r in recipients
        ]
        text = body.get("text") or ""
        if not isinstance(text, str) or not text:
            raise OctopushFault("107")
        if len(text) > V1_MAX_TEXT:
            raise OctopushFault("102")
        sms_type = body.get("type")
        if sms_type not in V1_TYPES:
            raise OctopushFault("112", f"type must be one of {', '.join(V1_TYPES)}")
        purpose = body.get("purpose", "alert")
        if purpose not in V1_PURPOSES:
            raise OctopushFault("125", f"purpose must be one of {', '.join(V1_PURPOSES)}")
        premium = sms_type == "sms_premium"
        sender = body.get("sender") or ""
        if premium and sender and not (isinstance(sender, str) and _SENDER.fullmatch(sender)):
            raise OctopushFault("106")
        if premium and purpose == "wholesale" and not _STOP.search(text):
            raise OctopushFault("121")
        now = self.core.clock.now()
        send_at = now
        if body.get("send_at"):
            send_at = _parse_send_at(body["send_at"])

        def price(country: str) -> Decimal:
            if not premium:
                return route_price("XXX", country)
            return route_price("FR" if country == "FR" else "WWW", country)

        placed = self.place(
            recipients=numbers,
            text=text,
            price=price,
            send_at=send_at,
            request_id=str(body["request_id"]) if body.get("request_id") else None,
            transport="v1",
            strict=True,
            simulate=bool(body.get("simulation_mode")),
            extra={
                "sms_type": sms_type,
                "purpose": purpose,
                "sender": (sender or None) if premium else None,
                "with_replies": bool(body.get("with_replies")),
            },
        )
        return {
            "sms_ticket": placed.ticket,
            "number_of_contacts": len(placed.accepted),
            "total_cost": _money(placed.total_cost),
            "number_of_sms_needed": placed.text_parts * len(placed.accepted),
            "residual_credit": _money(self.wallet),
        }

    async def v1_campaign_send(self, request: Request) -> Response:
        raw = await request.body()
        try:
            with self.core.lock:
                self._v1_authenticate(request)
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise OctopushFault("125", "the body is not JSON") from exc
                answer = self.v1_send(body)
        except _V1AuthFault as fault:
            return _v1_error(fault.fault, 401)
        except OctopushFault as fault:
            return _v1_error(fault, 400)
        return JSONResponse(answer, status_code=201)

    async def v1_check_balance(self, request: Request) -> Response:
        try:
            with self.core.lock:
                self._v1_authenticate(request)
                amount = _money(self.wallet)
        except _V1AuthFault as fault:
            return _v1_error(fault.fault, 401)
        return JSONResponse({"amount": amount, "unit": "euro"})

    def _v1_authenticate(self, request: Request) -> None:
        try:
            self._authenticate(request.headers.get("api-login"), request.headers.get("api-key"))
        except OctopushFault as fault:
            raise _V1AuthFault(fault) from fault

    # --- admin (sandbox only) ------------------------------------------------------------

    def receipts(self, ticket: str | None) -> list[dict[str, Any]]:
        """The delivery-receipt callback bodies Octopush would have pushed by now."""
        now = self.core.clock.now()
        delay = self.core.delivery_delay
        bodies = []
        for rec in self.core.records_for(NAME):
            if ticket is not None and rec.batch_id != ticket:
                continue
            state = rec.delivery_state(now, delay)
            status = RECEIPT_STATUS.get(state)
            if status is None:
                continue
            at = rec.send_at if state == "sent" else rec.final_at(delay)
            bodies.append(
                {
                    "message_id": rec.message_id,
                    "number": rec.recipient,
                    "status": status,
                    "delivery_date": _iso(at),
                }
            )
        return bodies

    def add_inbound(self, number: str, text: str) -> dict[str, Any]:
        """Store an inbound SMS in the v1 inbound callback shape."""
        message = {
            "message_id": f"in_{len(self.inbound) + 1:024x}",
            "number": number,
            "text": text,
            "reception_date": _iso(self.core.clock.now()),
        }
        self.inbound.append(message)
        return message

    def admin_routes(self) -> list[BaseRoute]:
        async def receipts(request: Request) -> Response:
            with self.core.lock:
                return JSONResponse(self.receipts(request.query_params.get("ticket")))

        async def inbound(request: Request) -> Response:
            if request.method == "GET":
                return JSONResponse(self.inbound)
            body = await request.json()
            if not isinstance(body, dict) or not body.get("number") or "text" not in body:
                return JSONResponse({"error": "give number and text"}, status_code=400)
            with self.core.lock:
                message = self.add_inbound(str(body["number"]), str(body["text"]))
            return JSONResponse(message, status_code=201)

        async def balance(request: Request) -> Response:
            if request.method == "POST":
                body = await request.json()
                try:
                    amount = Decimal(str(body["amount"]))
                except (KeyError, TypeError, InvalidOperation):
                    return JSONResponse({"error": "give amount (euros)"}, status_code=400)
                with self.core.lock:
                    self.wallet = amount
            return JSONResponse({"amount": str(self.wallet), "per_type": self.balance_per_type()})

        async def next_errors(request: Request) -> Response:
            body = await request.json()
            codes = body.get("codes") if isinstance(body, dict) else None
            if not isinstance(codes, list) or not all(str(c) in _MESSAGES for c in codes):
                return JSONResponse({"error": f"codes: a list of {sorted(_MESSAGES)}"}, 400)
            with self.core.lock:
                self.next_errors.extend(str(c) for c in codes)
                return JSONResponse({"next_errors": list(self.next_errors)})

        return [
            Route("/receipts", receipts),
            Route("/inbound", inbound, methods=["GET", "POST"]),
            Route("/balance", balance, methods=["GET", "POST"]),
            Route("/next-errors", next_errors, methods=["POST"]),
        ]

    def routes(self) -> list[BaseRoute]:
        both = ["GET", "POST"]
        return [
            Route("/api/sms", self.legacy_sms, methods=both),
            Route("/api/sms/", self.legacy_sms, methods=both),
            Route("/api/sms/json", self.legacy_sms, methods=both),
            Route("/api/balance", self.legacy_balance, methods=both),
            Route("/api/balance/json", self.legacy_balance, methods=both),
            Route("/v1/public/sms-campaign/send", self.v1_campaign_send, methods=["POST"]),
            Route("/v1/public/wallet/check-balance", self.v1_check_balance, methods=["GET"]),
        ]

    @staticmethod
    def congestion_answer(path: str) -> tuple[bytes, str]:
        """Error 153 (route congested) in the answer format of ``path``."""
        if path.startswith("/v1/"):
            return json.dumps({"code": 153, "message": _MESSAGES["153"]}).encode(), (
                "application/json"
            )
        body = {"error_code": "153"}
        if path.endswith("/json"):
            return json.dumps(body).encode(), "application/json"
        return _legacy_xml(body), "application/xml"


class _V1AuthFault(Exception):
    def __init__(self, fault: OctopushFault) -> None:
        super().__init__(fault.code)
        self.fault = fault


def _parse_send_at(value: Any) -> float:
    """UTC epoch of a v1 ``send_at`` (ISO 8601 with an offset; ``Z`` accepted)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise OctopushFault("125", "send_at must be ISO 8601") from exc
    if when.tzinfo is None:
        raise OctopushFault("125", "send_at must carry a UTC offset")
    return when.timestamp()


def _legacy_xml(body: Mapping[str, Any]) -> bytes:
    """The legacy XML answer: ``<octopush>`` with one element per field (seed 003)."""
    root = ET.Element("octopush")
    for key, value in body.items():
        if key == "balance" and isinstance(value, dict):
            for sms_type, amount in value.items():
                ET.SubElement(root, "balance", {"type": sms_type}).text = str(amount)
        elif key in ("successs", "failures"):
            container = ET.SubElement(root, key)
            for item in value:
                child = ET.SubElement(container, "success" if key == "successs" else "failure")
                for name, field_value in item.items():
                    if key == "successs" and name == "sms_needed":
                        continue  # seed 003's XML success has recipient, country_code, cost only
                    ET.SubElement(child, name).text = str(field_value)
        else:
            ET.SubElement(root, key).text = str(value)
    text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}'.encode()


def _legacy_answer(body: Mapping[str, Any], as_json: bool) -> Response:
    if as_json:
        return JSONResponse(dict(body))
    return Response(_legacy_xml(body), media_type="application/xml")


def _v1_error(fault: OctopushFault, status: int) -> Response:
    return JSONResponse({"code": int(fault.code), "message": fault.message}, status_code=status)
