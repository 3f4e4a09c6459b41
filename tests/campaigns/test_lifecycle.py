"""Pause, resume, cancel, quiet hours and the end of a campaign, with tasks run as a worker."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.campaigns import lifecycle
from postier.campaigns.context import CampaignContext
from postier.campaigns.queries import HELD_UNTIL
from postier.ledger.db import session_scope
from postier.ledger.models import CampaignStatus, messages_table
from postier.ledger.queries import count_by_status
from postier.rules.quiet_hours import QuietHours
from postier.sandbox import Sandbox
from producers.campaigns import CampaignProducer
from tests.campaigns.conftest import Clock, Drain, allowed_morning, numbers

PARIS = ZoneInfo("Europe/Paris")
FANNED = {tasknames.PLAN_CAMPAIGN, tasknames.FAN_OUT_CAMPAIGN_CHUNK}


def sent_numbers(sandbox: Sandbox, provider: str = "primotexto") -> Counter[str]:
    return Counter(str(r["recipient"]) for r in sandbox.records(provider))


def test_pause_during_fan_out_then_resume_loses_nothing(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, sandbox: Sandbox, status
) -> None:
    handle = campaigns.create("p", text="Bonjour", recipients=numbers(200), category="notification")
    drain.run(max_tasks=3)  # the plan and two of four chunks
    paused = campaigns.pause(handle.id)
    assert paused.changed and paused.status == "paused" and paused.messages == 100
    ran = drain.run()  # the two other chunks, and the sends of the first two
    assert ran[tasknames.FAN_OUT_CAMPAIGN_CHUNK] == 2
    assert sandbox.records("primotexto") == []
    report = status(handle.id)
    assert report.fan_out.chunks_done == 2 and report.states["scheduled"] == 100
    assert lifecycle.tick(ctx).released == 0  # a paused campaign is left alone

    resumed = campaigns.resume(handle.id)
    assert resumed.changed and resumed.status == "scheduled"
    tick = lifecycle.tick(ctx)
    assert (tick.chunks, tick.started, tick.released) == (2, 1, 100)
    drain.run()
    sent = sent_numbers(sandbox)
    assert len(sent) == 200 and set(sent.values()) == {1}
    assert lifecycle.tick(ctx).done == 1


def test_pause_while_sending_holds_the_rest_and_resume_sends_each_once(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, sandbox: Sandbox, status
) -> None:
    handle = campaigns.create("p", text="Bonjour", recipients=numbers(200), category="notification")
    drain.run(only=lambda name: name in FANNED, max_tasks=5)
    drain.run(max_tasks=3)  # three send tasks
    before = len(sandbox.records("primotexto"))
    assert 0 < before < 200
    paused = campaigns.pause(handle.id)
    assert paused.messages == 200 - before
    drain.run()  # the rest of the send tasks find nothing queued
    assert len(sandbox.records("primotexto")) == before
    states = status(handle.id).states
    assert (states["sent"], states["scheduled"]) == (before, 200 - before)
    assert not campaigns.pause(handle.id).changed

    campaigns.resume(handle.id)
    lifecycle.tick(ctx)
    drain.run()
    sent = sent_numbers(sandbox)
    assert len(sent) == 200 and set(sent.values()) == {1}


def test_cancel_stops_what_was_not_sent(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, sandbox: Sandbox, status
) -> None:
    handle = campaigns.create("c", text="Bonjour", recipients=numbers(200), category="notification")
    drain.run(only=lambda name: name in FANNED, max_tasks=5)  # the plan and every chunk
    drain.run(max_tasks=7)  # seven send tasks (bulk lane: chunks of a few messages each)
    before = len(sandbox.records("primotexto"))
    cancelled = campaigns.cancel(handle.id)
    assert cancelled.changed and cancelled.messages == 200 - before
    drain.run()  # the remaining sends find their messages cancelled
    lifecycle.tick(ctx)
    report = status(handle.id)
    assert report.campaign.status == "cancelled"
    assert (report.states["sent"], report.states["cancelled"]) == (before, 200 - before)
    assert len(sandbox.records("primotexto")) == before
    assert 7 <= before < 200
    assert not campaigns.resume(handle.id).changed
    assert not campaigns.cancel(handle.id).changed


def test_cancel_during_fan_out_leaves_the_other_chunks_unread(
    campaigns: CampaignProducer, drain: Drain, sandbox: Sandbox, status
) -> None:
    handle = campaigns.create("c", text="Bonjour", recipients=numbers(200), category="notification")
    drain.run(max_tasks=3)  # the plan and two chunks
    assert campaigns.cancel(handle.id).messages == 100
    ran = drain.run()
    assert ran[tasknames.FAN_OUT_CAMPAIGN_CHUNK] == 2  # they ran, and stored nothing
    report = status(handle.id)
    assert report.fan_out.chunks_done == 2 and report.messages == 100
    assert report.states["cancelled"] == 100
    assert sandbox.records("primotexto") == []


def test_marketing_at_an_allowed_time_goes_out_with_the_stop_mention(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, clock: Clock, sandbox: Sandbox
) -> None:
    """The allowed side of the quiet hours, on the injected clock: the same at any time of day
    (the quiet side end to end: tests/integration/test_campaigns.py)."""
    at = allowed_morning()
    handle = campaigns.create("promo", text="Soldes", recipients=numbers(3), send_at=at)
    assert handle.starts_at == at
    drain.run()
    clock.now = at
    assert lifecycle.tick(ctx).released == 3
    drain.run()
    texts = [str(r["text"]) for r in sandbox.records("octopush")]
    assert len(texts) == 3 and all("STOP au" in text for text in texts)


def test_a_running_marketing_campaign_stops_at_20h_and_goes_on_at_08h(
    campaigns: CampaignProducer,
    drain: Drain,
    ctx: CampaignContext,
    clock: Clock,
    sandbox: Sandbox,
    engine: Engine,
    status,
) -> None:
    at = allowed_morning()
    handle = campaigns.create("m", text="Promo", recipients=numbers(30), send_at=at)
    drain.run()
    clock.now = at
    assert lifecycle.tick(ctx).released == 30  # a batch task waits in the queue...
    evening = datetime.combine(at.astimezone(PARIS).date(), time(20), tzinfo=PARIS)
    assert ctx.quiet_margin == timedelta(seconds=10)
    clock.now = evening.astimezone(UTC) - timedelta(seconds=11)
    assert lifecycle.tick(ctx).postponed == 0
    clock.now = evening.astimezone(UTC) - timedelta(seconds=9)
    assert lifecycle.tick(ctx).postponed == 1  # ...when 20:00 comes within the margin
    report = status(handle.id)
    next_morning = QuietHours().next_allowed(evening)
    assert report.campaign.status == "scheduled" and report.campaign.starts_at == next_morning
    assert report.states["scheduled"] == 30
    drain.run()
    assert sandbox.records("octopush") == []
    # a retry the dispatcher schedules now (a row that was with the provider) waits too
    with session_scope(engine) as session:
        session.execute(
            update(messages_table)
            .where(messages_table.c.campaign_id == handle.id)
            .values(send_at=datetime.now(UTC) + timedelta(seconds=30))
        )
    lifecycle.tick(ctx)
    with session_scope(engine) as session:
        waiting = session.execute(
            select(messages_table.c.send_at).where(messages_table.c.campaign_id == handle.id)
        ).scalars()
        assert set(waiting) == {HELD_UNTIL}

    clock.now = next_morning - timedelta(microseconds=1)
    assert lifecycle.tick(ctx).started == 0
    clock.now = next_morning
    assert lifecycle.tick(ctx).released == 30
    drain.run()
    assert len(sandbox.records("octopush")) == 30


def test_a_marketing_campaign_scheduled_on_a_sunday_waits_for_monday(
    campaigns: CampaignProducer,
) -> None:
    monday = allowed_morning()
    while monday.astimezone(PARIS).weekday() != 0 or QuietHours().holiday(
        monday.astimezone(PARIS).date()
    ):
        monday += timedelta(days=1)
    sunday_noon = monday - timedelta(hours=22)
    handle = campaigns.create(
        "dimanche", text="Promo", recipients=["0612345678"], send_at=sunday_noon
    )
    assert handle.status == "scheduled"
    assert handle.starts_at is not None
    assert handle.starts_at.astimezone(PARIS) == datetime.combine(
        monday.astimezone(PARIS).date(), time(8), tzinfo=PARIS
    )
    # a notification is not marketing: it keeps its Sunday
    note = campaigns.create(
        "note",
        text="Rappel",
        recipients=["0612345678"],
        category="notification",
        send_at=sunday_noon,
    )
    assert note.starts_at == sunday_noon


def test_a_lost_plan_or_chunk_task_is_published_again(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, engine: Engine, status
) -> None:
    handle = campaigns.create(
        "lost", text="Bonjour", recipients=numbers(60), category="notification"
    )
    drain.run(only=lambda name: False)  # the plan task is lost
    assert lifecycle.tick(ctx).plans == 0  # published moments ago: not yet stale
    stale = ctx.settings.model_copy(
        update={"campaigns": ctx.settings.campaigns.model_copy(update={"republish_after": 0})}
    )
    eager = CampaignContext(
        settings=stale,
        engine=ctx.engine,
        clients=ctx.clients,
        factory=ctx.factory,
        publisher=ctx.publisher,
        tasks=ctx.tasks,
        clock=ctx.clock,
    )
    assert lifecycle.tick(eager).plans == 1
    drain.run(max_tasks=1)  # the plan; its two chunk tasks are then lost
    drain.run(only=lambda name: False)
    assert lifecycle.tick(eager).chunks == 2
    drain.run()
    with session_scope(engine) as session:
        assert count_by_status(session, handle.id)["sent"] == 60
    assert lifecycle.tick(ctx).done == 1
    assert status(handle.id).campaign.status == CampaignStatus.DONE
