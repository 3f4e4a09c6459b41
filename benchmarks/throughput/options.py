"""What the benchmark measures, and how much: every size is an option, ``--quick`` makes all small.

The defaults keep a full ``make bench`` within about ten minutes on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Sizes and switches of one benchmark run."""

    workdir: Path = Path("var/bench")
    #: messages the baseline drains
    baseline_messages: int = 5_000
    #: the baseline's prefork processes (Celery's default is the number of CPUs)
    baseline_concurrency: int = 0
    #: messages sent end to end, per ledger backend (one text for all: a campaign's)
    e2e_messages: int = 20_000
    #: messages with a text of their own each (one provider request each), SQLite ledger
    personalised_messages: int = 2_000
    #: messages of the one bulk producer call whose acceptance is timed
    bulk_messages: int = 100_000
    #: scheduled messages, the span of their send times, and the first seconds of it measured:
    #: a backlog of 100,000 scheduled sends, of which those due in the window are timed
    deferred_messages: int = 100_000
    deferred_span: float = 1_000.0
    deferred_window: float = 30.0
    #: a provider's answer delay, as across the internet: the personalised measures run again
    #: with the sandbox answering this late (plain Celery, the asyncio peer and Postier)
    latency: float = 0.08
    #: messages plain Celery drains at that latency (about 23/s on 2 cores: kept small)
    slow_baseline_messages: int = 400
    #: messages the asyncio peer drains, at 0 ms and at the latency
    peer_messages: int = 5_000
    #: one-time codes sent one by one, idle and while a personalised bulk send drains
    lane_codes: int = 20
    #: the personalised bulk send the codes go through
    lane_bulk: int = 5_000
    #: recipients of the campaign whose fan-out is timed (when campaigns exist): the size of
    #: the target (fan-out chunks are 5,000 contacts: a smaller campaign keeps processes idle)
    campaign_recipients: int = 100_000
    #: seconds of load for the sandbox's own ceiling
    ceiling_seconds: float = 5.0
    #: the dispatcher's worker: pool and concurrency (what ``postier up`` starts)
    worker_pool: str = "threads"
    worker_concurrency: int = 8
    #: processes of the bulk worker's prefork pool; 0: what ``postier up`` starts (per CPU)
    bulk_processes: int = 0
    #: the ledger on PostgreSQL: a server with trust auth, where a fresh database is made
    postgres_url: str | None = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    #: sample the worker with py-spy during the SQLite end-to-end run
    profile: bool = True
    profile_seconds: float = 8.0
    #: the deferred-lateness measure (the longest one) may be left out
    deferred: bool = True

    def quick(self) -> BenchOptions:
        """Small sizes: the whole run in a minute or two, for a smoke test."""
        return replace(
            self,
            baseline_messages=600,
            e2e_messages=1_000,
            personalised_messages=300,
            bulk_messages=5_000,
            deferred_messages=2_000,
            deferred_span=20.0,
            deferred_window=5.0,
            campaign_recipients=2_000,
            slow_baseline_messages=60,
            peer_messages=600,
            lane_codes=5,
            lane_bulk=600,
            ceiling_seconds=2.0,
            profile_seconds=2.0,
        )
