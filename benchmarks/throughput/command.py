"""``make bench`` / ``python -m benchmarks.throughput``: the benchmark's command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from benchmarks.throughput.options import BenchOptions

_defaults = BenchOptions()


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="small sizes: a minute or two in all")
    ] = False,
    workdir: Annotated[
        Path, typer.Option(help="ledgers, logs and the private Redis")
    ] = _defaults.workdir,
    baseline: Annotated[
        int, typer.Option(help="messages the baseline drains")
    ] = _defaults.baseline_messages,
    messages: Annotated[
        int, typer.Option(help="end-to-end messages per ledger")
    ] = _defaults.e2e_messages,
    personalised: Annotated[
        int, typer.Option(help="end-to-end messages with a text each")
    ] = _defaults.personalised_messages,
    bulk: Annotated[
        int, typer.Option(help="messages of the one bulk call")
    ] = _defaults.bulk_messages,
    campaign: Annotated[
        int, typer.Option(help="recipients of the timed campaign")
    ] = _defaults.campaign_recipients,
    deferred: Annotated[int, typer.Option(help="scheduled messages")] = _defaults.deferred_messages,
    span: Annotated[
        float, typer.Option(help="seconds the scheduled send times span")
    ] = _defaults.deferred_span,
    window: Annotated[
        float, typer.Option(help="first seconds of the span whose sends are timed")
    ] = _defaults.deferred_window,
    pool: Annotated[str, typer.Option(help="the worker's pool")] = _defaults.worker_pool,
    concurrency: Annotated[
        int, typer.Option(help="the worker's concurrency")
    ] = _defaults.worker_concurrency,
    bulk_processes: Annotated[
        int, typer.Option(help="the bulk worker's processes (0: as `postier up` starts it)")
    ] = _defaults.bulk_processes,
    postgres: Annotated[
        str, typer.Option(help="PostgreSQL server URL ('' to leave it out)")
    ] = _defaults.postgres_url or "",
    profile: Annotated[bool, typer.Option(help="sample the worker with py-spy")] = True,
    skip_deferred: Annotated[
        bool, typer.Option(help="leave out the deferred-lateness measure")
    ] = False,
) -> None:
    """Measure Postier against a plain Celery baseline in the same run; check the targets."""
    from benchmarks.throughput.harness import run_bench
    from benchmarks.throughput.report import print_report, write_json

    options = BenchOptions(
        workdir=workdir,
        baseline_messages=baseline,
        e2e_messages=messages,
        personalised_messages=personalised,
        bulk_messages=bulk,
        campaign_recipients=campaign,
        deferred_messages=deferred,
        deferred_span=span,
        deferred_window=window,
        worker_pool=pool,
        worker_concurrency=concurrency,
        bulk_processes=bulk_processes,
        postgres_url=postgres or None,
        profile=profile,
        deferred=not skip_deferred,
    )
    if quick:
        options = replace(options.quick(), workdir=workdir, bulk_processes=bulk_processes)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file or CI: tables wide enough to read
    report = run_bench(options, console)
    print_report(report, console)
    write_json(report, options.workdir / "report.json")
    console.print(f"report: {options.workdir / 'report.json'}")
    if report.errors:
        raise typer.Exit(code=1)


def main() -> None:
    """Entry point of ``python -m benchmarks.throughput``."""
    typer.run(bench)
