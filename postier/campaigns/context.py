"""What the campaign functions of one process share: settings, ledger, clients, publishers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy.engine import Engine

from postier.campaigns.rows import RowFactory
from postier.campaigns.tasks import CampaignTasks
from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ratelimit import RateLimiter
from postier.rules.quiet_hours import QuietHours

#: a running marketing campaign stops this long before the quiet hours begin, so nothing is
#: queued or with a provider at 20:00 (at least five passes of beat, as one may come late)
MIN_QUIET_MARGIN = timedelta(seconds=10)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CampaignContext:
    """One per process (the worker builds it once, like its ``Dispatcher``)."""

    settings: Settings
    engine: Engine
    clients: ProviderClients
    #: the producer's row builders (``postier.campaigns.rows.LedgerRowFactory``)
    factory: RowFactory
    #: publishes message ids (send tasks)
    publisher: Publisher
    #: publishes campaign tasks (plan, fan-out, batches)
    tasks: CampaignTasks
    limiter: RateLimiter | None = None
    #: the time the rules are applied at (start times, quiet hours); tests move it
    clock: Callable[[], datetime] = field(default=utc_now)
    #: the process's dispatcher, whose batch path sends campaign batches (built from the
    #: fields above when not given)
    dispatcher: Dispatcher | None = None

    @cached_property
    def sender(self) -> Dispatcher:
        """The dispatcher campaign batches go through (``postier.dispatch.batches``)."""
        if self.dispatcher is not None:
            return self.dispatcher
        return Dispatcher(self.settings, self.engine, self.clients, self.limiter)

    @cached_property
    def quiet_hours(self) -> QuietHours:
        return QuietHours.from_settings(self.settings.campaigns)

    @property
    def quiet_margin(self) -> timedelta:
        """How long before the quiet hours marketing stops (see ``MIN_QUIET_MARGIN``)."""
        return max(MIN_QUIET_MARGIN, timedelta(seconds=5 * self.settings.campaigns.tick_interval))
