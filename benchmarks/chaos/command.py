"""The command of ``make chaos``: run every scenario, print the audits, fail on any."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from benchmarks.chaos.runner import ChaosOptions, print_results, run_chaos

_defaults = ChaosOptions()


def chaos(
    quick: Annotated[bool, typer.Option("--quick", help="40 messages per scenario")] = False,
    messages: Annotated[int, typer.Option(help="messages per scenario")] = _defaults.messages,
    workdir: Annotated[Path, typer.Option(help="ledgers and logs")] = _defaults.workdir,
    postgres: Annotated[
        str, typer.Option(help="PostgreSQL server, when no private cluster can be made")
    ] = _defaults.postgres_url or "",
    only: Annotated[
        list[str] | None, typer.Option(help="run only this scenario (repeatable)")
    ] = None,
) -> None:
    """Faults mid-batch (worker, Redis, PostgreSQL, provider storms, two beats, rate limit)."""
    options = ChaosOptions(
        workdir=workdir,
        messages=40 if quick else messages,
        postgres_url=postgres or None,
        only=tuple(only or ()),
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    results = run_chaos(options, console)
    print_results(results, console)
    if not all(result.ok for result in results):
        raise typer.Exit(code=1)


def main() -> None:
    """Entry point of ``python -m benchmarks.chaos``."""
    typer.run(chaos)
