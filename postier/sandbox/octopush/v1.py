"""The v1 JSON API: ``POST /v1/public/sms-campaign/send``, ``GET /v1/public/wallet/check-balance``.

Headers ``api-login``/``api-key``; 401 ``{"code", "message"}`` for credentials (108, 109, 101),
400 with the legacy code for every other refusal, 201 for an accepted campaign.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.octopush.account import (
    MESSAGES,
    SENDER,
    STOP_MENTION,
    OctopushAccount,
    OctopushFault,
    money,
    route_price,
)

V1_MAX_TEXT: Final = 1224
V1_MAX_RECIPIENTS: Final = 500
V1_TYPES: Final = ("sms_premium", "sms_low_cost")
V1_PURPOSES: Final = ("alert", "wholesale")


def parse_send_at(value: Any) -> float:
    """UTC epoch of a v1 ``send_at`` (ISO 8601 with an offset; ``Z`` accepted)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise OctopushFault("125", "send_at must be ISO 8601") from exc
    if when.tzinfo is None:
        raise OctopushFault("125", "send_at must carry a UTC offset")
    return when.timestamp()


def v1_send(account: OctopushAccount, body: Any) -> dict[str, Any]:
    """One ``sms-campaign/send`` body (already authenticated); the success answer."""
    if not isinstance(body, dict):
        raise OctopushFault("125", "the body must be a JSON object")
    account.scripted_error()
    recipients = body.get("recipients") or []
    if not isinstance(recipients, list) or not recipients:
        raise OctopushFault("103")
    if len(recipients) > V1_MAX_RECIPIENTS:
        raise OctopushFault("125", f"at most {V1_MAX_RECIPIENTS} recipients per request")
    numbers = [str(r.get("phone_number", "")) if isinstance(r, dict) else "" for r in recipients]
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
    if premium and sender and not (isinstance(sender, str) and SENDER.fullmatch(sender)):
        raise OctopushFault("106")
    if premium and purpose == "wholesale" and not STOP_MENTION.search(text):
        raise OctopushFault("121")
    send_at = account.core.clock.now()
    if body.get("send_at"):
        send_at = parse_send_at(body["send_at"])

    def price(country: str) -> Decimal:
        if not premium:
            return route_price("XXX", country)
        return route_price("FR" if country == "FR" else "WWW", country)

    placed = account.place(
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
        "total_cost": money(placed.total_cost),
        "number_of_sms_needed": placed.text_parts * len(placed.accepted),
        "residual_credit": money(account.wallet),
    }


def error_body(code: str, message: str | None = None) -> dict[str, Any]:
    """v1's error answer ``{"code": N, "message": "…"}``."""
    return {"code": int(code), "message": message or MESSAGES.get(code, "error")}


def _error(fault: OctopushFault, status: int) -> Response:
    return JSONResponse(error_body(fault.code, fault.message), status_code=status)


def routes(account: OctopushAccount) -> list[BaseRoute]:
    """``sms-campaign/send`` and ``wallet/check-balance`` under ``/v1/public``."""
    lock = account.core.lock

    def authenticated(request: Request) -> OctopushFault | None:
        try:
            account.authenticate(request.headers.get("api-login"), request.headers.get("api-key"))
        except OctopushFault as fault:
            return fault
        return None

    async def send(request: Request) -> Response:
        raw = await request.body()
        with lock:
            refused = authenticated(request)
            if refused is not None:
                return _error(refused, 401)
            try:
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise OctopushFault("125", "the body is not JSON") from exc
                answer = v1_send(account, body)
            except OctopushFault as fault:
                return _error(fault, 400)
        return JSONResponse(answer, status_code=201)

    async def check_balance(request: Request) -> Response:
        with lock:
            refused = authenticated(request)
            if refused is not None:
                return _error(refused, 401)
            amount = money(account.wallet)
        return JSONResponse({"amount": amount, "unit": "euro"})

    return [
        Route("/v1/public/sms-campaign/send", send, methods=["POST"]),
        Route("/v1/public/wallet/check-balance", check_balance, methods=["GET"]),
    ]
