"""What every simulated provider shares: a clock, fault plans, and the record of sends.

The record (``SentRecord``) is the provider's own view of what it accepted; chaos audits
compare it with the ledger. Delivery state is derived from the clock, so tests can move
time on (``Clock.advance``) instead of sleeping.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal["429", "503", "500", "timeout", "drop_after", "congestion"]
FAULT_KINDS: tuple[str, ...] = ("429", "503", "500", "timeout", "drop_after", "congestion")

#: a recipient whose number ends with this is never delivered (bounced) in the sandbox
UNDELIVERABLE_SUFFIX = "9999"


class Clock:
    """Wall time plus an offset that tests and the admin API can move forward."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0


@dataclass
class FaultPlan:
    """Faults for one provider: fixed latency, random rates, and a script of next outcomes.

    ``script`` is consumed one entry per request, before the random rates apply, which makes
    retry tests deterministic ("503 twice, then answer").
    """

    latency: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_drop_after: float = 0.0
    rate_congestion: float = 0.0
    retry_after: float | None = 1.0
    #: how long a "timeout" hangs before answering 504 (longer than the client's read timeout)
    hang_seconds: float = 15.0
    script: deque[str] = field(default_factory=deque)

    def next_fault(self, rng: random.Random) -> str | None:
        if self.script:
            outcome = self.script.popleft()
            return None if outcome == "ok" else outcome
        for kind, rate in (
            ("429", self.rate_429),
            ("503", self.rate_503),
            ("500", self.rate_500),
            ("timeout", self.rate_timeout),
            ("drop_after", self.rate_drop_after),
            ("congestion", self.rate_congestion),
        ):
            if rate > 0 and rng.random() < rate:
                return kind
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["script"] = list(self.script)
        return data


@dataclass
class SentRecord:
    """One message as the provider recorded it: the audit's source of truth."""

    provider: str
    message_id: str
    recipient: str
    text: str
    accepted_at: float
    #: when the provider will hand it to the operator (deferred sends), else accepted_at
    send_at: float
    channel: str = "sms"
    batch_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def delivery_state(self, now: float, delay: float) -> str:
        """``scheduled``, ``sent``, ``delivered`` or ``undelivered`` at ``now``."""
        if now < self.send_at:
            return "scheduled"
        if now < self.send_at + delay:
            return "sent"
        if self.recipient.endswith(UNDELIVERABLE_SUFFIX):
            return "undelivered"
        return "delivered"

    def final_at(self, delay: float) -> float:
        return self.send_at + delay


class SandboxCore:
    """State shared by the simulated providers: clock, faults, ids, the record of sends."""

    def __init__(self, *, delivery_delay: float = 1.0, seed: int | None = None) -> None:
        self.clock = Clock()
        self.delivery_delay = delivery_delay
        self.faults: dict[str, FaultPlan] = {}
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.records: list[SentRecord] = []
        self.request_counts: dict[str, int] = {}

    def next_id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids)}"

    def record(self, rec: SentRecord) -> None:
        self.records.append(rec)

    def records_for(self, provider: str) -> list[SentRecord]:
        return [r for r in self.records if r.provider == provider]

    def plan(self, provider: str) -> FaultPlan:
        return self.faults.setdefault(provider, FaultPlan())

    def reset(self) -> None:
        self.clock.reset()
        self.faults.clear()
        self.records.clear()
        self.request_counts.clear()
