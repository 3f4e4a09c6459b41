"""The simulated Octopush account both APIs share: wallet, routing, prices, request_id memory.

Choices (unconfirmed, listed in the package docstring): prices per part, the countries known,
which number is valid, and how a request whose recipients all fail is answered.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final

from postier.rules.segments import count_parts
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.core import SandboxCore, SentRecord

NAME: Final = "octopush"
#: price of one SMS part per legacy type, in euros
PRICES: Final[dict[str, Decimal]] = {
    "FR": Decimal("0.055"),
    "XXX": Decimal("0.035"),
    "WWW": Decimal("0.08"),
}
REQUEST_ID_MEMORY: Final = 24 * 3600.0
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
#: SentRecord.delivery_state -> the status of the receipt Octopush pushes (v1 callback)
RECEIPT_STATUS: Final[dict[str, str]] = {
    "sent": "ACK",
    "delivered": "DELIVERED",
    "undelivered": "NOT_DELIVERED",
}
#: Octopush SMS API docs: sender of 3 to 11 alphanumeric characters
SENDER: Final = re.compile(r"[A-Za-z0-9]{3,11}")
#: Octopush SMS API docs: « STOP au XXXXX », case-sensitive
STOP_MENTION: Final = re.compile(r"STOP au [0-9]+")
_NUMBER: Final = re.compile(r"(?:\+|00)([0-9]{8,15})")
_FRENCH_MOBILE: Final = re.compile(r"33[67][0-9]{8}")
MESSAGES: Final[dict[str, str]] = {
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
        self.message = message or MESSAGES.get(code, "error")


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


_MILLI: Final = Decimal("0.001")


def money(value: Decimal) -> float:
    """A euro amount as the JSON number Octopush answers (three decimals)."""
    return float(value.quantize(_MILLI))


def iso(epoch: float) -> str:
    """ISO 8601 in UTC, seconds: the callback date format the sandbox uses."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class OctopushAccount:
    """One account: one euro wallet, one request_id memory, inbound SMS, scripted errors."""

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

    def authenticate(self, login: str | None, key: str | None) -> None:
        """108 no login, 109 no key, 101 wrong pair."""
        if not login:
            raise OctopushFault("108")
        if not key:
            raise OctopushFault("109")
        if (login, key) != (SANDBOX_ACCOUNTS.octopush_login, SANDBOX_ACCOUNTS.octopush_api_key):
            raise OctopushFault("101")

    def scripted_error(self) -> None:
        """Raise the next code queued by the admin route ``next-errors``, if any."""
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
            raise OctopushFault(code, f"{MESSAGES[code]}: {bad}")
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
        """SMS of each legacy type the wallet still buys (see the package docstring)."""
        return {
            sms_type: str((self.wallet / PRICES[sms_type]).quantize(Decimal("0.01"), ROUND_DOWN))
            for sms_type in ("FR", "XXX")
        }

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
                    "delivery_date": iso(at),
                }
            )
        return bodies

    def add_inbound(self, number: str, text: str) -> dict[str, Any]:
        """Store an inbound SMS in the v1 inbound callback shape."""
        message = {
            "message_id": f"in_{len(self.inbound) + 1:024x}",
            "number": number,
            "text": text,
            "reception_date": iso(self.core.clock.now()),
        }
        self.inbound.append(message)
        return message
