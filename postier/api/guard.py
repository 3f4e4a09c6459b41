"""The API's gate, before any route: the bearer key, its rate limit, the body's size.

It is an ASGI middleware so that nothing of a request is read or acted upon before its key is
known: a request without a valid key (missing, malformed, unknown, revoked) is answered 401
with ``WWW-Authenticate: Bearer`` before its body is read, and writes nothing (not even the
key's ``last_used_at``). Then each key's rate limit (GCRA in Redis, ``postier.ratelimit``):
429 with ``Retry-After``. Then the body is cut at ``api.max_body_bytes`` (413).

Logs name the key by its public id only; the token never appears in a log line.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Container
from typing import Any

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postier.api.keys import ApiKeyInfo, authenticate
from postier.api.problems import Problem
from postier.config import ApiSettings
from postier.ratelimit import RateLimiter

log = logging.getLogger("postier.api")

#: the realm in ``WWW-Authenticate`` (RFC 6750)
REALM = "postier"


class BodyTooLarge(Exception):
    """The client sent more than the body limit."""


def bearer_token(scope: Scope) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
            return None
    return None


def _unauthorized(given: bool) -> Problem:
    challenge = f'Bearer realm="{REALM}"'
    if given:
        challenge += ', error="invalid_token"'
    return Problem(
        401,
        "a valid API key is required: Authorization: Bearer <token> (postier api-key create)"
        if not given
        else "the API key is unknown, malformed or revoked",
        headers={"WWW-Authenticate": challenge},
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1")
            return int(text) if text.isdigit() else -1
    return None


class ApiGuard:
    """Authenticates, rate-limits and bounds every request outside ``public_paths``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: Engine,
        limiter: RateLimiter,
        settings: ApiSettings,
        public_paths: Container[str],
        authenticate_key: Callable[[Engine, str], ApiKeyInfo | None] = authenticate,
    ) -> None:
        self.app = app
        self.engine = engine
        self.limiter = limiter
        self.settings = settings
        self.public_paths = public_paths
        self.authenticate_key = authenticate_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None, "key": None}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, sending, status)
        finally:
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status["code"],
                extra={
                    "api_key": status["key"],
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, status: dict[str, Any]
    ) -> None:
        token = bearer_token(scope)
        try:
            key = (
                await run_in_threadpool(self.authenticate_key, self.engine, token)
                if token
                else None
            )
        except SQLAlchemyError:
            log.exception("the ledger did not answer while checking an API key")
            await Problem(503, "the ledger is not answering; try again").response()(
                scope, receive, send
            )
            return
        if key is None:
            await _unauthorized(token is not None).response()(scope, receive, send)
            return
        status["key"] = key.id
        try:
            wait = await run_in_threadpool(
                self.limiter.acquire, f"api:{key.id}", self.settings.rate, self.settings.burst
            )
        except redis.RedisError:
            log.exception("Redis did not answer the API's rate limiter")
            await Problem(503, "the rate limiter is not answering; try again").response()(
                scope, receive, send
            )
            return
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            problem = Problem(
                429,
                f"this API key's rate limit ({self.settings.rate:g}/s, burst"
                f" {self.settings.burst}) is spent; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
            await problem.response()(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await Problem(413, f"the body is larger than {limit} bytes").response()(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["api_key"] = key
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except BodyTooLarge:
            if status["code"] is None:
                await Problem(413, f"the body is larger than {limit} bytes").response()(
                    scope, receive, send
                )
