"""The sandbox server: every provider API at its real path, plus an admin API under /_sandbox.

Providers are told apart by path, as their real hosts are different but their paths are not:
``/api/http/`` Afilnet, ``/v2/`` Primotexto, ``/api/sms``, ``/api/balance`` and ``/v1/public/``
Octopush. Faults are applied by one ASGI middleware in front of all three.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import fields
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from postier.sandbox.afilnet import AfilnetSim
from postier.sandbox.core import FAULT_KINDS, FaultPlan, SandboxCore
from postier.sandbox.octopush import OctopushSim
from postier.sandbox.primotexto import PrimotextoSim

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROVIDERS = ("afilnet", "primotexto", "octopush")


def provider_for_path(path: str) -> str | None:
    """Which simulated provider serves ``path`` (None for the admin API)."""
    if path.startswith("/api/http"):
        return "afilnet"
    if path.startswith("/v2/"):
        return "primotexto"
    if path.startswith(("/api/sms", "/api/balance", "/v1/public/")):
        return "octopush"
    return None


class FaultMiddleware:
    """Adds latency and injects failures per provider, as the admin API configured them."""

    def __init__(self, app: ASGIApp, core: SandboxCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        provider = provider_for_path(scope["path"])
        if provider is None:
            await self.app(scope, receive, send)
            return
        core = self.core
        core.request_counts[provider] = core.request_counts.get(provider, 0) + 1
        plan = core.faults.get(provider)
        if plan is None:
            await self.app(scope, receive, send)
            return
        if plan.latency > 0:
            await asyncio.sleep(plan.latency)
        fault = plan.next_fault(core.rng)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault == "drop_after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _plain(send, 502, b"bad gateway")
            return
        if fault == "timeout":
            await asyncio.sleep(plan.hang_seconds)
            await _plain(send, 504, b"gateway timeout")
            return
        if fault == "congestion" and provider == "octopush":
            body, ctype = OctopushSim.congestion_answer(scope["path"])
            await _plain(send, 200, body, ctype)
            return
        status = {"429": 429, "503": 503, "500": 500, "congestion": 503}[fault]
        headers = []
        if status in (429, 503) and plan.retry_after is not None:
            headers.append((b"retry-after", str(round(plan.retry_after, 3)).encode()))
        await _plain(send, status, b'{"error": "sandbox fault"}', "application/json", headers)


async def _plain(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "text/plain",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ExactPathRouter(Router):
    """A Starlette router that finds a route by exact path before trying each in turn.

    Starlette matches a request against every route's regular expression in order; the
    sandbox has 25, and the Octopush send path came thirteenth. A route with no path parameter
    that no earlier route matches is the one Starlette would pick for its path, so a
    dictionary finds it at once; everything else (path parameters, mounts, a wrong method's
    405, slash redirects, 404) goes through ``Router.app`` unchanged.
    """

    def __init__(self, routes: list[BaseRoute]) -> None:
        super().__init__(routes)
        self.exact: dict[str, Route] = {}
        #: the endpoints of ``exact`` that are ``async def f(request) -> Response``
        self.lean: dict[str, Callable[[Request], Awaitable[Response]]] = {}
        for index, route in enumerate(self.routes):
            if not isinstance(route, Route) or route.param_convertors:
                continue
            earlier = self.routes[:index]
            if any(
                not isinstance(other, Route | Mount) or other.path_regex.match(route.path)
                for other in earlier
            ):
                continue
            if route.path not in self.exact:
                self.exact[route.path] = route
                if inspect.iscoroutinefunction(route.endpoint):
                    self.lean[route.path] = route.endpoint

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.exact.get(scope.get("path", "")) if scope["type"] == "http" else None
        if (
            route is None
            or scope.get("root_path")
            or (route.methods and scope["method"] not in route.methods)
        ):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        endpoint = self.lean.get(route.path)
        if endpoint is None:
            await route.handle(scope, receive, send)
            return
        # what Starlette's ``request_response`` does, without its per-request exception
        # wrapper: the sandbox registers no handlers, so an exception reaches the app's own
        # ExceptionMiddleware (HTTPException) or ServerErrorMiddleware (500) just the same
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


class Sandbox:
    """The whole simulator: core state, the three providers and the admin API."""

    def __init__(self, *, delivery_delay: float = 1.0, seed: int | None = None) -> None:
        self.core = SandboxCore(delivery_delay=delivery_delay, seed=seed)
        self.afilnet = AfilnetSim(self.core)
        self.primotexto = PrimotextoSim(self.core)
        self.octopush = OctopushSim(self.core)

    def reset(self) -> None:
        self.core.reset()
        self.afilnet.reset()
        self.primotexto.reset()
        self.octopush.reset()

    def set_faults(self, provider: str, **values: Any) -> FaultPlan:
        """Replace ``provider``'s fault plan; unknown names raise ``ValueError``."""
        if provider not in PROVIDERS:
            raise ValueError(f"provider: unknown provider {provider!r}")
        known = {f.name for f in fields(FaultPlan)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        script = values.pop("script", [])
        bad = [s for s in script if s not in (*FAULT_KINDS, "ok")]
        if bad:
            raise ValueError(f"script: unknown outcomes {bad}; use {[*FAULT_KINDS, 'ok']}")
        plan = FaultPlan(**values, script=deque(script))
        self.core.faults[provider] = plan
        return plan

    def records(self, provider: str | None = None) -> list[dict[str, Any]]:
        now = self.core.clock.now()
        delay = self.core.delivery_delay
        return [
            {
                "provider": r.provider,
                "message_id": r.message_id,
                "recipient": r.recipient,
                "text": r.text,
                "channel": r.channel,
                "batch_id": r.batch_id,
                "accepted_at": r.accepted_at,
                "send_at": r.send_at,
                "state": r.delivery_state(now, delay),
            }
            for r in self.core.records
            if provider is None or r.provider == provider
        ]

    def admin_routes(self) -> list[BaseRoute]:
        async def health(request: Request) -> Response:
            return JSONResponse({"status": "ok", "requests": self.core.request_counts})

        async def reset(request: Request) -> Response:
            self.reset()
            return JSONResponse({"status": "reset"})

        async def faults(request: Request) -> Response:
            provider = request.path_params["provider"]
            if request.method == "DELETE":
                self.core.faults.pop(provider, None)
                return JSONResponse({"status": "cleared"})
            if request.method == "GET":
                return JSONResponse(self.core.plan(provider).to_json())
            try:
                body = await request.json()
                plan = self.set_faults(provider, **body)
            except (ValueError, TypeError, json.JSONDecodeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(plan.to_json())

        async def clock(request: Request) -> Response:
            body = await request.json()
            self.core.clock.advance(float(body.get("seconds", 0)))
            return JSONResponse({"now": self.core.clock.now()})

        async def messages(request: Request) -> Response:
            return JSONResponse(self.records(request.query_params.get("provider")))

        return [
            Route("/health", health),
            Route("/reset", reset, methods=["POST"]),
            Route("/faults/{provider}", faults, methods=["GET", "PUT", "POST", "DELETE"]),
            Route("/clock/advance", clock, methods=["POST"]),
            Route("/messages", messages),
            Mount("/afilnet", routes=self.afilnet.admin_routes()),
            Mount("/primotexto", routes=self.primotexto.admin_routes()),
            Mount("/octopush", routes=self.octopush.admin_routes()),
        ]

    def asgi(self) -> ASGIApp:
        routes: list[BaseRoute] = [
            *self.afilnet.routes(),
            *self.primotexto.routes(),
            *self.octopush.routes(),
            Mount("/_sandbox", routes=self.admin_routes()),
        ]
        app = Starlette()
        app.router = ExactPathRouter(routes)
        return FaultMiddleware(app, self.core)


def create_app(*, delivery_delay: float = 1.0, seed: int | None = None) -> ASGIApp:
    """An ASGI app for ``uvicorn postier.sandbox.app:create_app --factory``."""
    return Sandbox(delivery_delay=delivery_delay, seed=seed).asgi()
