"""Simulated Primotexto API (to be filled)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from postier.sandbox.core import SandboxCore


class PrimotextoSim:
    name = "primotexto"

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def reset(self) -> None:
        pass

    def routes(self) -> list[BaseRoute]:
        return []

    def admin_routes(self) -> list[BaseRoute]:
        return []
