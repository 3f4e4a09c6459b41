"""The fan-out: plan and chunk tasks run as a worker runs them, against the sandbox over HTTP."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.campaigns import fanout, lifecycle
from postier.campaigns.context import CampaignContext
from postier.campaigns.optout import add_opt_out
from postier.campaigns.queries import HELD_UNTIL
from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage, Message, MessageKind, messages_table
from postier.providers.afilnet.groups import AfilnetGroups
from postier.sandbox import Sandbox
from producers.campaigns import CampaignProducer
from tests.campaigns.conftest import Drain, numbers

ID = re.compile(r"[0-9a-f]{32}")


def rows_of(engine: Engine, campaign_id: str) -> list[Message]:
    with session_scope(engine) as session:
        return list(
            session.execute(
                select(Message).where(messages_table.c.campaign_id == campaign_id)
            ).scalars()
        )


def test_a_list_campaign_sends_each_number_once_skipping_opt_outs(
    campaigns: CampaignProducer,
    drain: Drain,
    status,
    sandbox: Sandbox,
    engine: Engine,
    ctx: CampaignContext,
) -> None:
    with session_scope(engine) as session:
        add_opt_out(session, "06 12 00 00 10", detail="asked by phone")
        session.add(
            InboundMessage(
                provider="octopush",
                provider_message_id="in-1",
                sender="+33612000011",
                text=" stop ",
            )
        )
    sandbox.primotexto.blacklist("unsubscribers").add("+33612000012")
    recipients = [*numbers(120), "+33612000005", "06 12 00 00 07", "not a number", "0612999999"]
    handle = campaigns.create(
        "rappel", text="Votre colis arrive", recipients=recipients, category="notification"
    )
    assert handle.status == "running"
    ran = drain.run()
    assert ran[tasknames.PLAN_CAMPAIGN] == 1
    assert ran[tasknames.FAN_OUT_CAMPAIGN_CHUNK] == 3  # 124 contacts, chunks of 50

    report = status(handle.id)
    assert report.fan_out.contacts_done == 124
    assert (report.fan_out.duplicates, report.fan_out.opted_out, report.invalid) == (2, 3, 1)
    assert report.messages == 118
    assert report.states["sent"] == 118
    [rejection] = report.rejections
    assert (rejection.line, rejection.field, rejection.rule) == (123, "mobile", "e164.characters")
    sent = [r["recipient"] for r in sandbox.records("primotexto")]
    assert len(sent) == len(set(sent)) == 118
    assert not {"+33612000010", "+33612000011", "+33612000012"} & set(sent)
    assert "+33612999999" in sent

    # only ids (and chunk bounds) crossed the broker: no number, no text
    for name, args in drain.seen:
        for arg in args:
            values = arg if isinstance(arg, list) else [arg]
            assert all(isinstance(v, int) or ID.fullmatch(v) for v in values), (name, arg)
    assert "colis" not in json.dumps(drain.seen) and "+336" not in json.dumps(drain.seen)

    assert lifecycle.tick(ctx).done == 1
    assert status(handle.id).campaign.status == "done"


def test_a_csv_with_bad_rows_reports_each_line_and_sends_the_rest(
    campaigns: CampaignProducer, drain: Drain, status, sandbox: Sandbox
) -> None:
    csv = (
        "Téléphone;Prénom;Ville\n"
        "06 12 34 56 01;Jeanne;Paris\n"
        "0612;Paul;Lyon\n"  # line 3: impossible number
        "0612345603;;Nice\n"  # line 4: no first name for the placeholder
        "0612345604;Léa\n"  # line 5: two values for three columns
        "+33 6 12 34 56 05;Zoé;Lille\n"
    )
    handle = campaigns.create(
        "csv",
        text="Bonjour {{prenom}} de {{Ville}} !",
        csv=csv,
        csv_columns={"mobile": "Téléphone", "prenom": "Prénom"},
        category="notification",
        provider="octopush",
    )
    drain.run()
    report = status(handle.id)
    assert [(r.line, r.field, r.rule) for r in report.rejections] == [
        (3, "mobile", "e164.impossible"),
        (4, "prenom", "placeholder.missing"),
        (5, "csv", "csv.shape"),
    ]
    assert report.campaign.audience_size == 5 and report.invalid == 3
    texts = sorted(r["text"] for r in sandbox.records("octopush"))
    assert texts == ["Bonjour Jeanne de Paris !", "Bonjour Zoé de Lille !"]


def test_a_group_campaign_reads_getcontacts(
    campaigns: CampaignProducer, drain: Drain, status, sandbox: Sandbox, ctx: CampaignContext
) -> None:
    groups = AfilnetGroups(ctx.clients.afilnet_api)
    group = groups.create_group("clients", "mobile", ["mobile", "name"])
    groups.add_contacts(
        group,
        [
            {"mobile": "33612345671", "name": "Ana"},
            {"mobile": "33612345672", "name": "Bo"},
            {"mobile": "33612345673", "name": ""},
        ],
    )
    handle = campaigns.create(
        "groupe", text="Bonjour {{name}}", group=group, category="notification"
    )
    drain.run()
    report = status(handle.id)
    assert report.messages == 2 and report.states["sent"] == 2
    assert [(r.line, r.rule) for r in report.rejections] == [(3, "placeholder.missing")]
    assert sorted(r["text"] for r in sandbox.records("primotexto")) == ["Bonjour Ana", "Bonjour Bo"]

    unknown_column = campaigns.create(
        "groupe2", text="Bonjour {{prenom}}", group=group, category="notification"
    )
    drain.run()
    failed = status(unknown_column.id)
    assert failed.campaign.status == "failed"
    assert "no column 'prenom'" in (failed.campaign.error or "")
    assert failed.messages == 0


def test_a_whatsapp_template_campaign_personalises_parameters(
    campaigns: CampaignProducer, drain: Drain, engine: Engine, status
) -> None:
    handle = campaigns.create(
        "wa",
        template_id="1",
        params={"name": "{{prenom}}", "orderid": "{{commande}}"},
        recipients=[
            {"mobile": "0612345681", "prenom": "Ana", "commande": "42"},
            {"mobile": "0612345682", "prenom": "Bo"},
        ],
        category="notification",
    )
    drain.run()
    [row] = rows_of(engine, handle.id)
    assert row.kind == MessageKind.WHATSAPP_TEMPLATE
    assert row.payload["params"] == {"name": "Ana", "orderid": "42"}
    assert row.status == "sent"
    assert [r.field for r in status(handle.id).rejections] == ["commande"]


def test_plan_and_chunk_tasks_delivered_twice_store_once(
    campaigns: CampaignProducer, drain: Drain, ctx: CampaignContext, engine: Engine, status
) -> None:
    handle = campaigns.create(
        "twice", text="Bonjour", recipients=numbers(60), category="notification"
    )
    drain.run(max_tasks=1)  # the plan
    assert fanout.plan_campaign(ctx, handle.id).skipped == "planned already"
    first = fanout.fan_out_chunk(ctx, handle.id, 0, 50)
    again = fanout.fan_out_chunk(ctx, handle.id, 0, 50)
    assert first.created == 50 and again.skipped
    drain.run()
    assert len(rows_of(engine, handle.id)) == 60
    assert status(handle.id).fan_out.duplicates == 0


def test_the_same_number_in_two_chunks_is_sent_once(
    campaigns: CampaignProducer, drain: Drain, status, sandbox: Sandbox
) -> None:
    recipients = [*numbers(50), "+33612000000", *numbers(10, start=100)]
    handle = campaigns.create(
        "dupes", text="Bonjour", recipients=recipients, category="notification"
    )
    drain.run()
    report = status(handle.id)
    assert report.messages == 60 and report.fan_out.duplicates == 1
    assert Counter(r["recipient"] for r in sandbox.records("primotexto"))["+33612000000"] == 1


def test_message_ids_are_derived_secretly_per_campaign(
    campaigns: CampaignProducer, drain: Drain, engine: Engine
) -> None:
    one = campaigns.create("a", text="x", recipients=["0612345678"], category="notification")
    two = campaigns.create("b", text="x", recipients=["0612345678"], category="notification")
    drain.run()
    [first], [second] = rows_of(engine, one.id), rows_of(engine, two.id)
    assert first.id != second.id and first.recipient == second.recipient


def test_held_rows_wait_for_the_start(
    campaigns: CampaignProducer, drain: Drain, engine: Engine, ctx: CampaignContext, clock, sandbox
) -> None:
    # a notification campaign: quiet hours do not move it; within the scheduling horizon
    later = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    handle = campaigns.create(
        "later", text="Bonjour", recipients=numbers(5), category="notification", send_at=later
    )
    assert handle.status == "scheduled" and handle.starts_at == later
    drain.run()
    rows = rows_of(engine, handle.id)
    assert {(r.status, r.send_at) for r in rows} == {("scheduled", HELD_UNTIL)}
    assert lifecycle.tick(ctx).started == 0
    clock.now = later
    report = lifecycle.tick(ctx)
    assert (report.started, report.released) == (1, 5)
    drain.run()
    assert len(sandbox.records("primotexto")) == 5
