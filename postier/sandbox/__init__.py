"""A local simulator of every provider API Postier talks to (tests, demo, benchmarks, trials)."""

from postier.sandbox.app import Sandbox, create_app
from postier.sandbox.server import SandboxServer

__all__ = ["Sandbox", "SandboxServer", "create_app"]
