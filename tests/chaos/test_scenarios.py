"""Every chaos scenario at a small size: a fault mid-batch, recovery, then the audit.

The audit compares the sandbox's record (what the provider accepted) with the ledger: nothing
left open, nothing lost, nothing sent twice without the ledger saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos.faults import PrivateCluster
from benchmarks.chaos.scenarios import (
    SHARED_STACK,
    Scenario,
    postgres_restart,
    provider_outage,
)
from postier.sandbox import Sandbox, SandboxServer
from postier.stack import Stack
from tests.chaos.conftest import SIZE, explain

pytestmark = pytest.mark.integration

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: the outage scenario's length here (``make chaos`` runs the full minute)
SHORT_OUTAGE = 12.0


@pytest.mark.parametrize(
    "scenario",
    [s for s in SHARED_STACK if s.__name__ != "default_provider_outage"],
    ids=lambda s: s.__name__,
)
def test_scenario_loses_nothing_and_sends_nothing_twice(
    scenario: Scenario, sandbox: Sandbox, stack: Stack
) -> None:
    result = scenario(sandbox, stack, SIZE)
    assert result.ok, explain(result)
    assert result.audit is not None and result.audit.provider_sends > 0


def test_postgres_restart_loses_nothing_and_sends_nothing_twice(
    sandbox: Sandbox, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    result = postgres_restart(sandbox, tmp_path, sandbox_server.url, SIZE, PG_SERVER)
    assert result.ok, explain(result)
    if PrivateCluster.unavailable() is None:
        assert "pg_ctl restart" in result.fault


def test_an_outage_of_the_default_provider_is_routed_around_and_traffic_returns(
    sandbox: Sandbox, stack: Stack
) -> None:
    result = provider_outage(SHORT_OUTAGE)(sandbox, stack, SIZE)
    assert result.ok, explain(result)
    assert set(result.checks) == {
        "later codes sent in < 1 s (median)",
        "rerouted",
        "back within one cool-down",
    }
    providers = {str(r["provider"]) for r in sandbox.records()}
    assert providers == {"octopush", "primotexto"}, providers
