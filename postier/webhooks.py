"""The webhook receiver: providers that push (Octopush receipts and inbound SMS) post here.

Run it with ``postier webhooks`` (uvicorn) and set its URLs in the Octopush account:
``/webhooks/octopush/receipts`` and ``/webhooks/octopush/inbound``. ``/metrics`` serves the
receiver's Prometheus counters (the final states its receipts settle, in
``postier_messages_total``): let Prometheus reach it, and the reverse proxy only
``/webhooks/``. Bodies are JSON or a
form; an unknown message is acknowledged (200) so the provider stops retrying, a body that
is not a callback is refused (400). The receiver reads nothing but the body: put it behind
the reverse proxy's IP allow-list of the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postier.config import Settings, get_settings
from postier.dispatch.polling import apply_receipt
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import InboundMessage
from postier.ledger.queries import record_inbound
from postier.metrics import PROCESS_REGISTRY, get_metrics
from postier.providers.octopush import parse_inbound, parse_receipt
from postier.rules.errors import RuleViolation
from postier.rules.phones import normalize_number

log = logging.getLogger(__name__)

RECEIPTS_PATH = "/webhooks/octopush/receipts"
INBOUND_PATH = "/webhooks/octopush/inbound"
METRICS_PATH = "/metrics"


async def _body(request: Request) -> Mapping[str, Any]:
    """The callback's fields; ``{}`` for a body that is not a JSON object or a form (a 400)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:  # not JSON, or not UTF-8
            return {}
        return data if isinstance(data, dict) else {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _number(raw: Any) -> str | None:
    try:
        return normalize_number(str(raw), field="number")
    except RuleViolation:
        return None


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    """The ASGI app (``uvicorn postier.webhooks:create_app --factory``)."""
    settings = settings or get_settings()
    ledger = engine if engine is not None else make_engine(settings.database_url)

    async def receipts(request: Request) -> Response:
        body = await _body(request)
        try:
            report = parse_receipt(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        applied = apply_receipt(ledger, report, _number(body.get("number")))
        return JSONResponse({"applied": applied})

    async def inbound(request: Request) -> Response:
        body = await _body(request)
        try:
            message = parse_inbound(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        row = InboundMessage(
            provider=message.provider.value,
            provider_message_id=message.message_id,
            channel=message.channel,
            sender=_number(message.sender) or message.sender,
            text=message.text,
            received_at=message.received_at or datetime.now(UTC),
        )
        with session_scope(ledger) as session:
            stored = record_inbound(session, row)
        return JSONResponse({"stored": stored})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(PROCESS_REGISTRY), media_type=CONTENT_TYPE_LATEST)

    get_metrics()  # the counters exist (at zero) before the first receipt
    return Starlette(
        routes=[
            Route(RECEIPTS_PATH, receipts, methods=["POST"]),
            Route(INBOUND_PATH, inbound, methods=["POST"]),
            Route(METRICS_PATH, metrics, methods=["GET"]),
        ]
    )
