"""Every chaos scenario at a small size: a fault mid-batch, recovery, then the audit.

The audit compares the sandbox's record (what the provider accepted) with the ledger: nothing
left open, nothing lost, nothing sent twice without the ledger saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from postier.chaos.faults import PrivateCluster
from postier.chaos.scenarios import SHARED_STACK, Scenario, postgres_restart
from postier.sandbox import Sandbox, SandboxServer
from postier.stack import Stack
from tests.chaos.conftest import SIZE, explain

pytestmark = pytest.mark.integration

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.mark.parametrize("scenario", SHARED_STACK, ids=lambda s: s.__name__)
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
