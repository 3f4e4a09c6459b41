"""The legacy form API: ``POST /api/sms[/json]``, ``/api/balance[/json]``, ``/api/credit[/json]``.

HTTP 200 whatever happens; ``error_code`` says it. The XML answer is ``<octopush>`` with one
element per field, the per-recipient list in ``<successs><success>…`` (sic) and
``<failures><failure>…``; the JSON answer carries the same keys, ``successs`` as a list.
Every path also answers with a trailing slash (the Octopush docs' curl example calls
``/api/sms/``), never with a redirect. A refusal carries the sandbox's reason in an
``X-Sandbox-Reason`` header (sandbox only; the real service sends the code alone).
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.forms import form_fields
from postier.sandbox.octopush.account import (
    PRICES,
    SENDER,
    STOP_MENTION,
    OctopushAccount,
    OctopushFault,
    money,
    route_price,
)

#: Octopush SMS API docs: "sending_date: Timestamp, indiqué en GMT+1" — a fixed offset, not Paris
#: time
GMT_PLUS_ONE: Final = 3600
LEGACY_MAX_TEXT: Final = 459
#: request_keys letter -> signed form field, every letter of the Octopush API docs
SIGNED_FIELDS: Final[dict[str, str]] = {
    "T": "sms_text",
    "R": "sms_recipients",
    "M": "sms_mode",
    "Y": "sms_type",
    "S": "sms_sender",
    "D": "sending_date",
    "a": "recipients_first_names",
    "b": "recipients_last_names",
    "c": "sms_fields_1",
    "d": "sms_fields_2",
    "e": "sms_fields_3",
    "W": "with_replies",
    "N": "transactional",
    "Q": "request_id",
}
#: unsettled: the docs' list says D is the date, Octopush's own client libraries sign a
#: ``sms_date`` no request carries; a signature under either reading is accepted
D_READINGS: Final = ("sending_date", "sms_date")
#: request_mode values: ``real`` (default) sends, ``simu`` validates and answers only
REQUEST_MODES: Final = ("real", "simu")
#: not a documented field (only ``sending_date`` is); some integrations send it
UNDOCUMENTED_DATE_FIELD: Final = "sending_time"


def signature_of(form: Mapping[str, str], keys: str, *, d_field: str = "sending_date") -> str:
    """SHA-1 hex of the values ``keys`` names, concatenated; unknown letter -> 124.

    ``d_field`` is the field the letter D reads (``D_READINGS``).
    """
    values = []
    for letter in keys:
        name = d_field if letter == "D" else SIGNED_FIELDS.get(letter)
        if name is None:
            raise OctopushFault("124", f"unknown request_keys letter {letter!r}")
        values.append(form.get(name, ""))
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def check_signature(form: Mapping[str, str]) -> None:
    """123 keys without sha1, 124 a sha1 that matches no reading; no keys, nothing to check."""
    keys = form.get("request_keys", "")
    if not keys:
        return
    given = form.get("request_sha1", "")
    if not given:
        raise OctopushFault("123")
    readings = D_READINGS if "D" in keys else D_READINGS[:1]
    if all(signature_of(form, keys, d_field=d) != given.lower() for d in readings):
        raise OctopushFault("124")


def check_request_mode(form: Mapping[str, str]) -> bool:
    """Whether the request is a simulation (``request_mode=simu``); another value is 125."""
    mode = form.get("request_mode") or "real"
    if mode not in REQUEST_MODES:
        raise OctopushFault("125", f"request_mode must be one of {', '.join(REQUEST_MODES)}")
    return mode == "simu"


def refuse_sending_time(form: Mapping[str, str]) -> None:
    """125 for ``sending_time``: the sandbox's choice, since no source says what Octopush does.

    Honouring it would let an integration pass here and send at once in production if the
    real service ignores it; ignoring it (the sandbox's former behaviour) sends a deferred
    message at once. Refusing makes the integration send the documented ``sending_date``.
    """
    if UNDOCUMENTED_DATE_FIELD in form:
        raise OctopushFault(
            "125",
            "sending_time is not an Octopush field: send sending_date (Unix seconds, GMT+1)"
            " with sms_mode=2",
        )


def legacy_send(account: OctopushAccount, form: Mapping[str, str]) -> dict[str, Any]:
    """One ``/api/sms`` request; the answer's fields (raise ``OctopushFault`` on error)."""
    account.authenticate(form.get("user_login"), form.get("api_key"))
    check_signature(form)
    simulate = check_request_mode(form)
    refuse_sending_time(form)
    account.scripted_error()
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
    if sms_type != "XXX" and sender and not SENDER.fullmatch(sender):
        raise OctopushFault("106")
    transactional = form.get("transactional", "0") == "1"
    if sms_type == "FR" and not transactional and not STOP_MENTION.search(text):
        raise OctopushFault("121")
    now = account.core.clock.now()
    mode = form.get("sms_mode", "1")
    if mode == "1":
        send_at, sending_date = now, int(now) + GMT_PLUS_ONE
    elif mode == "2" and form.get("sending_date", "").isdigit():
        sending_date = int(form["sending_date"])
        send_at = float(sending_date - GMT_PLUS_ONE)
    else:
        raise OctopushFault("125", "sms_mode must be 1, or 2 with a sending_date")
    placed = account.place(
        recipients=recipients,
        text=text,
        price=lambda country: route_price(sms_type, country),
        send_at=send_at,
        request_id=form.get("request_id") or None,
        transport="legacy",
        strict=False,
        simulate=simulate,
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
        "cost": money(placed.total_cost),
        "balance": money(account.wallet),
        "ticket": placed.ticket,
        "sending_date": sending_date,
        "number_of_sendings": len(placed.accepted),
        "currency_code": "€",
        "successs": [
            {
                "recipient": number,
                "country_code": country,
                "cost": money(cost),
                "sms_needed": placed.text_parts,
            }
            for number, country, cost in placed.accepted
        ],
        "failures": [{"recipient": raw, "error_code": code} for raw, code in placed.failures],
    }


def legacy_xml(body: Mapping[str, Any]) -> bytes:
    """The legacy XML answer: ``<octopush>`` with one element per field (Octopush SMS API docs)."""
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
                        continue  # the docs' XML success has recipient, country_code, cost only
                    ET.SubElement(child, name).text = str(field_value)
        else:
            ET.SubElement(root, key).text = str(value)
    text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}'.encode()


def wants_json(path: str) -> bool:
    """``…/json`` (or ``…/json/``) answers JSON; every other legacy path XML."""
    return path.rstrip("/").endswith("/json")


def legacy_answer_bytes(body: Mapping[str, Any], path: str) -> tuple[bytes, str]:
    """``body`` in the answer format of ``path`` (``…/json`` JSON, else XML), and its type."""
    if wants_json(path):
        return json.dumps(dict(body)).encode(), "application/json"
    return legacy_xml(body), "application/xml"


def _answer(
    body: Mapping[str, Any], request: Request, fault: OctopushFault | None = None
) -> Response:
    headers = None
    if fault is not None:
        reason = fault.message.encode("ascii", "replace").decode()
        headers = {"X-Sandbox-Reason": reason}
    if wants_json(request.scope["path"]):
        return JSONResponse(dict(body), headers=headers)
    return Response(legacy_xml(body), media_type="application/xml", headers=headers)


def legacy_balance(account: OctopushAccount, form: Mapping[str, str]) -> dict[str, Any]:
    """``/api/balance``: per SMS type, what the wallet still buys."""
    account.authenticate(form.get("user_login"), form.get("api_key"))
    return {"error_code": "000", "balance": account.balance_per_type()}


def legacy_credit(account: OctopushAccount, form: Mapping[str, str]) -> dict[str, Any]:
    """``/api/credit``: the account's credit in euros (the wallet)."""
    account.authenticate(form.get("user_login"), form.get("api_key"))
    return {"error_code": "000", "credit": money(account.wallet)}


LegacyCall = Callable[[OctopushAccount, Mapping[str, str]], dict[str, Any]]


def routes(account: OctopushAccount) -> list[BaseRoute]:
    """``/api/{sms,balance,credit}`` and their ``/json`` forms, each with or without ``/``."""
    lock = account.core.lock

    def endpoint(call: LegacyCall) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            if request.method != "POST":
                return _answer({"error_code": "100"}, request, OctopushFault("100"))
            form = await form_fields(request)
            try:
                with lock:
                    body = call(account, form)
            except OctopushFault as fault:
                return _answer({"error_code": fault.code}, request, fault)
            return _answer(body, request)

        return answer

    both = ["GET", "POST"]
    calls: dict[str, LegacyCall] = {
        "sms": legacy_send,
        "balance": legacy_balance,
        "credit": legacy_credit,
    }
    return [
        Route(f"/api/{name}{fmt}{slash}", endpoint(call), methods=both)
        for name, call in calls.items()
        for fmt in ("", "/json")
        for slash in ("", "/")
    ]
