"""``make chaos`` / ``python -m benchmarks.chaos``: every scenario, then one table of audits."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.chaos.scenarios import (
    SHARED_STACK,
    ScenarioResult,
    chaos_stack,
    postgres_restart,
)
from postier.sandbox.app import Sandbox
from postier.sandbox.server import SandboxServer


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    """Sizes and places of one chaos run."""

    workdir: Path = Path("var/chaos")
    #: messages per scenario
    messages: int = 200
    #: the local server used when no private PostgreSQL cluster can be made
    postgres_url: str | None = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    #: run only the scenarios of these names (e.g. ``default_provider_outage``); empty: all
    only: tuple[str, ...] = ()

    def wants(self, name: str) -> bool:
        return not self.only or name in self.only


def _guarded(name: str, run: Callable[[], ScenarioResult], messages: int) -> ScenarioResult:
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a result, not a crash
        return ScenarioResult(name, "", messages, error=f"{type(exc).__name__}: {exc}")


def run_chaos(options: ChaosOptions, console: Console) -> list[ScenarioResult]:
    """Every scenario on a fresh stack (SQLite shared by most, PostgreSQL for its restart)."""
    workdir = options.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    results: list[ScenarioResult] = []
    with SandboxServer(Sandbox(delivery_delay=0.5, seed=7)) as server:
        sandbox = server.sandbox
        with chaos_stack(workdir, server.url) as stack:
            for scenario in SHARED_STACK:
                if not options.wants(scenario.__name__):
                    continue
                sandbox.reset()
                with console.status(f"{scenario.__name__}…"):
                    result = _guarded(
                        scenario.__name__,
                        lambda s=scenario: s(sandbox, stack, options.messages),  # type: ignore[misc]
                        options.messages,
                    )
                results.append(result)
                _line(console, result)
        if not options.wants("postgres_restart"):
            return results
        sandbox.reset()
        with console.status("postgres_restart…"):
            result = _guarded(
                "PostgreSQL restart",
                lambda: postgres_restart(
                    sandbox, workdir, server.url, options.messages, options.postgres_url
                ),
                options.messages,
            )
        results.append(result)
        _line(console, result)
    return results


def _line(console: Console, result: ScenarioResult) -> None:
    mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
    console.print(f"{mark} {result.name} ({result.seconds:.0f} s)")


def print_results(results: list[ScenarioResult], console: Console) -> None:
    """One row per scenario: the fault, the messages' final states, the audit, the checks."""
    table = Table(title="Chaos scenarios: provider's record audited against the ledger")
    table.add_column("scenario")
    table.add_column("fault", overflow="fold")
    table.add_column("msgs", justify="right")
    table.add_column("final states / audit", overflow="fold")
    table.add_column("checks", overflow="fold")
    table.add_column("result")
    for result in results:
        audit_text = result.error or (result.audit.summary() if result.audit else "")
        if not result.settled and result.error is None:
            audit_text += " (not settled in time)"
        checks = "; ".join(
            [f"{name}: {'yes' if ok else 'NO'}" for name, ok in result.checks.items()]
            + result.notes
        )
        table.add_row(
            result.name,
            result.fault,
            str(result.messages),
            audit_text,
            checks,
            "[green]PASS[/]" if result.ok else "[red]FAIL[/]",
        )
    console.print(table)
