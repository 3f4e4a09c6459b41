"""The sandbox's exact-path router picks the route Starlette's ordered matching would pick."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Match, Route

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.app import ExactPathRouter, FaultMiddleware


def _router() -> ExactPathRouter:
    app = Sandbox().asgi()
    assert isinstance(app, FaultMiddleware)
    router = app.app.router  # type: ignore[attr-defined]
    assert isinstance(router, ExactPathRouter)
    return router


def _first_full_match(router: ExactPathRouter, scope: dict[str, Any]) -> Any:
    for route in router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def test_every_exact_path_is_the_route_starlette_would_pick() -> None:
    router = _router()
    assert "/api/sms/json" in router.exact  # the benchmark's send path
    assert "/v2/notification/messages/send" in router.exact
    for path, route in router.exact.items():
        for method in sorted(route.methods or {"GET"}):
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            assert _first_full_match(router, scope) is route, (path, method)


def test_a_path_an_earlier_route_matches_is_left_to_starlette() -> None:
    shadowed = Route("/v2/x/y/contacts", lambda request: None)
    router = ExactPathRouter([Route("/v2/{kind}/{list}/contacts", lambda r: None), shadowed])
    assert "/v2/x/y/contacts" not in router.exact


@pytest.fixture
def web(sandbox: Sandbox, sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.url, timeout=5.0) as client:
        yield client


def test_a_wrong_method_is_still_a_405(web: httpx.Client) -> None:
    answer = web.get("/v1/public/sms-campaign/send")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_an_unknown_path_is_still_a_404(web: httpx.Client) -> None:
    assert web.post("/api/sms/jsonx").status_code == 404


def test_a_path_parameter_route_still_answers(web: httpx.Client) -> None:
    answer = web.get(
        "/v2/unsubscribers/default/contacts",
        headers={"X-Primotexto-ApiKey": "sandbox-primotexto-key"},
    )
    assert answer.status_code == 200
