"""The benchmark harness: Postier against a plain Celery baseline, in one run on one machine.

``make bench`` (``python -m benchmarks.throughput``; ``--quick`` for small sizes)
measures, against the same sandbox process and the same Redis: the baseline (one task per
message, prefork, no ledger: ``baseline``), Postier end to end on SQLite and PostgreSQL, the
producer's bulk call, deferred-send lateness, memory and CPU per message, and the sandbox's
own ceiling; then checks the issue's targets and says what limits a missed one (``profiling``).
"""

from benchmarks.throughput.harness import run_bench
from benchmarks.throughput.options import BenchOptions
from benchmarks.throughput.report import BenchReport, print_report

__all__ = ["BenchOptions", "BenchReport", "print_report", "run_bench"]
