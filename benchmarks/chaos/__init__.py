"""Chaos scenarios: faults injected mid-batch, each ended by an audit of provider vs ledger.

``make chaos`` (``python -m benchmarks.chaos``) runs them all and prints a table; ``tests/chaos``
runs them with small sizes in ``make test``. ``scenarios`` holds the faults and how the stack
is expected to recover, ``audit`` the comparison, ``faults`` the Redis and PostgreSQL restarts.
"""

from benchmarks.chaos.audit import Audit, audit, wait_settled
from benchmarks.chaos.scenarios import ScenarioResult, chaos_settings, chaos_stack

__all__ = ["Audit", "ScenarioResult", "audit", "chaos_settings", "chaos_stack", "wait_settled"]
