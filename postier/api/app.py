"""The HTTP API (``postier api``): send, follow and cancel messages and campaigns over HTTP.

Every route calls the producers (``postier.dispatch.producer.Producer``,
``postier.campaigns.producer.CampaignProducer``): the same validation, the same ledger rows,
the same publishing as ``producers.send_sms`` and friends. Their ``RuleViolation`` becomes an
RFC 9457 problem (422) naming the field and the rule (``postier.api.problems``).

Routes run as plain functions on Starlette's thread pool (database and broker calls never
block the event loop). ``ApiGuard`` (``postier.api.guard``) authenticates each request by its
bearer key and applies the key's rate limit before any route sees it; each route then checks
the key's scope (403). The OpenAPI document is ``/v1/openapi.json``; ``/v1/health`` is the
readiness probe (the ledger and Redis answer), without a key. ``/support/`` is the support
page (``postier.api.support``): a browser signs in there with a key through a form and keeps
a signed session cookie, checked by the page itself on every request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final

import redis
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from postier.api import idempotency
from postier.api.guard import ApiGuard
from postier.api.keys import ApiKeyInfo
from postier.api.problems import (
    IDEMPOTENCY_CONFLICT,
    PROBLEM_JSON,
    STATE_CONFLICT,
    Problem,
    schema_errors,
    validation_problem,
    violation_problem,
)
from postier.api.schemas import (
    BulkAccepted,
    BulkIn,
    BulkOut,
    BulkRejected,
    BulkSmsIn,
    CampaignCreated,
    CampaignIn,
    CampaignOut,
    CancelOut,
    ControlOut,
    EventOut,
    HealthOut,
    MessageAccepted,
    MessageOut,
    ProblemOut,
    RejectionOut,
    RowError,
    SmsIn,
    WhatsAppIn,
)
from postier.api.support import SupportPages
from postier.api.support.session import PATH as SUPPORT_PATH
from postier.campaigns.producer import CampaignProducer
from postier.config import Settings, get_settings
from postier.dispatch.producer import MessageHandle, Producer, SmsRequest
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Message
from postier.ledger.queries import events_for, get_message
from postier.logs import mask_text
from postier.ratelimit import RateLimiter
from postier.rules.errors import RuleViolation
from postier.rules.phones import mask_number

log = logging.getLogger("postier.api")

OPENAPI_PATH: Final = "/v1/openapi.json"
HEALTH_PATH: Final = "/v1/health"
PUBLIC_PATHS: Final = frozenset({OPENAPI_PATH, HEALTH_PATH})
#: a message or campaign id: 32 hex characters (``new_message_id``)
_ID_CHARS: Final = frozenset("0123456789abcdef")

_problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": _problem_content, "model": ProblemOut}
    for status, description in (
        (401, "no valid API key (WWW-Authenticate: Bearer)"),
        (403, "the key lacks the scope"),
        (422, "the input breaks a rule: errors name each field and rule"),
        (429, "the key's rate limit is spent (Retry-After)"),
    )
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such id", "content": _problem_content, "model": ProblemOut}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "an Idempotency-Key reused for another request, or a state that forbids it",
        "content": _problem_content,
        "model": ProblemOut,
    }
}

_bearer = HTTPBearer(auto_error=False, description="an API key: postier api-key create")


@dataclass
class Services:
    """What the routes share: the producers, the ledger, Redis."""

    settings: Settings
    engine: Engine
    producer: Producer
    campaigns: CampaignProducer
    redis: redis.Redis
    limiter: RateLimiter

    @classmethod
    def build(cls, settings: Settings) -> Services:
        engine = make_engine(settings.database_url)
        producer = Producer(settings, engine=engine)
        campaigns = CampaignProducer(settings, engine=engine, celery_app=producer.celery_app)
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        return cls(settings, engine, producer, campaigns, client, RateLimiter(client))

    def close(self) -> None:
        self.redis.close()
        self.producer.celery_app.close()
        self.engine.dispose()


def require(scope: str) -> Callable[..., ApiKeyInfo]:
    """A dependency: the request's key (set by ``ApiGuard``), which must hold ``scope``."""

    def dependency(request: Request, _token: Annotated[Any, Depends(_bearer)] = None) -> ApiKeyInfo:
        key: ApiKeyInfo | None = getattr(request.state, "api_key", None)
        if key is None:  # ApiGuard lets no keyless request through; defence in depth
            raise Problem(
                401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope not in key.scopes:
            raise Problem(403, f"this API key lacks the {scope!r} scope")
        return key

    return dependency


def _check_id(value: str, what: str) -> str:
    if len(value) != 32 or not set(value) <= _ID_CHARS:
        raise Problem(404, f"no {what} {value[:40]!r}")
    return value


IdemHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="the same key and body give the same message (a new body: 409)",
    ),
]


def _unused_fields(body: WhatsAppIn) -> None:
    allowed = {
        "text": {"text"},
        "file": {"file_url", "file_type", "caption", "thumb_url"},
        "template": {"template_id", "params", "header"},
    }
    own = {"text", "file_url", "file_type", "caption", "thumb_url", "template_id", "params"}
    own |= {"header"}
    for name in sorted((body.model_fields_set & own) - allowed[body.type]):
        raise RuleViolation(name, f"{name}.unused", f"not used by a {body.type} message")
    required = {"text": "text", "file": "file_url", "template": "template_id"}[body.type]
    if getattr(body, required) is None:
        raise RuleViolation(required, f"{required}.required", f"a {body.type} message needs it")


def create_app(settings: Settings | None = None, services: Services | None = None) -> ASGIApp:
    """The API as an ASGI app: FastAPI's routes behind ``ApiGuard``."""
    settings = settings or get_settings()
    made = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if services is None:
            made.close()

    api = FastAPI(
        title="Postier",
        version="1",
        summary="SMS and WhatsApp through French providers: send, follow, cancel.",
        description=(
            "Every request carries an API key, `Authorization: Bearer <token>` (`postier "
            "api-key create`). Refusals are RFC 9457 problems (`application/problem+json`); "
            "a refused input lists each `{field, rule, message}`, the rules of the Python "
            "producers. `Idempotency-Key` on a POST: the same key and body give the same "
            "message (200), another body 409."
        ),
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )

    @api.exception_handler(Problem)
    async def _problem(_request: StarletteRequest, exc: Problem) -> JSONResponse:
        return exc.response()

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: StarletteRequest, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(schema_errors(exc.errors())).response()

    @api.exception_handler(StarletteHTTPException)
    async def _http(_request: StarletteRequest, exc: StarletteHTTPException) -> JSONResponse:
        return Problem(exc.status_code, str(exc.detail), headers=exc.headers or {}).response()

    @api.exception_handler(SQLAlchemyError)
    async def _ledger_down(_request: StarletteRequest, exc: SQLAlchemyError) -> JSONResponse:
        log.error("ledger error: %s", type(exc).__name__)
        return Problem(503, "the ledger is not answering; try again").response()

    def single(
        key: ApiKeyInfo,
        header: str | None,
        route: str,
        body: Any,
        response: Response,
        call: Callable[[str | None], MessageHandle],
    ) -> MessageAccepted:
        idem = idempotency.check_key(header)
        claim: idempotency.Claim | None = None
        if idem is not None:
            fingerprint = idempotency.request_hash("POST", route, body.model_dump(mode="json"))
            claim = idempotency.claim(made.engine, key.id, idem, fingerprint)
        try:
            handle = call(idempotency.producer_key(key.id, idem) if idem else None)
        except RuleViolation as exc:
            if idem is not None and claim is not None and not claim.replay:
                idempotency.release(made.engine, key.id, idem)
            raise violation_problem(exc) from None
        response.status_code = 200 if handle.duplicate else 201
        return MessageAccepted(id=handle.id, status=handle.status, duplicate=handle.duplicate)

    @api.post(
        "/v1/sms",
        status_code=201,
        response_model=MessageAccepted,
        responses={**_PROBLEMS, **_CONFLICT},
        tags=["messages"],
    )
    def send_sms(
        body: SmsIn,
        response: Response,
        key: Annotated[ApiKeyInfo, Depends(require("send"))],
        idempotency_key: IdemHeader = None,
    ) -> MessageAccepted:
        """Queue one SMS (now, or at `send_at`)."""
        return single(
            key,
            idempotency_key,
            "/v1/sms",
            body,
            response,
            lambda ik: made.producer.send_sms(
                body.to,
                body.text,
                sender=body.sender,
                category=body.category,
                send_at=body.send_at,
                idempotency_key=ik,
                provider=body.provider,
                priority=body.priority,
                callback_url=body.callback_url,
            ),
        )

    @api.post(
        "/v1/whatsapp",
        status_code=201,
        response_model=MessageAccepted,
        responses={**_PROBLEMS, **_CONFLICT},
        tags=["messages"],
    )
    def send_whatsapp(
        body: WhatsAppIn,
        response: Response,
        key: Annotated[ApiKeyInfo, Depends(require("send"))],
        idempotency_key: IdemHeader = None,
    ) -> MessageAccepted:
        """Queue one WhatsApp message: `type` text, file or template."""
        try:
            _unused_fields(body)
        except RuleViolation as exc:
            raise violation_problem(exc) from None
        common: dict[str, Any] = {
            "platform_id": body.platform_id,
            "send_at": body.send_at,
            "provider": body.provider,
            "priority": body.priority,
            "callback_url": body.callback_url,
        }

        def call(ik: str | None) -> MessageHandle:
            producer = made.producer
            if body.type == "text":
                return producer.send_whatsapp(
                    body.to, body.text or "", idempotency_key=ik, **common
                )
            if body.type == "file":
                return producer.send_whatsapp_file(
                    body.to,
                    body.file_url or "",
                    file_type=body.file_type,
                    caption=body.caption,
                    thumb_url=body.thumb_url,
                    idempotency_key=ik,
                    **common,
                )
            return producer.send_whatsapp_template(
                body.to,
                body.template_id or "",
                params=body.params,
                header=body.header,
                idempotency_key=ik,
                **common,
            )

        return single(key, idempotency_key, "/v1/whatsapp", body, response, call)

    @api.post(
        "/v1/messages/bulk",
        status_code=201,
        response_model=BulkOut,
        responses={**_PROBLEMS, **_CONFLICT},
        tags=["messages"],
    )
    def send_bulk(
        body: BulkIn,
        response: Response,
        key: Annotated[ApiKeyInfo, Depends(require("send"))],
        idempotency_key: IdemHeader = None,
    ) -> BulkOut:
        """Queue many SMS; each is checked alone, the good ones are queued, the others listed
        by position with their field and rule."""
        idem = idempotency.check_key(idempotency_key)
        claim: idempotency.Claim | None = None
        if idem is not None:
            fingerprint = idempotency.request_hash(
                "POST", "/v1/messages/bulk", body.model_dump(mode="json")
            )
            claim = idempotency.claim(made.engine, key.id, idem, fingerprint)
        rejected: list[BulkRejected] = []
        requests: list[SmsRequest] = []
        positions: list[int] = []
        for index, item in enumerate(body.messages):
            try:
                row = BulkSmsIn.model_validate(item)
                own_key = idempotency.check_key(row.idempotency_key)
            except ValidationError as exc:
                errors = [RowError(**e.as_json()) for e in schema_errors(exc.errors())]
                rejected.append(BulkRejected(index=index, errors=errors))
                continue
            except Problem as problem:
                rejected.append(
                    BulkRejected(
                        index=index,
                        errors=[
                            RowError(field="idempotency_key", rule=e.rule, message=e.message)
                            for e in problem.errors
                        ],
                    )
                )
                continue
            if own_key is not None:
                row_key: str | None = idempotency.producer_key(key.id, own_key)
            elif idem is not None:
                row_key = idempotency.producer_key(key.id, f"{idem}:{index}")
            else:
                row_key = None
            requests.append(
                SmsRequest(
                    row.to,
                    row.text,
                    row.sender,
                    row.category,
                    row.send_at,
                    row_key,
                    row.provider,
                    priority=row.priority,
                    callback_url=row.callback_url,
                )
            )
            positions.append(index)
        try:
            result = made.producer.send_many(requests)
        except RuleViolation as exc:
            if idem is not None and claim is not None and not claim.replay:
                idempotency.release(made.engine, key.id, idem)
            raise violation_problem(exc) from None
        for position, violation in result.rejected:
            error = RowError(field=violation.field, rule=violation.rule, message=violation.message)
            rejected.append(BulkRejected(index=positions[position], errors=[error]))
        rejected.sort(key=lambda r: r.index)
        accepted_positions = [p for i, p in enumerate(positions) if i not in dict(result.rejected)]
        accepted = [
            BulkAccepted(index=p, id=h.id, status=h.status, duplicate=h.duplicate)
            for p, h in zip(accepted_positions, result.accepted, strict=True)
        ]
        if not accepted and idem is not None and claim is not None and not claim.replay:
            idempotency.release(made.engine, key.id, idem)
        response.status_code = 201 if any(not a.duplicate for a in accepted) else 200
        return BulkOut(accepted=accepted, rejected=rejected)

    def message_out(message: Message, key: ApiKeyInfo) -> MessageOut:
        clear = "numbers" in key.scopes

        def shown(value: str | None) -> str | None:
            return value if clear or value is None else mask_text(value)

        with session_scope(made.engine) as session:
            events = events_for(session, message.id)
        return MessageOut(
            id=message.id,
            channel=str(message.channel),
            kind=str(message.kind),
            provider=message.provider,
            to=message.recipient if clear else mask_number(message.recipient),
            status=str(message.status),
            category=message.category,
            lane=str(message.lane),
            attempts=message.attempts,
            parts=message.parts,
            cost=None if message.cost is None else str(message.cost),
            send_at=message.send_at,
            campaign_id=message.campaign_id,
            last_error=shown(message.last_error),
            created_at=message.created_at,
            updated_at=message.updated_at,
            events=[
                EventOut(
                    at=event.at,
                    from_status=None if event.from_status is None else str(event.from_status),
                    to_status=str(event.to_status),
                    provider_status=event.provider_status,
                    detail=shown(event.detail),
                )
                for event in events
            ],
        )

    @api.get(
        "/v1/messages/{message_id}",
        response_model=MessageOut,
        responses={**_PROBLEMS, **_NOT_FOUND},
        tags=["messages"],
    )
    def get_message_route(
        message_id: str, key: Annotated[ApiKeyInfo, Depends(require("read"))]
    ) -> MessageOut:
        """A message's state and its events (numbers masked without the `numbers` scope)."""
        _check_id(message_id, "message")
        with session_scope(made.engine) as session:
            message = get_message(session, message_id)
        if message is None:
            raise Problem(404, f"no message {message_id}")
        return message_out(message, key)

    @api.post(
        "/v1/messages/{message_id}/cancel",
        response_model=CancelOut,
        responses={**_PROBLEMS, **_NOT_FOUND, **_CONFLICT},
        tags=["messages"],
    )
    def cancel_message(
        message_id: str, _key: Annotated[ApiKeyInfo, Depends(require("send"))]
    ) -> CancelOut:
        """Cancel a message not handed to a provider yet (scheduled or queued)."""
        _check_id(message_id, "message")
        status = made.producer.cancel(message_id, detail="cancelled through the API")
        if status is None:
            raise Problem(404, f"no message {message_id}")
        if status != "cancelled":
            raise Problem(
                409,
                f"message {message_id} is {status}: only scheduled or queued ones can be cancelled",
                type=STATE_CONFLICT,
                title="Not in a state that allows it",
            )
        return CancelOut(id=message_id, status=status)

    # -- campaigns -----------------------------------------------------------------------
    def campaign_out(campaign_id: str, key: ApiKeyInfo) -> CampaignOut:
        report = made.campaigns.status(campaign_id)
        if report is None:
            raise Problem(404, f"no campaign {campaign_id}")
        clear = "numbers" in key.scopes
        campaign = report.campaign
        return CampaignOut(
            id=campaign.id,
            name=campaign.name,
            status=str(campaign.status),
            starts_at=campaign.starts_at,
            error=campaign.error if clear or campaign.error is None else mask_text(campaign.error),
            audience_size=campaign.audience_size,
            messages=report.messages,
            contacts_done=report.contacts_done,
            invalid=report.invalid,
            states=report.states,
            parts=report.parts,
            cost=None if report.cost is None else str(report.cost),
            rejections=[
                RejectionOut(
                    line=r.line,
                    field=r.field,
                    rule=r.rule,
                    message=r.message if clear else mask_text(r.message),
                )
                for r in report.rejections
            ],
        )

    @api.post(
        "/v1/campaigns",
        status_code=201,
        response_model=CampaignCreated,
        responses={**_PROBLEMS, **_CONFLICT},
        tags=["campaigns"],
    )
    def create_campaign(
        body: CampaignIn,
        response: Response,
        key: Annotated[ApiKeyInfo, Depends(require("campaigns"))],
        idempotency_key: IdemHeader = None,
    ) -> CampaignCreated:
        """Store a campaign and hand it to the workers; returns at once."""
        idem = idempotency.check_key(idempotency_key)
        if idem is not None:
            fingerprint = idempotency.request_hash(
                "POST", "/v1/campaigns", body.model_dump(mode="json")
            )
            claim = idempotency.claim(made.engine, key.id, idem, fingerprint)
            if claim.replay:
                if claim.resource_id is None:
                    raise Problem(
                        409,
                        "the first request with this Idempotency-Key is still being handled",
                        type=IDEMPOTENCY_CONFLICT,
                        title="Idempotency-Key in use",
                    )
                report = made.campaigns.status(claim.resource_id)
                response.status_code = 200
                return CampaignCreated(
                    id=claim.resource_id,
                    status=str(report.campaign.status) if report else "unknown",
                    starts_at=report.campaign.starts_at if report else None,
                    duplicate=True,
                )
        fields = body.model_dump(exclude={"name"})
        try:
            handle = made.campaigns.create(body.name, **fields)
        except RuleViolation as exc:
            if idem is not None:
                idempotency.release(made.engine, key.id, idem)
            raise violation_problem(exc) from None
        if idem is not None:
            idempotency.record_resource(made.engine, key.id, idem, handle.id)
        return CampaignCreated(id=handle.id, status=handle.status, starts_at=handle.starts_at)

    @api.get(
        "/v1/campaigns/{campaign_id}",
        response_model=CampaignOut,
        responses={**_PROBLEMS, **_NOT_FOUND},
        tags=["campaigns"],
    )
    def campaign_status(
        campaign_id: str, key: Annotated[ApiKeyInfo, Depends(require("read"))]
    ) -> CampaignOut:
        """A campaign's fan-out, messages by state and refused contacts."""
        return campaign_out(_check_id(campaign_id, "campaign"), key)

    def control(campaign_id: str, action: str) -> ControlOut:
        _check_id(campaign_id, "campaign")
        run = {
            "pause": made.campaigns.pause,
            "resume": made.campaigns.resume,
            "cancel": made.campaigns.cancel,
        }[action]
        result = run(campaign_id)
        if result.status is None:
            raise Problem(404, f"no campaign {campaign_id}")
        if not result.changed:
            raise Problem(
                409,
                f"campaign {campaign_id} is {result.status}: it cannot {action}",
                type=STATE_CONFLICT,
                title="Not in a state that allows it",
            )
        return ControlOut(
            id=campaign_id,
            changed=result.changed,
            status=result.status,
            messages=result.messages,
            detail=result.detail,
        )

    for action in ("pause", "resume", "cancel"):

        def route(
            campaign_id: str,
            _key: Annotated[ApiKeyInfo, Depends(require("campaigns"))],
            action: str = action,
        ) -> ControlOut:
            return control(campaign_id, action)

        route.__doc__ = f"{action.capitalize()} a campaign."
        api.add_api_route(
            f"/v1/campaigns/{{campaign_id}}/{action}",
            route,
            methods=["POST"],
            response_model=ControlOut,
            responses={**_PROBLEMS, **_NOT_FOUND, **_CONFLICT},
            tags=["campaigns"],
            name=f"{action}_campaign",
        )

    # -- readiness -----------------------------------------------------------------------
    @api.get(HEALTH_PATH, response_model=HealthOut, tags=["health"])
    def health() -> JSONResponse:
        """Readiness: the ledger and Redis answer (no key needed); 503 otherwise."""
        checks: dict[str, str] = {}
        ok = True
        try:
            with made.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["ledger"] = "ok"
        except SQLAlchemyError as exc:
            ok = False
            checks["ledger"] = type(exc).__name__
        try:
            made.redis.ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            ok = False
            checks["redis"] = type(exc).__name__
        return JSONResponse({"ok": ok, "checks": checks}, status_code=200 if ok else 503)

    guarded = ApiGuard(
        api,
        engine=made.engine,
        limiter=made.limiter,
        settings=settings.api,
        public_paths=PUBLIC_PATHS,
    )
    support = SupportPages(
        settings,
        engine=made.engine,
        limiter=made.limiter,
        campaign_status=made.campaigns.status,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (
            path == SUPPORT_PATH or path.startswith(SUPPORT_PATH + "/")
        ):
            await support(scope, receive, send)  # signs in by a form and a cookie, not a header
        else:
            await guarded(scope, receive, send)

    return app


__all__ = ["HEALTH_PATH", "OPENAPI_PATH", "Services", "create_app"]
