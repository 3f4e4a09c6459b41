"""Octopush campaigns with one text: batched requests, each recipient's outcome on its row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.campaigns import lifecycle
from postier.campaigns.context import CampaignContext
from postier.campaigns.queries import claim_batch
from postier.config import Settings
from postier.dispatch import batches
from postier.dispatch.polling import apply_receipt
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus, messages_table
from postier.ledger.queries import events_for, release_due
from postier.providers.octopush import parse_receipt
from postier.sandbox import Sandbox
from postier.sandbox.server import SandboxServer
from producers.campaigns import CampaignHandle, CampaignProducer
from tests.campaigns.conftest import Clock, Drain, allowed_morning, numbers

#: a Belgian mobile: Octopush's French premium type refuses it per recipient (151)
ABROAD = "+32470123456"


def rows_of(engine: Engine, campaign_id: str) -> list[Message]:
    with session_scope(engine) as session:
        query = select(Message).where(messages_table.c.campaign_id == campaign_id)
        return list(session.execute(query).scalars())


def octopush_requests(sandbox: Sandbox) -> Counter[str]:
    return Counter(str(r["batch_id"]) for r in sandbox.records("octopush"))


@pytest.fixture
def started(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, clock: Clock
) -> Callable[..., CampaignHandle]:
    """Create a marketing Octopush campaign for an allowed morning and start it."""

    def start(recipients: list[str], text: str = "Soldes -30% ce week-end") -> CampaignHandle:
        at = allowed_morning()
        handle = campaigns.create("soldes", text=text, recipients=recipients, send_at=at)
        assert handle.status == "scheduled"
        drain.run()  # plan and chunks: rows held until the start
        clock.now = at
        report = lifecycle.tick(ctx)
        assert report.started == 1 and report.released == len(set(recipients))
        return handle

    return start


def test_one_request_per_500_recipients_and_each_outcome_recorded(
    started, drain: Drain, sandbox: Sandbox, engine: Engine, status
) -> None:
    handle = started([*numbers(620), ABROAD])
    ran = drain.run()
    assert ran[tasknames.SEND_CAMPAIGN_BATCH] == 2
    per_request = octopush_requests(sandbox)  # accepted recipients of each request
    assert len(per_request) == 2 and max(per_request.values()) <= 500
    assert sum(per_request.values()) == 620
    rows = {row.recipient: row for row in rows_of(engine, handle.id)}
    refused = rows.pop(ABROAD)
    assert refused.status == MessageStatus.FAILED and "[151]" in (refused.last_error or "")
    assert {row.status for row in rows.values()} == {MessageStatus.SENT}
    records = {r["recipient"]: r for r in sandbox.records("octopush")}
    assert len(records) == 620
    for recipient, row in rows.items():
        # the id Octopush receipts carry, and the STOP mention French premium demands
        assert row.provider_message_id == records[recipient]["message_id"]
        assert records[recipient]["text"] == "Soldes -30% ce week-end\nSTOP au 36111"
        assert row.parts == 1 and row.cost is not None and row.attempts == 1
    assert status(handle.id).states["sent"] == 620


def test_delivery_receipts_find_each_batched_message(
    started, drain: Drain, sandbox: Sandbox, sandbox_server: SandboxServer, engine: Engine
) -> None:
    handle = started(numbers(3))
    drain.run()
    sandbox.core.clock.advance(5)
    bodies = httpx.get(f"{sandbox_server.url}/_sandbox/octopush/receipts").json()
    delivered = [b for b in bodies if b["status"] == "DELIVERED"]
    assert len(delivered) == 3
    for body in delivered:
        assert apply_receipt(engine, parse_receipt(body), body["number"])
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.DELIVERED}


def test_a_lost_answer_is_settled_by_the_same_request_id(
    started, drain: Drain, sandbox: Sandbox, engine: Engine
) -> None:
    handle = started(numbers(40))
    # the request is processed, then the answer is lost: the resend gets 120
    sandbox.set_faults("octopush", script=["drop_after"])
    drain.run()
    rows = rows_of(engine, handle.id)
    assert {row.status for row in rows} == {MessageStatus.SENT}
    assert len(sandbox.records("octopush")) == 40  # sent once
    with session_scope(engine) as session:
        trail = [e.provider_status for e in events_for(session, rows[0].id)]
    assert trail[-1] == "120"


def test_unknown_batches_are_settled_by_the_reaping_pass(
    started, drain: Drain, sandbox: Sandbox, engine: Engine, ctx: CampaignContext
) -> None:
    handle = started(numbers(30))
    sandbox.set_faults("octopush", script=["drop_after", "drop_after"])
    drain.run()
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.UNKNOWN}
    assert batches.reap_batches(ctx.sender) == 30
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.SENT}
    assert len(sandbox.records("octopush")) == 30


def test_a_lost_answer_then_a_refused_resend_never_sends_twice(
    started, drain: Drain, sandbox: Sandbox, engine: Engine, ctx: CampaignContext
) -> None:
    handle = started(numbers(20))
    # processed with its answer lost, then the resend meets a 503 (with more behind it than
    # the in-process retries): the batch must stay unknown, not go again under a new id
    sandbox.set_faults("octopush", retry_after=0.01, script=["drop_after", "503", "503", "503"])
    drain.run()
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.UNKNOWN}
    assert len(sandbox.records("octopush")) == 20
    assert batches.reap_batches(ctx.sender) == 20  # settled by Octopush 120
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.SENT}
    assert len(sandbox.records("octopush")) == 20  # still once each


def test_a_batch_whose_worker_was_lost_is_sent_under_its_request_id(
    started, drain: Drain, sandbox: Sandbox, engine: Engine, ctx: CampaignContext
) -> None:
    handle = started(numbers(25))
    drain.run(only=lambda name: False)  # the batch task is lost with its worker...
    with session_scope(engine) as session:  # ...after claiming its rows
        claimed = claim_batch(
            session, handle.id, "b" * 32, datetime.now(ctx.clock().tzinfo), limit=500
        )
    assert len(claimed) == 25
    patient = ctx.settings.model_copy(
        update={"campaigns": ctx.settings.campaigns.model_copy(update={"batch_stuck_after": 30})}
    )
    assert batches.reap_batches(_with(ctx, patient).sender) == 0  # not stuck long enough yet
    eager = ctx.settings.model_copy(
        update={"campaigns": ctx.settings.campaigns.model_copy(update={"batch_stuck_after": 0})}
    )
    assert batches.reap_batches(_with(ctx, eager).sender) == 25
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.SENT}
    assert len(sandbox.records("octopush")) == 25


def _with(ctx: CampaignContext, settings: Settings) -> CampaignContext:
    return CampaignContext(
        settings=settings,
        engine=ctx.engine,
        clients=ctx.clients,
        factory=ctx.factory,
        publisher=ctx.publisher,
        tasks=ctx.tasks,
        clock=ctx.clock,
    )


def test_a_congested_route_schedules_the_batch_then_it_goes_on_in_one_request(
    started,
    drain: Drain,
    sandbox: Sandbox,
    engine: Engine,
    ctx: CampaignContext,
) -> None:
    """503s beyond the in-process retries: the batch's messages wait ``scheduled`` for the
    provider's Retry-After, the campaign goes on; released, they go out in one request."""
    handle = started(numbers(12))
    sandbox.set_faults("octopush", retry_after=0.5, script=["503", "503", "503"])
    drain.run()
    rows = rows_of(engine, handle.id)
    assert {row.status for row in rows} == {MessageStatus.SCHEDULED}
    assert {row.provider_message_id for row in rows} == {None}  # untagged: no batch is out
    assert sandbox.records("octopush") == []
    due = max(row.send_at for row in rows if row.send_at is not None)
    with session_scope(engine) as session:
        released = release_due(session, due)
    assert sorted(released) == sorted(row.id for row in rows)
    ctx.publisher.publish(released)
    assert drain.run()[tasknames.SEND_MESSAGES] >= 1
    assert {row.attempts for row in rows_of(engine, handle.id)} == {2}
    assert {row.status for row in rows_of(engine, handle.id)} == {MessageStatus.SENT}
    assert len(octopush_requests(sandbox)) == 1 and len(sandbox.records("octopush")) == 12


def test_refused_content_fails_every_message_of_the_batch(
    started, drain: Drain, sandbox_server: SandboxServer, engine: Engine
) -> None:
    handle = started(numbers(5))
    httpx.post(
        f"{sandbox_server.url}/_sandbox/octopush/next-errors", json={"codes": ["102"]}
    ).raise_for_status()
    drain.run()
    rows = rows_of(engine, handle.id)
    assert {row.status for row in rows} == {MessageStatus.FAILED}
    assert all("[102]" in (row.last_error or "") for row in rows)


def test_an_account_refusal_fails_each_message_over_to_the_fallback(
    started, drain: Drain, sandbox_server: SandboxServer, sandbox: Sandbox, engine: Engine
) -> None:
    """104 (no credit) answers the batch: the account cannot send, so each message fails over
    to the routing's fallback as a lone send would, and goes out there once."""
    handle = started(numbers(4))
    httpx.post(
        f"{sandbox_server.url}/_sandbox/octopush/next-errors", json={"codes": ["104"]}
    ).raise_for_status()
    ran = drain.run()
    assert ran[tasknames.SEND_MESSAGE] + ran[tasknames.SEND_MESSAGES] >= 1
    rows = rows_of(engine, handle.id)
    assert {row.status for row in rows} == {MessageStatus.SENT}
    (fallback,) = {row.provider for row in rows}
    assert fallback != "octopush"
    assert sandbox.records("octopush") == []
    assert len(sandbox.records(fallback)) == 4
    with session_scope(engine) as session:
        details = [e.detail or "" for e in events_for(session, rows[0].id)]
    assert any(d.startswith("failover octopush -> ") for d in details)
