"""``make bench``: every measure in one run, against one sandbox process and one private Redis.

Order: the sandbox's own ceiling, the baseline, Postier end to end (SQLite, one text; SQLite,
personalised texts; PostgreSQL, one text), the producer's bulk call, the campaign fan-out,
deferred lateness. Each measure starts its own stack on a fresh ledger, so none inherits
another's rows; a failing measure is reported and the others still run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from benchmarks.throughput import runs
from benchmarks.throughput.options import BenchOptions
from benchmarks.throughput.postgres import fresh_database, server_answers
from benchmarks.throughput.profiling import Profile, profile_call
from benchmarks.throughput.provider import (
    Ceiling,
    SandboxLoad,
    SandboxProcess,
    measure_ceiling,
)
from benchmarks.throughput.report import BenchReport, Figure, Target
from postier.redis_server import start_private_redis
from postier.stack import BULK_PROCESSES_PER_CPU

_T = TypeVar("_T")

#: the targets of the issue, on this machine
E2E_RATIO_TARGET = 3.0
BULK_SECONDS_TARGET = 5.0
#: a campaign of 100,000 fanned out (create → every message row) within this
FAN_OUT_SECONDS_TARGET = 5.0
LATENESS_P99_TARGET = 1.5
WORKER_RSS_TARGET = 200.0


class _Steps:
    """Runs each measure under a status line; an exception becomes an error of the report."""

    def __init__(self, console: Console, report: BenchReport) -> None:
        self.console = console
        self.report = report

    def run(self, what: str, step: Callable[[], _T]) -> _T | None:
        started = time.monotonic()
        with self.console.status(f"{what}…"):
            try:
                value = step()
            except Exception as exc:  # noqa: BLE001 - one failed measure must not stop the run
                self.report.errors.append(f"{what}: {type(exc).__name__}: {exc}")
                self.console.print(f"[red]✗[/] {what}: {exc}")
                return None
        self.console.print(f"[green]✓[/] {what} ({time.monotonic() - started:.0f} s)")
        return value


#: the name of the sandbox's CPU figure of a measure
SANDBOX_CPU = "sandbox CPU per request"


def _sandbox_figure(
    report: BenchReport,
    what: str,
    load: SandboxLoad | None,
    baseline: SandboxLoad | None = None,
) -> None:
    """The sandbox's CPU per provider request over the measure ``what`` (beside plain
    Celery's, when given): what the provider side took from the machine per request."""
    if load is None or load.cpu_per_request_ms is None:
        return
    report.figures.append(
        Figure(
            f"{SANDBOX_CPU}, {what}",
            load.cpu_per_request_ms,
            "ms",
            baseline.cpu_per_request_ms if baseline is not None else None,
            better="lower",
            detail=f"sandbox process CPU {load.cpu_seconds:.2f} s over the measured window / "
            f"{load.requests:,} provider requests it received",
        )
    )


def _ceiling(env: runs.Environment, seconds: float) -> tuple[Ceiling, SandboxLoad]:
    before = env.sandbox.snapshot()
    ceiling = measure_ceiling(env.sandbox.url, seconds=seconds)
    return ceiling, env.sandbox.load_since(before)


def _limit_of(profile: Profile | None, fallback: str) -> str:
    return profile.finding() if profile is not None and profile.error is None else fallback


def run_bench(options: BenchOptions, console: Console) -> BenchReport:
    """Run every measure of ``options``; the report (printed by the caller)."""
    workdir = options.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    report = BenchReport()
    steps = _Steps(console, report)
    redis = start_private_redis(data_dir=workdir / "redis")
    sandbox = SandboxProcess(workdir / "sandbox").start()
    environment = runs.Environment(
        workdir=workdir,
        redis_url=redis.url,
        redis_pid=redis.process.pid if redis.process is not None else None,
        sandbox=sandbox,
        bulk_processes=options.bulk_processes,
    )
    try:
        _measure(options, environment, steps, report)
    finally:
        sandbox.stop()
        redis.stop()
    return report


def _measure(
    options: BenchOptions, env: runs.Environment, steps: _Steps, report: BenchReport
) -> None:
    pool, concurrency = options.worker_pool, options.worker_concurrency
    measured_ceiling = steps.run("sandbox ceiling", lambda: _ceiling(env, options.ceiling_seconds))
    ceiling, ceiling_load = measured_ceiling if measured_ceiling is not None else (None, None)
    baseline = steps.run(
        f"baseline: {options.baseline_messages:,} one-message tasks",
        lambda: runs.run_baseline(env, options.baseline_messages, options.baseline_concurrency),
    )
    base_rate = baseline.rate if baseline is not None else None
    if ceiling is not None:
        report.figures.append(
            Figure(
                "provider endpoint ceiling (sandbox alone)",
                ceiling.requests_per_second,
                "req/s",
                base_rate,
                detail=f"{ceiling.tool}; one recipient per request",
            )
        )
        _sandbox_figure(report, "ceiling (sandbox alone)", ceiling_load)
    if baseline is not None:
        report.figures.append(
            Figure(
                "baseline: one task per message",
                baseline.rate,
                "msg/s",
                baseline.rate,
                detail="drained from a full queue; " + "; ".join(baseline.notes),
            )
        )
        _sandbox_figure(report, "baseline", baseline.sandbox)
    base_sandbox = baseline.sandbox if baseline is not None else None

    def e2e(name: str, url: str | None, messages: int, *, same: bool, profile: bool) -> None:
        measure = steps.run(
            f"Postier end to end: {name}, {messages:,} messages",
            lambda: runs.run_end_to_end(
                env,
                name.replace(" ", "-").replace(",", ""),
                url,
                messages,
                same_text=same,
                pool=pool,
                concurrency=concurrency,
                profile_seconds=options.profile_seconds if profile else 0.0,
            ),
        )
        if measure is None:
            return
        detail = (
            f"enqueue {measure.enqueue_seconds:.1f} s of {measure.seconds:.1f} s; "
            f"worker {pool} x{concurrency}"
        )
        report.figures.append(
            Figure(f"end to end, {name}", measure.rate, "msg/s", base_rate, detail=detail)
        )
        report.figures.append(
            Figure(
                f"worker CPU per message, {name}",
                measure.worker_cpu_per_message_ms,
                "ms",
                baseline.worker_cpu_per_message_ms if baseline is not None else None,
                better="lower",
                detail=f"all processes: {measure.total_cpu_per_message_ms:.2f} ms"
                + (
                    f" (baseline {baseline.total_cpu_per_message_ms:.2f} ms)"
                    if baseline is not None
                    else ""
                ),
            )
        )
        if not same:
            _sandbox_figure(report, name, measure.sandbox, base_sandbox)
        e2e_results[name] = measure
        if measure.profile is not None:
            report.findings.append(f"{name}: {measure.profile.finding()}")

    e2e_results: dict[str, runs.Measure] = {}
    e2e("SQLite ledger, one text", None, options.e2e_messages, same=True, profile=options.profile)
    e2e(
        "SQLite ledger, personalised texts",
        None,
        options.personalised_messages,
        same=False,
        profile=options.profile,
    )
    pg_missing = None
    if options.postgres_url:
        pg_missing = server_answers(options.postgres_url)
        if pg_missing is None:
            with fresh_database(options.postgres_url) as database_url:
                e2e(
                    "PostgreSQL ledger, one text",
                    database_url,
                    options.e2e_messages,
                    same=True,
                    profile=False,
                )
    else:
        pg_missing = "no PostgreSQL URL given"
    if pg_missing is not None:
        report.figures.append(
            Figure("end to end, PostgreSQL ledger", None, "msg/s", missing=f"n/a: {pg_missing}")
        )

    if options.postgres_url and pg_missing is None:
        with fresh_database(options.postgres_url) as database_url:
            e2e(
                "PostgreSQL ledger, personalised texts",
                database_url,
                options.personalised_messages,
                same=False,
                profile=False,
            )
    peer = steps.run(
        f"asyncio peer: {options.peer_messages:,} messages",
        lambda: runs.run_peer(env, options.peer_messages),
    )
    if peer is not None:
        report.figures.append(
            Figure(
                "asyncio peer, personalised texts",
                peer.rate,
                "msg/s",
                base_rate,
                detail="; ".join(peer.notes),
            )
        )
        _sandbox_figure(report, "asyncio peer", peer.sandbox, base_sandbox)
        personal = e2e_results.get("SQLite ledger, personalised texts")
        if personal is not None:
            report.figures.append(
                Figure(
                    "end to end, SQLite ledger, personalised texts",
                    personal.rate,
                    "msg/s",
                    peer.rate,
                    peer="asyncio peer",
                    detail="the same measure against the second peer",
                )
            )
    slow = _at_latency(options, env, steps, report, pool, concurrency)
    lanes = _lane_figures(options, env, steps, report, pool, concurrency)

    base_enqueue = (
        baseline.messages / baseline.enqueue_seconds
        if baseline is not None and baseline.enqueue_seconds > 0
        else None
    )
    bulks: dict[str, runs.Measure] = {}

    def bulk_call(ledger: str, url: str | None) -> None:
        what = f"producer: one bulk call of {options.bulk_messages:,}, {ledger}"
        measure = steps.run(
            what,
            lambda: runs.run_bulk(
                env, options.bulk_messages, pool=pool, concurrency=concurrency, database_url=url
            ),
        )
        if measure is None:
            return
        bulks[ledger] = measure
        report.figures.append(
            Figure(
                what,
                measure.rate,
                "msg/s",
                base_enqueue,
                detail=f"{measure.seconds:.2f} s, rows stored and tasks published; baseline: "
                "publishing one task per message",
            )
        )

    bulk_call("SQLite", None)
    if options.postgres_url and pg_missing is None:
        with fresh_database(options.postgres_url) as database_url:
            bulk_call("PostgreSQL", database_url)
    bulk = bulks.get("SQLite")
    _campaign_figures(report, steps, options, env, base_enqueue, base_rate)
    lateness = None
    if options.deferred:
        insert_rate = bulk.rate if bulk is not None and bulk.rate > 0 else 1_000.0
        lead = 5.0 + 1.5 * options.deferred_messages / insert_rate
        lateness = steps.run(
            f"deferred: {options.deferred_messages:,} scheduled over {options.deferred_span:g} s,"
            f" the first {options.deferred_window:g} s timed",
            lambda: runs.run_deferred(
                env,
                options.deferred_messages,
                options.deferred_span,
                options.deferred_window,
                pool=pool,
                concurrency=concurrency,
                lead=lead,
            ),
        )
    if lateness is not None:
        detail = (
            f"{lateness.messages:,} sends timed, {lateness.due_rate:,.0f} due per second, "
            f"{options.deferred_messages:,} scheduled in all"
        )
        report.figures.append(
            Figure("deferred lateness p50", lateness.p50, "s", better="lower", detail=detail)
        )
        report.figures.append(
            Figure(
                "deferred lateness p99",
                lateness.p99,
                "s",
                better="lower",
                detail=f"worst {lateness.worst:.2f} s",
            )
        )
    measures = list(e2e_results.values())
    worker_peak = max((m.usage.worker_peak_mib for m in measures), default=None)
    beat_peak = max((m.usage.beat_peak_mib for m in measures), default=None)
    worker_pss: float | None = None
    if worker_peak is not None:
        peaks: dict[str, float] = {}
        for m in measures:
            for role, mib in m.usage.worker_peaks.items():
                peaks[role] = max(peaks.get(role, 0.0), mib)
        each = ", ".join(f"{role} {mib:.0f} MiB" for role, mib in sorted(peaks.items()))
        report.figures.append(
            Figure(
                "worker peak RSS (the larger worker)",
                worker_peak,
                "MiB",
                baseline.usage.worker_peak_mib if baseline is not None else None,
                better="lower",
                detail=f"{each}; main process and pool summed, as the baseline's (a forked "
                "pool's shared pages counted in each process)",
            )
        )
        pss: dict[str, float] = {}
        for m in measures:
            for role, mib in m.usage.worker_pss.items():
                pss[role] = max(pss.get(role, 0.0), mib)
        if pss:
            worker_pss = max(pss.values())
            bulk_processes = options.bulk_processes or BULK_PROCESSES_PER_CPU * (
                os.cpu_count() or 1
            )
            report.figures.append(
                Figure(
                    "worker memory, peak PSS (the larger worker)",
                    worker_pss,
                    "MiB",
                    better="lower",
                    detail=", ".join(f"{r} {m:.0f} MiB" for r, m in sorted(pss.items()))
                    + "; main process and pool, shared pages counted once, sampled every "
                    f"0.25 s while each measure drained; bulk worker prefork x{bulk_processes}",
                )
            )
    if beat_peak is not None:
        report.figures.append(Figure("beat peak RSS", beat_peak, "MiB", better="lower"))
    _targets(report, options, e2e_results, base_rate, bulks, lateness, worker_peak, worker_pss, env)
    _new_targets(report, e2e_results, baseline, slow, lanes)


def _campaign_figures(
    report: BenchReport,
    steps: _Steps,
    options: BenchOptions,
    env: runs.Environment,
    base_enqueue: float | None,
    base_rate: float | None,
) -> None:
    if importlib.util.find_spec("producers.campaigns") is None:
        report.figures.append(
            Figure("campaign fan-out", None, "msg/s", missing="n/a: campaigns not built")
        )
        return
    measure = steps.run(
        f"campaign: {options.campaign_recipients:,} recipients, one text",
        lambda: runs.run_campaign(
            env,
            options.campaign_recipients,
            pool=options.worker_pool,
            concurrency=options.worker_concurrency,
        ),
    )
    if measure is None:
        return
    report.figures.append(
        Figure(
            "campaign fan-out (create → message rows)",
            measure.fan_out.rate,
            "msg/s",
            base_enqueue,
            detail=f"create() {measure.create_seconds * 1000:.0f} ms; "
            f"{measure.recipients:,} rows in {measure.fan_out.seconds:.1f} s; "
            "baseline: publishing one task per message",
        )
    )
    per_100k = measure.fan_out.seconds * 100_000 / max(1, measure.recipients)
    met = per_100k < FAN_OUT_SECONDS_TARGET
    report.targets.append(
        Target(
            "a campaign of 100,000 fanned out < 5 s",
            f"{per_100k:.1f} s per 100,000"
            + ("" if measure.recipients == 100_000 else f" ({measure.recipients:,} measured)"),
            met,
            ""
            if met
            else "from create() to the last row; the bulk worker's processes fan "
            "out a chunk each while the first chunks' messages are sent",
        )
    )
    report.figures.append(
        Figure(
            "campaign end to end (create → ledger sent)",
            measure.end_to_end.rate,
            "msg/s",
            base_rate,
            detail=f"{measure.end_to_end.seconds:.1f} s; Octopush batches of the campaigns module",
        )
    )


def _targets(
    report: BenchReport,
    options: BenchOptions,
    e2e_results: dict[str, runs.Measure],
    base_rate: float | None,
    bulks: dict[str, runs.Measure],
    lateness: runs.Lateness | None,
    worker_peak: float | None,
    worker_pss: float | None,
    env: runs.Environment,
) -> None:
    for name, measure in e2e_results.items():
        if base_rate is None:
            break
        if "personalised" in name:
            continue  # their own targets (``_new_targets``)
        ratio = measure.rate / base_rate
        met = ratio >= E2E_RATIO_TARGET
        limit = "" if met else _limit_of(measure.profile, "see the profile of the SQLite run")
        if not met and "personalised" in name:
            limit = (
                "one provider request per message, as the baseline: the HTTP client and the "
                "sandbox cost about as much per message as the baseline's whole task; "
                + _limit_of(measure.profile, "")
            )
        report.targets.append(
            Target(f"end to end ≥ 3x baseline ({name})", f"{ratio:.2f}x", met, limit)
        )
    for ledger, bulk in bulks.items():
        per_100k = bulk.seconds * 100_000 / max(1, bulk.messages)
        met = per_100k < BULK_SECONDS_TARGET
        limit = ""
        if not met:
            limit = _profile_producer(env, min(bulk.messages, 20_000))
            if ledger != "SQLite":
                limit = "(profiled on SQLite) " + limit
        report.targets.append(
            Target(
                f"100,000 accepted by one bulk call < 5 s, {ledger}",
                f"{per_100k:.1f} s per 100,000"
                + ("" if bulk.messages == 100_000 else f" ({bulk.messages:,} measured)"),
                met,
                limit,
            )
        )
    if lateness is not None:
        met = lateness.p99 < LATENESS_P99_TARGET
        limit = ""
        if not met:
            limit = (
                f"{lateness.due_rate:,.0f} sends due per second; beat releases every "
                "dispatch.release_interval (0.5 s) and the workers must keep up with the rate"
            )
        report.targets.append(
            Target("deferred p99 lateness < 1.5 s", f"{lateness.p99:.2f} s", met, limit)
        )
    if worker_peak is not None:
        # judged on the memory the worker occupies: its tree's PSS, where a forked pool's shared
        # pages count once (a container's limit sees that); the sum of each process's peak RSS
        # counts them once per process and is printed beside it
        memory = worker_pss if worker_pss else worker_peak
        how = "peak PSS of the tree" if worker_pss else "summed peak RSS"
        report.targets.append(
            Target(
                "worker RSS < 200 MB",
                f"{memory:.0f} MiB ({how}; summed peak RSS {worker_peak:.0f} MiB)",
                memory < WORKER_RSS_TARGET,
                "" if memory < WORKER_RSS_TARGET else "see the worker's pool size",
            )
        )


def _profile_producer(env: runs.Environment, messages: int) -> str:
    """Profile a bulk call of ``messages`` in this process (pyinstrument); the finding."""
    from benchmarks.throughput.runs import SAME_TEXT, bench_numbers, bench_settings
    from postier.dispatch.producer import Producer, SmsRequest
    from postier.ledger.db import make_engine, upgrade

    path = env.workdir / "producer-profile" / "ledger.db"
    shutil.rmtree(path.parent, ignore_errors=True)
    settings = bench_settings().model_copy(
        update={"redis_url": env.redis_url, "database_url": f"sqlite:///{path}"}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    producer = Producer(settings, engine=engine)
    requests = [SmsRequest(n, SAME_TEXT, provider="octopush") for n in bench_numbers(messages)]
    _, profile = profile_call(lambda: producer.send_many(requests))
    env.flush_broker()
    engine.dispose()
    return "producer " + profile.finding(top=4)


#: the per-message targets (personalised texts: one provider request each)
PERSONALISED_RATIO_TARGET = 1.5
PERSONALISED_PG_RATIO_TARGET = 1.2
SLOW_PEER_RATIO_TARGET = 1.0
SLOW_BASELINE_RATIO_TARGET = 15.0
#: the transactional lane's targets
CODE_MAX_TARGET = 0.5
BULK_DROP_TARGET = 0.10


class SlowRun:
    """The personalised measures at a provider's latency: plain Celery, the peer, Postier."""

    def __init__(
        self,
        latency: float,
        baseline: runs.Measure | None,
        peer: runs.Measure | None,
        postier: runs.Measure | None,
    ) -> None:
        self.latency = latency
        self.baseline = baseline
        self.peer = peer
        self.postier = postier


def _at_latency(
    options: BenchOptions,
    env: runs.Environment,
    steps: _Steps,
    report: BenchReport,
    pool: str,
    concurrency: int,
) -> SlowRun | None:
    latency = options.latency
    if latency <= 0:
        return None
    ms = f"{latency * 1000:.0f} ms"
    baseline = steps.run(
        f"baseline at {ms}: {options.slow_baseline_messages:,} one-message tasks",
        lambda: runs.run_baseline(
            env, options.slow_baseline_messages, options.baseline_concurrency, latency=latency
        ),
    )
    peer = steps.run(
        f"asyncio peer at {ms}: {options.peer_messages:,} messages",
        lambda: runs.run_peer(env, options.peer_messages, latency=latency),
    )
    postier = steps.run(
        f"Postier at {ms}: personalised texts, {options.personalised_messages:,} messages",
        lambda: runs.run_end_to_end(
            env,
            "personalised-slow",
            None,
            options.personalised_messages,
            same_text=False,
            pool=pool,
            concurrency=concurrency,
            latency=latency,
        ),
    )
    base_rate = baseline.rate if baseline is not None else None
    if baseline is not None:
        report.figures.append(
            Figure(f"baseline at {ms}", baseline.rate, "msg/s", baseline.rate, detail=ms)
        )
    if peer is not None:
        report.figures.append(
            Figure(f"asyncio peer at {ms}", peer.rate, "msg/s", base_rate, detail=ms)
        )
    if postier is not None:
        detail = f"SQLite ledger; provider answers after {ms}"
        report.figures.append(
            Figure(
                f"end to end at {ms}, personalised texts",
                postier.rate,
                "msg/s",
                base_rate,
                detail=detail,
            )
        )
        _sandbox_figure(
            report,
            f"personalised texts at {ms}",
            postier.sandbox,
            baseline.sandbox if baseline is not None else None,
        )
        if peer is not None:
            report.figures.append(
                Figure(
                    f"end to end at {ms}, personalised texts",
                    postier.rate,
                    "msg/s",
                    peer.rate,
                    peer="asyncio peer",
                    detail=detail,
                )
            )
    return SlowRun(latency, baseline, peer, postier)


def _lane_figures(
    options: BenchOptions,
    env: runs.Environment,
    steps: _Steps,
    report: BenchReport,
    pool: str,
    concurrency: int,
) -> list[tuple[float, runs.TransactionalLatency]]:
    found = []
    for latency in sorted({0.0, options.latency}):
        ms = f"{latency * 1000:.0f} ms"
        result = steps.run(
            f"transactional lane at {ms}: {options.lane_codes} codes idle, then while "
            f"{options.lane_bulk:,} personalised bulk messages drain",
            lambda latency=latency: runs.run_transactional(  # type: ignore[misc]
                env,
                codes=options.lane_codes,
                bulk=options.lane_bulk,
                pool=pool,
                concurrency=concurrency,
                latency=latency,
            ),
        )
        if result is None:
            continue
        found.append((latency, result))
        for label, values in (("idle", result.idle), ("under bulk", result.loaded)):
            p50, p99, worst = runs.TransactionalLatency.summary(values)
            report.figures.append(
                Figure(
                    f"code latency at {ms}, {label} (p50)",
                    p50,
                    "s",
                    better="lower",
                    detail=f"p99 {p99:.3f} s, max {worst:.3f} s over {len(values)} codes; "
                    "producer call → ledger sent",
                )
            )
        alone, loaded = result.bulk_alone, result.bulk_with_codes
        report.figures.append(
            Figure(
                f"bulk throughput at {ms} with codes going through",
                loaded.rate,
                "msg/s",
                alone.rate,
                peer="the same bulk alone",
                detail=f"{options.lane_bulk:,} personalised; "
                f"{result.after_bulk} of {len(result.loaded)} codes sent after the bulk ended",
            )
        )
    return found


def _new_targets(
    report: BenchReport,
    e2e_results: dict[str, runs.Measure],
    baseline: runs.Measure | None,
    slow: SlowRun | None,
    lanes: list[tuple[float, runs.TransactionalLatency]],
) -> None:
    base_rate = baseline.rate if baseline is not None else None
    for name, goal in (
        ("SQLite ledger, personalised texts", PERSONALISED_RATIO_TARGET),
        ("PostgreSQL ledger, personalised texts", PERSONALISED_PG_RATIO_TARGET),
    ):
        measure = e2e_results.get(name)
        if measure is None or base_rate is None:
            continue
        ratio = measure.rate / base_rate
        met = ratio >= goal
        report.targets.append(
            Target(
                f"personalised texts at 0 ms ≥ {goal:g}x plain Celery ({name.split(',')[0]})",
                f"{ratio:.2f}x",
                met,
                "" if met else _limit_of(measure.profile, "see the profile of the SQLite run"),
            )
        )
    personal = e2e_results.get("SQLite ledger, personalised texts")
    if personal is not None and baseline is not None:
        ours, theirs = personal.worker_cpu_per_message_ms, baseline.worker_cpu_per_message_ms
        met = ours <= theirs
        report.targets.append(
            Target(
                "worker CPU per personalised message ≤ plain Celery's per task",
                f"{ours:.2f} ms vs {theirs:.2f} ms",
                met,
                "" if met else _limit_of(personal.profile, "see the profile"),
            )
        )
    if slow is not None and slow.postier is not None:
        ms = f"{slow.latency * 1000:.0f} ms"
        if slow.peer is not None:
            ratio = slow.postier.rate / slow.peer.rate
            report.targets.append(
                Target(
                    f"personalised texts at {ms} ≥ the asyncio peer",
                    f"{ratio:.2f}x",
                    ratio >= SLOW_PEER_RATIO_TARGET,
                )
            )
        if slow.baseline is not None:
            ratio = slow.postier.rate / slow.baseline.rate
            report.targets.append(
                Target(
                    f"personalised texts at {ms} ≥ 15x plain Celery",
                    f"{ratio:.1f}x",
                    ratio >= SLOW_BASELINE_RATIO_TARGET,
                )
            )
    for latency, result in lanes:
        ms = f"{latency * 1000:.0f} ms"
        _, _, worst = runs.TransactionalLatency.summary(result.loaded)
        report.targets.append(
            Target(
                f"every code sent ≤ 0.5 s under a personalised bulk send ({ms})",
                f"max {worst:.3f} s over {len(result.loaded)}",
                worst <= CODE_MAX_TARGET and result.after_bulk == 0,
                ""
                if result.after_bulk == 0
                else f"{result.after_bulk} codes went after the bulk had ended: not a test",
            )
        )
        alone, loaded = result.bulk_alone.rate, result.bulk_with_codes.rate
        drop = 1 - loaded / alone if alone > 0 else 0.0
        report.targets.append(
            Target(
                f"bulk throughput drops ≤ 10% with codes going through ({ms})",
                f"{drop * 100:+.1f}%",
                drop <= BULK_DROP_TARGET,
                "" if drop <= BULK_DROP_TARGET else "see the two bulk figures",
            )
        )
