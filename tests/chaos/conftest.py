"""Chaos fixtures: one stack (private Redis, SQLite ledger, worker, beat, webhooks) for the
package, on the session's sandbox; the scenarios inject their faults into it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.chaos.scenarios import ScenarioResult, chaos_stack
from postier.sandbox import SandboxServer
from postier.stack import Stack

#: messages per scenario in ``make test`` (``make chaos`` runs larger batches)
SIZE = 30


@pytest.fixture(scope="package")
def stack(
    sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with chaos_stack(tmp_path_factory.mktemp("chaos"), sandbox_server.url) as running:
        yield running


@pytest.fixture(autouse=True)
def receipts_to_the_stack(request: pytest.FixtureRequest) -> None:
    """The sandbox pushes Octopush receipts to the package stack's webhook receiver: the
    PostgreSQL scenario's own stack points them at itself, and is gone afterwards."""
    if "stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("stack")
    server: SandboxServer = request.getfixturevalue("sandbox_server")
    stack.point_sandbox_callbacks(server.url)


def explain(result: ScenarioResult) -> str:
    """The failure message: the audit, the checks, the notes."""
    audit = result.audit
    parts = [result.error or "", audit.summary() if audit else "no audit"]
    if audit is not None:
        parts += [
            f"unsettled: {dict(list(audit.unsettled.items())[:5])}",
            f"sent twice: {list(audit.duplicates)[:5]}",
            f"ledger-only sends: {list(audit.phantoms)[:5]}",
        ]
    parts += [f"settled: {result.settled}", f"checks: {result.checks}", *result.notes]
    return "\n".join(part for part in parts if part)
