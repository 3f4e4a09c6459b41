"""Sandbox-only routes under ``/_sandbox/octopush``: receipts, inbound SMS, wallet, errors."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.octopush.account import MESSAGES, OctopushAccount
from postier.sandbox.octopush.pusher import CallbackPusher


def admin_routes(account: OctopushAccount) -> list[BaseRoute]:
    """``GET /receipts?ticket=``, ``GET|POST /inbound``, ``GET|POST /balance``,
    ``POST /next-errors``."""
    lock = account.core.lock

    async def receipts(request: Request) -> Response:
        with lock:
            return JSONResponse(account.receipts(request.query_params.get("ticket")))

    async def inbound(request: Request) -> Response:
        if request.method == "GET":
            with lock:
                return JSONResponse(list(account.inbound))
        body = await request.json()
        if not isinstance(body, dict) or not body.get("number") or "text" not in body:
            return JSONResponse({"error": "give number and text"}, status_code=400)
        with lock:
            message = account.add_inbound(str(body["number"]), str(body["text"]))
        return JSONResponse(message, status_code=201)

    async def balance(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            try:
                amount = Decimal(str(body["amount"]))
            except (KeyError, TypeError, InvalidOperation):
                return JSONResponse({"error": "give amount (euros)"}, status_code=400)
            with lock:
                account.wallet = amount
        with lock:
            return JSONResponse(
                {"amount": str(account.wallet), "per_type": account.balance_per_type()}
            )

    async def next_errors(request: Request) -> Response:
        body = await request.json()
        codes = body.get("codes") if isinstance(body, dict) else None
        if not isinstance(codes, list) or not all(str(c) in MESSAGES for c in codes):
            return JSONResponse({"error": f"codes: a list of {sorted(MESSAGES)}"}, 400)
        with lock:
            account.next_errors.extend(str(c) for c in codes)
            return JSONResponse({"next_errors": list(account.next_errors)})

    return [
        Route("/receipts", receipts),
        Route("/inbound", inbound, methods=["GET", "POST"]),
        Route("/balance", balance, methods=["GET", "POST"]),
        Route("/next-errors", next_errors, methods=["POST"]),
    ]


def callback_routes(pusher: CallbackPusher) -> list[BaseRoute]:
    """``GET|PUT /callbacks``: the account's receipt and inbound callback URLs."""

    async def callbacks(request: Request) -> Response:
        if request.method == "PUT":
            body = await request.json()
            if not isinstance(body, dict) or not set(body) <= {"receipts_url", "inbound_url"}:
                return JSONResponse({"error": "give receipts_url and/or inbound_url"}, 400)
            pusher.configure(body.get("receipts_url"), body.get("inbound_url"))
        return JSONResponse(
            {"receipts_url": pusher.receipts_url, "inbound_url": pusher.inbound_url}
        )

    return [Route("/callbacks", callbacks, methods=["GET", "PUT"])]
