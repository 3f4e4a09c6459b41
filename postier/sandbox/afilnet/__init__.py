"""Simulated Afilnet HTTP API: one endpoint, ``class`` + ``method``, three ways to authenticate.

Parameters arrive as a query string (GET), an urlencoded or multipart form (POST), and the
credentials either as ``user``/``password`` parameters or a Basic ``Authorization`` header,
as the real service accepts (docs/PROVIDERS.md, "Afilnet"). Answers are HTTP 200 with
``{"status": "success", "result": ...}`` or ``{"status": "error", "error": CODE}``.

Third-party clients report other answer shapes, which the sandbox plays on demand
(``POST /_sandbox/afilnet/answers {"status_case": "upper", "single_object": true}``, any
subset; reset restores the defaults): ``SUCCESS``/``ERROR`` in upper case, and a
``getdeliverystatus`` of one known message answered as that object instead of a list.
Which shape the real service uses when is unconfirmed.

Each class's methods live in their own module and register in ``METHODS``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.afilnet.state import AfilnetFault, AfilnetState
from postier.sandbox.core import SandboxCore
from postier.sandbox.forms import form_fields

Params = Mapping[str, str]
Handler = Callable[[AfilnetState, Params], Any]


def _methods() -> dict[str, dict[str, Handler]]:
    from postier.sandbox.afilnet import groups, sms, whatsapp

    return {
        "whatsapp": whatsapp.METHODS,
        "group": groups.METHODS,
        "sms": sms.METHODS,
        "user": sms.USER_METHODS,
    }


def require(params: Params, *names: str) -> list[str]:
    """The values of ``names``; a missing or empty one is MISSING_COMPULSORY_PARAM."""
    values = []
    for name in names:
        value = params.get(name, "")
        if value == "":
            raise AfilnetFault("MISSING_COMPULSORY_PARAM")
        values.append(value)
    return values


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class AfilnetSim:
    """The Afilnet endpoint ``/api/http/``."""

    name = "afilnet"

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.state = AfilnetState(core)
        self.methods = _methods()

    def reset(self) -> None:
        self.state.reset()

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await form_fields(request))
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            params.setdefault("user", basic[0])
            params.setdefault("password", basic[1])
        return params

    def dispatch(self, params: Params) -> Any:
        """Authenticate, find the class and method, run it; raise AfilnetFault on error."""
        for name, code in (
            ("user", "MISSING_USER"),
            ("password", "MISSING_PASSWORD"),
            ("class", "MISSING_CLASS"),
            ("method", "MISSING_METHOD"),
        ):
            if not params.get(name):
                raise AfilnetFault(code)
        if (params["user"], params["password"]) != (
            SANDBOX_ACCOUNTS.afilnet_user,
            SANDBOX_ACCOUNTS.afilnet_password,
        ):
            raise AfilnetFault("INCORRECT_USER_PASSWORD")
        cls = self.methods.get(params["class"])
        if cls is None:
            raise AfilnetFault("INCORRECT_CLASS")
        handler = cls.get(params["method"])
        if handler is None:
            raise AfilnetFault("INCORRECT_METHOD")
        return handler(self.state, params)

    async def endpoint(self, request: Request) -> Response:
        params = await self._params(request)
        try:
            with self.core.lock:
                result = self.dispatch(params)
        except AfilnetFault as fault:
            return JSONResponse({"status": self.state.status_word("error"), "error": fault.code})
        body: dict[str, Any] = {"status": self.state.status_word("success")}
        if result is not None:
            body["result"] = result
        return JSONResponse(body)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/http/", self.endpoint, methods=["GET", "POST"]),
            Route("/api/http", self.endpoint, methods=["GET", "POST"]),
        ]

    async def answers(self, request: Request) -> Response:
        """``POST /answers {"status_case": "lower"|"upper", "single_object": bool}``."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        known = {"status_case", "single_object"}
        if not isinstance(body, dict) or not body or not set(body) <= known:
            return JSONResponse({"error": f"give any of {sorted(known)}"}, status_code=400)
        case = body.get("status_case", self.state.status_case)
        single = body.get("single_object", self.state.single_object)
        if case not in ("lower", "upper") or not isinstance(single, bool):
            return JSONResponse(
                {"error": "status_case: lower or upper; single_object: a boolean"},
                status_code=400,
            )
        with self.core.lock:
            self.state.status_case = case
            self.state.single_object = single
        return JSONResponse({"status_case": case, "single_object": single})

    def admin_routes(self) -> list[BaseRoute]:
        from postier.sandbox.afilnet import whatsapp

        return [
            *whatsapp.admin_routes(self.state),
            Route("/answers", self.answers, methods=["POST"]),
        ]
