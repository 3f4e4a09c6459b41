"""Simulated Octopush API (to be filled)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from postier.sandbox.core import SandboxCore


class OctopushSim:
    name = "octopush"

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def reset(self) -> None:
        pass

    def routes(self) -> list[BaseRoute]:
        return []

    def admin_routes(self) -> list[BaseRoute]:
        return []

    @staticmethod
    def congestion_answer(path: str) -> tuple[bytes, str]:
        """Error 153 (route congested) in the answer format of ``path``."""
        if path.endswith("/json"):
            return b'{"error_code": "153"}', "application/json"
        return (
            b'<?xml version="1.0" encoding="UTF-8"?><octopush><error_code>153</error_code></octopush>',
            "application/xml",
        )
