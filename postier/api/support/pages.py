"""The support page (``/support/``): did the message to this customer go out, and what happened?

Read-only HTML, rendered on the server (Jinja2, plain CSS, no script), served by ``postier
api`` beside the API. An agent signs in with an API key holding the ``read`` scope
(``postier.api.support.session``) and looks a message up by id, idempotency key or phone
number, reads its timeline (accepted, queued, each attempt and the provider's answer,
rerouting, receipts), or a campaign's progress. Numbers are masked as in the API's answers
unless the key holds the ``numbers`` scope.

What never leaves the page: a number is asked for in a POST form, never in a URL (ids and
idempotency keys may be, in GET); the log line of each request names its path, status and key
id, never a form field. Numbers typed in are normalised by the producers' rules and matched by
the recipient column and by the keyed hash retention keeps once it has redacted the number
(``messages.recipient_hash``), both through their index.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import jinja2
import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from postier.api.idempotency import producer_key
from postier.api.keys import ApiKeyInfo, active_key, authenticate, list_keys
from postier.api.support.session import (
    COOKIE,
    CSRF_COOKIE,
    PATH,
    SessionSigner,
    SupportSession,
    tokens_match,
)
from postier.campaigns.lifecycle import CampaignReport
from postier.config import Settings
from postier.ledger.db import session_scope
from postier.ledger.models import DeliveryEvent, Message, MessageStatus
from postier.ledger.queries import (
    events_for,
    get_message,
    messages_by_idempotency_keys,
    messages_to_number,
)
from postier.logs import mask_text
from postier.ratelimit import RateLimiter
from postier.rules.errors import RuleViolation
from postier.rules.phones import mask_number, normalize_number, number_hash

log = logging.getLogger("postier.api.support")

HERE: Final = Path(__file__).parent
#: messages per page of a lookup by number
PAGE_SIZE: Final = 25
#: bytes of a support form at most (a key, a number, a cursor)
MAX_FORM_BYTES: Final = 8192
_ID_CHARS: Final = frozenset("0123456789abcdef")
_SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FINAL_RECEIPTS: Final = {
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a message's timeline: what happened, in the agent's words, and the facts."""

    at: datetime
    what: str
    from_status: str | None
    to_status: str
    provider_status: str | None
    detail: str | None
    raw: str | None


def _is_id(value: str) -> bool:
    return len(value) == 32 and set(value) <= _ID_CHARS


def timeline(events: list[DeliveryEvent], *, clear: bool) -> list[TimelineEntry]:
    """A message's events, oldest first, each named: accepted, attempt n, rerouted, receipt…"""
    entries: list[TimelineEntry] = []
    attempt = 0
    for event in events:
        to = MessageStatus(event.to_status)
        source = None if event.from_status is None else MessageStatus(event.from_status)
        detail = event.detail or ""
        if source is None:
            what = "accepted, scheduled" if to is MessageStatus.SCHEDULED else "accepted, queued"
        elif to is MessageStatus.SENDING:
            attempt += 1
            what = f"attempt {attempt}"
        elif detail.startswith(("failover", "rerouted")):
            what = "rerouted"
        elif source is MessageStatus.SCHEDULED and to is MessageStatus.QUEUED:
            what = "released, queued"
        elif to is MessageStatus.SENT:
            what = "accepted by the provider"
        elif to in _FINAL_RECEIPTS:
            what = "no receipt in time" if to is MessageStatus.EXPIRED else f"receipt: {to.value}"
        elif to is MessageStatus.QUEUED:
            what = "queued again"
        else:
            what = to.value
        raw = None
        if event.raw is not None:
            raw = json.dumps(event.raw, ensure_ascii=False, indent=1, default=str)
        entries.append(
            TimelineEntry(
                at=event.at,
                what=what,
                from_status=None if source is None else source.value,
                to_status=to.value,
                provider_status=event.provider_status,
                detail=_shown(event.detail, clear),
                raw=_shown(raw, clear),
            )
        )
    return entries


def _shown(value: str | None, clear: bool) -> str | None:
    return value if clear or value is None else mask_text(value)


def recipient_shown(message: Message, *, clear: bool) -> str:
    if message.recipient == "redacted":
        return "redacted (retention)"
    return message.recipient if clear else mask_number(message.recipient)


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["when"] = lambda at: "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")
    return Jinja2Templates(env=environment)


class SupportPages:
    """The support page's routes; ``app`` is the ASGI app serving ``/support/…``."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        limiter: RateLimiter,
        campaign_status: Callable[[str], CampaignReport | None],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.limiter = limiter
        self.campaign_status = campaign_status
        self.signer = SessionSigner(settings.api)
        self.templates = _templates()
        self.app = Starlette(
            routes=[
                Route(PATH, self.home, methods=["GET"]),
                Route(f"{PATH}/", self.home, methods=["GET"]),
                Route(f"{PATH}/support.css", self.stylesheet, methods=["GET"]),
                Route(f"{PATH}/sign-in", self.sign_in_form, methods=["GET"]),
                Route(f"{PATH}/sign-in", self.sign_in, methods=["POST"]),
                Route(f"{PATH}/sign-out", self.sign_out, methods=["POST"]),
                Route(f"{PATH}/find", self.find, methods=["GET"]),
                Route(f"{PATH}/number", self.by_number, methods=["POST"]),
                Route(f"{PATH}/messages/{{message_id}}", self.message, methods=["GET"]),
                Route(f"{PATH}/campaigns/{{campaign_id}}", self.campaign, methods=["GET"]),
            ],
            exception_handlers={
                SQLAlchemyError: self._unavailable,
                redis.RedisError: self._unavailable,
            },
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            key = state.get("support_key")
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status["code"],
                extra={
                    "api_key": key,
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

    # -- plumbing --------------------------------------------------------------------------

    async def _unavailable(self, request: Request, exc: Exception) -> Response:
        """The ledger or Redis did not answer: a page that says so, never a trace."""
        log.error("support page: %s did not answer (%s)", _service(exc), type(exc).__name__)
        return self._error(request, 503, f"The {_service(exc)} is not answering; try again.")

    def _render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        session: SupportSession | None = None,
        key: ApiKeyInfo | None = None,
    ) -> Response:
        values = {
            "key": key,
            "csrf": session.csrf if session else None,
            "problem": None,
            "hashed": False,
            **context,
        }
        response = self.templates.TemplateResponse(request, template, values, status_code=status)
        for name, value in _SECURITY_HEADERS.items():
            response.headers[name] = value
        if session is not None:
            self._set_session(request, response, self.signer.renewed(session))
        return response

    def _secure(self, request: Request) -> bool:
        return request.url.scheme == "https"

    def _set_session(self, request: Request, response: Response, session: SupportSession) -> None:
        response.set_cookie(
            COOKIE,
            self.signer.dump(session),
            max_age=int(self.signer.idle),
            path=PATH,
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )

    def _to_sign_in(self, request: Request, *, clear: bool = True) -> Response:
        response = RedirectResponse(f"{PATH}/sign-in", status_code=303)
        if clear:
            response.delete_cookie(COOKIE, path=PATH, secure=self._secure(request), httponly=True)
        return response

    async def _signed_in(
        self, request: Request, scope: str = "read"
    ) -> tuple[SupportSession, ApiKeyInfo] | Response:
        """The session and its key, re-read now; else the answer to send instead."""
        session = self.signer.load(request.cookies.get(COOKIE))
        if session is None:
            return self._to_sign_in(request, clear=COOKIE in request.cookies)
        key = await run_in_threadpool(active_key, self.engine, session.key_id)
        if key is None:  # revoked (or deleted) since sign-in: the session ends
            return self._to_sign_in(request)
        request.scope.setdefault("state", {})["support_key"] = key.id
        if scope not in key.scopes:
            return self._error(
                request, 403, f"This API key lacks the {scope!r} scope.", session=session, key=key
            )
        wait = await run_in_threadpool(
            self.limiter.acquire,
            f"api:{key.id}",
            self.settings.api.rate,
            self.settings.api.burst,
        )
        if wait > 0:
            return self._error(request, 429, "Too many requests with this key; wait a moment.")
        return session, key

    def _error(
        self,
        request: Request,
        status: int,
        text: str,
        *,
        session: SupportSession | None = None,
        key: ApiKeyInfo | None = None,
    ) -> Response:
        return self._render(
            request,
            "error.html",
            {"status": status, "text": text},
            status=status,
            session=session,
            key=key,
        )

    async def _form(self, request: Request) -> FormData | None:
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return None
        return await request.form(max_files=0, max_fields=10)

    # -- routes ----------------------------------------------------------------------------

    async def stylesheet(self, _request: Request) -> Response:
        return FileResponse(HERE / "static" / "support.css", media_type="text/css")

    async def sign_in_form(self, request: Request, *, problem: str | None = None) -> Response:
        token, cookie = self.signer.csrf_token()
        response = self._render(
            request,
            "sign_in.html",
            {"sign_in_csrf": token, "problem": problem},
            status=401 if problem else 200,
        )
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            max_age=int(self.signer.idle),
            path=PATH,
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None:
            return self._error(request, 413, "The form is too large.")
        if not self.signer.csrf_matches(request.cookies.get(CSRF_COOKIE), _text(form, "csrf")):
            return self._error(request, 403, "The form expired or came from elsewhere; reload it.")
        client = request.client.host if request.client else "unknown"
        wait = await run_in_threadpool(self.limiter.acquire, f"support-sign-in:{client}", 1.0, 10)
        if wait > 0:
            return self._error(request, 429, "Too many sign-in attempts; wait a moment.")
        token = (_text(form, "token") or "").strip()
        key = await run_in_threadpool(authenticate, self.engine, token) if token else None
        if key is None:
            return await self.sign_in_form(
                request, problem="This key is unknown, malformed or revoked."
            )
        request.scope.setdefault("state", {})["support_key"] = key.id
        if "read" not in key.scopes:
            return await self.sign_in_form(
                request, problem="This key lacks the 'read' scope the support page needs."
            )
        response = RedirectResponse(f"{PATH}/", status_code=303)
        self._set_session(request, response, self.signer.new_session(key.id))
        response.delete_cookie(CSRF_COOKIE, path=PATH, secure=self._secure(request), httponly=True)
        return response

    async def sign_out(self, request: Request) -> Response:
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, _key = found
        form = await self._form(request)
        if form is None or not tokens_match(session.csrf, _text(form, "csrf")):
            return self._error(request, 403, "The form expired or came from elsewhere; reload it.")
        return self._to_sign_in(request)

    async def home(self, request: Request) -> Response:
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, key = found
        return self._render(request, "search.html", {}, session=session, key=key)

    async def find(self, request: Request) -> Response:
        """A lookup by message or campaign id, or by idempotency key (GET: no number here)."""
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, key = found
        wanted = (request.query_params.get("id") or "").strip().lower()
        idem = (request.query_params.get("idempotency_key") or "").strip()
        if wanted:
            if not _is_id(wanted):
                return self._render(
                    request,
                    "search.html",
                    {"problem": "An id is 32 hexadecimal characters."},
                    status=422,
                    session=session,
                    key=key,
                )
            message = await run_in_threadpool(self._message_row, wanted)
            if message is not None:
                return RedirectResponse(f"{PATH}/messages/{wanted}", status_code=303)
            report = await run_in_threadpool(self.campaign_status, wanted)
            if report is not None:
                return RedirectResponse(f"{PATH}/campaigns/{wanted}", status_code=303)
            return self._render(
                request,
                "search.html",
                {"problem": f"No message or campaign {wanted}."},
                status=404,
                session=session,
                key=key,
            )
        if idem:
            if len(idem) > 255:
                return self._render(
                    request,
                    "search.html",
                    {"problem": "An idempotency key is 255 characters at most."},
                    status=422,
                    session=session,
                    key=key,
                )
            messages = await run_in_threadpool(self._by_idempotency_key, idem)
            if len(messages) == 1:
                return RedirectResponse(f"{PATH}/messages/{messages[0].id}", status_code=303)
            return self._render(
                request,
                "results.html",
                {
                    "title": "Messages with this idempotency key",
                    "rows": self._rows(messages, key),
                    "more": None,
                    "number": None,
                },
                status=200 if messages else 404,
                session=session,
                key=key,
            )
        return RedirectResponse(f"{PATH}/", status_code=303)

    async def by_number(self, request: Request) -> Response:
        """The messages to a number, newest first, a page at a time (a POST form: the number
        never sits in a URL, a history or an access log)."""
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, key = found
        form = await self._form(request)
        if form is None:
            return self._error(request, 413, "The form is too large.", session=session, key=key)
        if not tokens_match(session.csrf, _text(form, "csrf")):
            return self._error(
                request,
                403,
                "The form expired or came from elsewhere; reload it.",
                session=session,
                key=key,
            )
        typed = (_text(form, "number") or "").strip()
        try:
            e164 = normalize_number(typed, region=self.settings.default_region, field="number")
        except RuleViolation as exc:
            return self._render(
                request,
                "search.html",
                {"problem": f"number: {exc.message} (rule: {exc.rule})"},
                status=422,
                session=session,
                key=key,
            )
        before = _cursor(_text(form, "before"))
        hash_key = self.settings.retention.hash_key.get_secret_value()
        digest = number_hash(e164, hash_key) if hash_key else None

        def read() -> list[Message]:
            with session_scope(self.engine) as db:
                return messages_to_number(db, e164, digest, before=before, limit=PAGE_SIZE + 1)

        messages = await run_in_threadpool(read)
        more = None
        if len(messages) > PAGE_SIZE:
            messages = messages[:PAGE_SIZE]
            last = messages[-1]
            more = f"{last.created_at.isoformat()}|{last.id}"
        clear = "numbers" in key.scopes
        return self._render(
            request,
            "results.html",
            {
                "title": f"Messages to {e164 if clear else mask_number(e164)}",
                "rows": self._rows(messages, key),
                "more": more,
                "number": typed,
                "hashed": digest is not None,
            },
            session=session,
            key=key,
        )

    async def message(self, request: Request) -> Response:
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, key = found
        message_id = request.path_params["message_id"]
        if not _is_id(message_id):
            return self._error(request, 404, "No such message.", session=session, key=key)

        def read() -> tuple[Message | None, list[DeliveryEvent]]:
            with session_scope(self.engine) as db:
                message = get_message(db, message_id)
                events = events_for(db, message_id) if message is not None else []
                return message, events

        message, events = await run_in_threadpool(read)
        if message is None:
            return self._error(request, 404, f"No message {message_id}.", session=session, key=key)
        clear = "numbers" in key.scopes
        return self._render(
            request,
            "message.html",
            {
                "message": message,
                "to": recipient_shown(message, clear=clear),
                "last_error": _shown(message.last_error, clear),
                "timeline": timeline(events, clear=clear),
            },
            session=session,
            key=key,
        )

    async def campaign(self, request: Request) -> Response:
        found = await self._signed_in(request)
        if isinstance(found, Response):
            return found
        session, key = found
        campaign_id = request.path_params["campaign_id"]
        report = (
            await run_in_threadpool(self.campaign_status, campaign_id)
            if _is_id(campaign_id)
            else None
        )
        if report is None:
            return self._error(
                request, 404, f"No campaign {campaign_id[:40]}.", session=session, key=key
            )
        clear = "numbers" in key.scopes
        return self._render(
            request,
            "campaign.html",
            {
                "report": report,
                "error": _shown(report.campaign.error, clear),
                "states": {state: n for state, n in report.states.items() if n},
                "rejections": [
                    (r.line, r.field, r.rule, _shown(r.message, clear)) for r in report.rejections
                ],
            },
            session=session,
            key=key,
        )

    # -- reads -----------------------------------------------------------------------------

    def _message_row(self, message_id: str) -> Message | None:
        with session_scope(self.engine) as db:
            return get_message(db, message_id)

    def _by_idempotency_key(self, idem: str) -> list[Message]:
        """The key as a Python producer stores it, and as each API key's requests store it."""
        forms = [idem, *(producer_key(k.id, idem) for k in list_keys(self.engine))]
        with session_scope(self.engine) as db:
            return messages_by_idempotency_keys(db, forms)

    def _rows(self, messages: list[Message], key: ApiKeyInfo) -> list[dict[str, Any]]:
        clear = "numbers" in key.scopes
        return [
            {
                "id": m.id,
                "created_at": m.created_at,
                "channel": str(m.channel),
                "provider": m.provider or "",
                "status": str(m.status),
                "to": recipient_shown(m, clear=clear),
                "campaign_id": m.campaign_id,
            }
            for m in messages
        ]


def _service(exc: Exception) -> str:
    return "ledger" if isinstance(exc, SQLAlchemyError) else "rate limiter (Redis)"


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    """The next page's start, ``<created_at ISO>|<id>`` (no personal data), else None."""
    if not value:
        return None
    at, _, message_id = value.partition("|")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    return (when, message_id) if _is_id(message_id) and when.tzinfo is not None else None


__all__ = ["PAGE_SIZE", "SupportPages", "TimelineEntry", "recipient_shown", "timeline"]
