"""Simulated Afilnet class=groups (to be filled)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from postier.sandbox.afilnet.state import AfilnetState

METHODS: dict[str, Any] = {}


def admin_routes(state: AfilnetState) -> list[BaseRoute]:
    return []
