"""The benchmark harness: Postier against a plain Celery baseline, in one run on one machine.

``make bench`` (``postier bench``, ``python -m postier.bench``; ``--quick`` for small sizes)
measures, against the same sandbox process and the same Redis: the baseline (one task per
message, prefork, no ledger: ``baseline``), Postier end to end on SQLite and PostgreSQL, the
producer's bulk call, deferred-send lateness, memory and CPU per message, and the sandbox's
own ceiling; then checks the issue's targets and says what limits a missed one (``profiling``).
"""

from postier.bench.harness import run_bench
from postier.bench.options import BenchOptions
from postier.bench.report import BenchReport, print_report

__all__ = ["BenchOptions", "BenchReport", "print_report", "run_bench"]
