"""Campaign tasks: plan, fan out a chunk, send an Octopush batch; and beat's two passes.

Thin, like the send task: a campaign id (and a chunk's bounds) in, the work in
``postier.campaigns``. The process's campaign context is built once, on the dispatcher's
engine, clients and limiter.
"""

from __future__ import annotations

import os
import threading

from postier import tasknames
from postier.campaigns import batch, fanout, lifecycle
from postier.campaigns.context import CampaignContext
from postier.campaigns.rows import LedgerRowFactory
from postier.campaigns.tasks import CampaignTasks
from postier.dispatch.rows import RowBuilder
from worker.app import app
from worker.context import process_context

_lock = threading.Lock()
_contexts: dict[int, CampaignContext] = {}


def campaign_context() -> CampaignContext:
    """This process's campaign context, built on first use (never before a fork)."""
    pid = os.getpid()
    found = _contexts.get(pid)
    if found is not None:
        return found
    with _lock:
        found = _contexts.get(pid)
        if found is None:
            dispatcher, publisher = process_context(app)
            found = CampaignContext(
                settings=dispatcher.settings,
                engine=dispatcher.engine,
                clients=dispatcher.clients,
                factory=LedgerRowFactory(RowBuilder(dispatcher.settings)),
                publisher=publisher,
                tasks=CampaignTasks(app),
                limiter=dispatcher.limiter,
                dispatcher=dispatcher,
            )
            _contexts.clear()
            _contexts[pid] = found
    return found


@app.task(name=tasknames.PLAN_CAMPAIGN)
def plan_campaign(campaign_id: str) -> int:
    """Read a campaign's audience into chunks and publish their tasks; how many chunks."""
    return fanout.plan_campaign(campaign_context(), campaign_id).chunks


@app.task(name=tasknames.FAN_OUT_CAMPAIGN_CHUNK)
def fan_out_campaign_chunk(campaign_id: str, start: int, stop: int) -> int:
    """Contacts ``start``–``stop`` of a campaign into messages; how many were stored."""
    return fanout.fan_out_chunk(campaign_context(), campaign_id, start, stop).created


@app.task(name=tasknames.SEND_CAMPAIGN_BATCH)
def send_campaign_batch(campaign_id: str) -> int:
    """Up to 500 queued messages of an Octopush campaign in one request; how many went."""
    return batch.send_campaign_batch(campaign_context(), campaign_id).sent


@app.task(name=tasknames.RELEASE_DUE_CAMPAIGNS)
def release_due_campaigns() -> int:
    """Beat's pass over live campaigns: start, quiet hours, release, done; messages released."""
    return lifecycle.tick(campaign_context()).released
