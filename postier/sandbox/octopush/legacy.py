"""The legacy form API: ``POST /api/sms[/json]`` and ``POST /api/balance[/json]`` (seed 003).

HTTP 200 whatever happens; ``error_code`` says it. The XML answer is ``<octopush>`` with one
element per field, the per-recipient list in ``<successs><success>…`` (sic) and
``<failures><failure>…``; the JSON answer carries the same keys, ``successs`` as a list.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.octopush.account import (
    PRICES,
    SENDER,
    STOP_MENTION,
    OctopushAccount,
    OctopushFault,
    money,
    route_price,
)

#: seed 003: "sending_date: Timestamp, indiqué en GMT+1" — a fixed offset, not Paris time
GMT_PLUS_ONE: Final = 3600
LEGACY_MAX_TEXT: Final = 459
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


def signature_of(form: Mapping[str, str], keys: str) -> str:
    """SHA-1 hex of the values ``keys`` names, concatenated; unknown letter -> 124."""
    values = []
    for letter in keys:
        name = SIGNED_FIELDS.get(letter)
        if name is None:
            raise OctopushFault("124", f"unknown request_keys letter {letter!r}")
        values.append(form.get(name, ""))
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def check_signature(form: Mapping[str, str]) -> None:
    """123 keys without sha1, 124 a sha1 that does not match; no keys, nothing to check."""
    keys = form.get("request_keys", "")
    if not keys:
        return
    given = form.get("request_sha1", "")
    if not given:
        raise OctopushFault("123")
    if signature_of(form, keys) != given.lower():
        raise OctopushFault("124")


def legacy_send(account: OctopushAccount, form: Mapping[str, str]) -> dict[str, Any]:
    """One ``/api/sms`` request; the answer's fields (raise ``OctopushFault`` on error)."""
    account.authenticate(form.get("user_login"), form.get("api_key"))
    check_signature(form)
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


def legacy_answer_bytes(body: Mapping[str, Any], path: str) -> tuple[bytes, str]:
    """``body`` in the answer format of ``path`` (``…/json`` JSON, else XML), and its type."""
    if path.endswith("/json"):
        return json.dumps(dict(body)).encode(), "application/json"
    return legacy_xml(body), "application/xml"


def _answer(body: Mapping[str, Any], request: Request) -> Response:
    if request.url.path.endswith("/json"):
        return JSONResponse(dict(body))
    return Response(legacy_xml(body), media_type="application/xml")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def routes(account: OctopushAccount) -> list[BaseRoute]:
    """``/api/sms``, ``/api/sms/json``, ``/api/balance``, ``/api/balance/json``."""
    lock = account.core.lock

    async def sms(request: Request) -> Response:
        if request.method != "POST":
            return _answer({"error_code": "100"}, request)
        form = await _form(request)
        try:
            with lock:
                body = legacy_send(account, form)
        except OctopushFault as fault:
            body = {"error_code": fault.code}
        return _answer(body, request)

    async def balance(request: Request) -> Response:
        if request.method != "POST":
            return _answer({"error_code": "100"}, request)
        form = await _form(request)
        try:
            with lock:
                account.authenticate(form.get("user_login"), form.get("api_key"))
                body: dict[str, Any] = {"error_code": "000", "balance": account.balance_per_type()}
        except OctopushFault as fault:
            body = {"error_code": fault.code}
        return _answer(body, request)

    both = ["GET", "POST"]
    return [
        Route("/api/sms", sms, methods=both),
        Route("/api/sms/", sms, methods=both),
        Route("/api/sms/json", sms, methods=both),
        Route("/api/balance", balance, methods=both),
        Route("/api/balance/json", balance, methods=both),
    ]
