"""The webhook receiver: providers that push (Octopush receipts and inbound SMS) post here.

Run it with ``postier webhooks`` (uvicorn) and set its URLs in the Octopush account:
``/webhooks/<secret>/octopush/receipts`` and ``/webhooks/<secret>/octopush/inbound``, where
``<secret>`` is ``POSTIER_WEBHOOKS__SECRET``. Octopush signs nothing (docs/PROVIDERS.md,
"Octopush"), so the secret in the path is what tells its callbacks from forged ones: compared
in constant time, the previous secret still accepted during a rotation, a wrong one answered
404 like any unknown URL. ``POSTIER_WEBHOOKS__ALLOWED_NETWORKS`` restricts the source
addresses too (403).

Bodies are JSON or a form, at most ``max_body_bytes`` (413), with text fields only, each at
most ``max_field_chars`` of valid UTF-8 without NUL (400). An unknown message is acknowledged
(200) so the provider stops retrying; a body that is not a callback is refused (400). The
ledger work runs in a thread (``run_in_threadpool``), never on the event loop.

``/metrics`` serves the receiver's Prometheus counters (the final states its receipts
settle, in ``postier_messages_total``): let Prometheus reach it, and the reverse proxy only
``/webhooks/``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postier.config import Settings, WebhookSettings, get_settings
from postier.dispatch.polling import apply_receipt
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import InboundMessage
from postier.ledger.queries import record_inbound
from postier.metrics import PROCESS_REGISTRY, get_metrics
from postier.providers.octopush import parse_inbound, parse_receipt
from postier.rules.errors import RuleViolation
from postier.rules.inputs import MAX_ID_CHARS, check_string
from postier.rules.phones import normalize_number

log = logging.getLogger(__name__)

#: the secret of a callback URL: at least this many characters
MIN_SECRET_CHARS = 16
#: fields a callback body may hold at most
MAX_FIELDS = 32
#: fields whose value is an id or a number (short); the others may be a text
_SHORT_FIELDS = frozenset({"message_id", "number", "status", "delivery_date", "reception_date"})

RECEIPTS_ROUTE = "/webhooks/{secret}/octopush/receipts"
INBOUND_ROUTE = "/webhooks/{secret}/octopush/inbound"
METRICS_PATH = "/metrics"


def receipts_path(secret: str) -> str:
    """The path to set as Octopush's receipt callback URL."""
    return RECEIPTS_ROUTE.format(secret=secret)


def inbound_path(secret: str) -> str:
    """The path to set as Octopush's inbound SMS callback URL."""
    return INBOUND_ROUTE.format(secret=secret)


class WebhookConfigError(ValueError):
    """The receiver's settings cannot keep forged callbacks out (no secret, a bad network)."""


class CallbackRefused(Exception):
    """A request the receiver answers with ``status`` and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def accepted_secrets(settings: WebhookSettings) -> list[bytes]:
    """The secrets a callback URL may hold; ``WebhookConfigError`` when none is usable."""
    secrets: list[bytes] = []
    for name, value in (
        ("POSTIER_WEBHOOKS__SECRET", settings.secret),
        ("POSTIER_WEBHOOKS__PREVIOUS_SECRET", settings.previous_secret),
    ):
        text = value.get_secret_value()
        if not text:
            continue
        if len(text) < MIN_SECRET_CHARS or not all(c.isalnum() or c in "-_." for c in text):
            raise WebhookConfigError(
                f"{name} must be at least {MIN_SECRET_CHARS} URL-safe characters"
                " (letters, digits, - _ .)"
            )
        secrets.append(text.encode())
    if not settings.secret.get_secret_value():
        raise WebhookConfigError(
            "POSTIER_WEBHOOKS__SECRET is not set: the receiver would take forged callbacks"
        )
    return secrets


def allowed_networks(
    settings: WebhookSettings,
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The source networks of ``allowed_networks``; ``WebhookConfigError`` for a bad one."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in settings.allowed_networks:
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise WebhookConfigError(f"POSTIER_WEBHOOKS__ALLOWED_NETWORKS: {exc}") from exc
    return networks


def secret_matches(given: str, secrets: list[bytes]) -> bool:
    """Whether ``given`` is one of ``secrets``, in time independent of where they differ."""
    candidate = given.encode("utf-8", "surrogatepass")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(candidate, secret)
    return matched


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise CallbackRefused(413, f"body larger than {limit} bytes")
    received = bytearray()
    try:
        async for part in request.stream():
            received.extend(part)
            if len(received) > limit:
                raise CallbackRefused(413, f"body larger than {limit} bytes")
    except ClientDisconnect as exc:
        raise CallbackRefused(400, "the client went away") from exc
    return bytes(received)


def parse_body(content: bytes, content_type: str, max_field_chars: int) -> dict[str, str]:
    """The callback's fields as short texts; ``CallbackRefused(400)`` for anything else."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CallbackRefused(400, "body is not UTF-8") from exc
    data: Any
    if content_type.startswith("application/json"):
        try:
            data = json.loads(text) if text else None
        except (ValueError, RecursionError) as exc:  # also too long a number, too deep a nest
            raise CallbackRefused(400, "body is not JSON") from exc
        if not isinstance(data, dict):
            raise CallbackRefused(400, "body is not a JSON object")
    else:
        try:
            data = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
        except ValueError as exc:  # more fields than MAX_FIELDS
            raise CallbackRefused(400, f"more than {MAX_FIELDS} fields") from exc
    if len(data) > MAX_FIELDS:
        raise CallbackRefused(400, f"more than {MAX_FIELDS} fields")
    fields: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise CallbackRefused(400, "a field is not text")
        limit = MAX_ID_CHARS if key in _SHORT_FIELDS else max_field_chars
        try:
            name = check_string(key, field="field", max_chars=64)
            fields[name] = check_string(str(value), field=name[:64], max_chars=limit)
        except (RuleViolation, ValueError) as exc:  # ValueError: str() of a huge int
            raise CallbackRefused(400, f"a field breaks a rule: {exc}") from exc
    return fields


def _number(raw: Any) -> str | None:
    try:
        return normalize_number(str(raw), field="number")
    except RuleViolation:
        return None


Handler = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    """The ASGI app (``uvicorn postier.webhooks:create_app --factory``).

    Raises ``WebhookConfigError`` when no callback secret is set: a receiver open to anyone
    would apply forged receipts and opt-outs.
    """
    settings = settings or get_settings()
    config = settings.webhooks
    secrets = accepted_secrets(config)
    networks = allowed_networks(config)
    ledger = engine if engine is not None else make_engine(settings.database_url)

    def guarded(handle: Callable[[dict[str, str]], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if not secret_matches(str(request.path_params.get("secret", "")), secrets):
                    raise CallbackRefused(404, "not found")
                if networks:
                    host = request.client.host if request.client else ""
                    try:
                        address = ipaddress.ip_address(host)
                    except ValueError as exc:
                        raise CallbackRefused(403, "source address not allowed") from exc
                    if not any(address in network for network in networks):
                        raise CallbackRefused(403, "source address not allowed")
                content = await _read_body(request, config.max_body_bytes)
                body = parse_body(
                    content, request.headers.get("content-type", ""), config.max_field_chars
                )
                return await handle(body)
            except CallbackRefused as refused:
                if refused.status != 404:
                    log.info("callback refused (%s): %s", refused.status, refused.reason)
                return JSONResponse({"error": refused.reason}, status_code=refused.status)

        return endpoint

    async def receipts(body: dict[str, str]) -> Response:
        try:
            report = parse_receipt(body)
        except ValueError as exc:
            raise CallbackRefused(400, str(exc)) from exc
        number = _number(body.get("number"))
        applied = await run_in_threadpool(apply_receipt, ledger, report, number, settings)
        return JSONResponse({"applied": applied})

    def store_inbound(row: InboundMessage) -> bool:
        with session_scope(ledger) as session:
            return record_inbound(session, row)

    async def inbound(body: dict[str, str]) -> Response:
        try:
            message = parse_inbound(body)
        except ValueError as exc:
            raise CallbackRefused(400, str(exc)) from exc
        row = InboundMessage(
            provider=message.provider.value,
            provider_message_id=message.message_id,
            channel=message.channel,
            # a short code or a name is kept as given (the column holds 32 characters)
            sender=_number(message.sender) or message.sender[:32],
            text=message.text,
            received_at=message.received_at or datetime.now(UTC),
        )
        stored = await run_in_threadpool(store_inbound, row)
        return JSONResponse({"stored": stored})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(PROCESS_REGISTRY), media_type=CONTENT_TYPE_LATEST)

    get_metrics()  # the counters exist (at zero) before the first receipt
    return Starlette(
        routes=[
            Route(RECEIPTS_ROUTE, guarded(receipts), methods=["POST"]),
            Route(INBOUND_ROUTE, guarded(inbound), methods=["POST"]),
            Route(METRICS_PATH, metrics, methods=["GET"]),
        ]
    )
