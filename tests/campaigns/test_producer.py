"""``producers.campaigns``: creating is a check and two rows, whatever the audience's size."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.ledger.db import session_scope
from postier.ledger.models import campaign_audiences_table, messages_table
from postier.rules.errors import RuleViolation
from producers.campaigns import CampaignProducer
from tests.campaigns.conftest import Drain, numbers


def message_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(messages_table)).scalar_one())


@pytest.mark.parametrize("form", ["list", "csv"])
def test_a_100k_audience_is_stored_whole_and_fanned_out_by_the_worker(
    campaigns: CampaignProducer, drain: Drain, engine: Engine, form: str
) -> None:
    # what keeps create fast whatever the audience: one audience row, no message row, one
    # small task (its time is the benchmark's "campaign create" figure, not a test's bound)
    audience = numbers(100_000)
    options = (
        {"recipients": audience}
        if form == "list"
        else {"csv": "mobile,prenom\n" + "".join(f"{n},Ana\n" for n in audience)}
    )
    handle = campaigns.create("grosse", text="Bonjour", category="notification", **options)
    assert message_count(engine) == 0  # no message row yet: the worker fans it out
    with session_scope(engine) as session:
        kind = session.execute(
            select(campaign_audiences_table.c.kind).where(
                campaign_audiences_table.c.campaign_id == handle.id
            )
        ).scalar_one()
    assert kind == form
    # one small task crossed the broker for it
    assert drain.pending()[-1] == (tasknames.PLAN_CAMPAIGN, [handle.id])


def test_create_refuses_before_storing_anything(
    campaigns: CampaignProducer, engine: Engine
) -> None:
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"text": "x", "category": "notification"}, "audience", "audience.one"),
        (
            {"text": "x", "recipients": ["0612345678"], "group": "1", "category": "notification"},
            "audience",
            "audience.one",
        ),
        ({"text": "x", "csv": "tel\n0612345678\n"}, "csv_columns", "csv.phone_column"),
        (
            {
                "text": "Bonjour {{prenom}}",
                "csv": "mobile\n0612345678\n",
                "category": "notification",
            },
            "text",
            "placeholder.unknown_column",
        ),
        (
            {"text": "x", "csv": "mobile\n0612\n", "csv_columns": {"mobile": "tel"}},
            "csv_columns",
            "csv.column_missing",
        ),
        (
            {"text": "x", "recipients": ["0612345678"], "csv_columns": {"mobile": "tel"}},
            "csv_columns",
            "csv.not_csv",
        ),
        ({"text": "x", "group": " "}, "group", "group.required"),
        (
            {
                "text": "Promo",
                "recipients": ["0612345678"],
                "provider": "primotexto",
                "route": "notification",
            },
            "category",
            "route.marketing_forbidden",
        ),
    ]
    for options, field, rule in cases:
        with pytest.raises(RuleViolation) as caught:
            campaigns.create("x", **options)  # type: ignore[arg-type]
        assert (caught.value.field, caught.value.rule) == (field, rule), options
    with session_scope(engine) as session:
        assert (
            session.execute(select(func.count()).select_from(campaign_audiences_table)).scalar_one()
            == 0
        )


def test_a_csv_maps_columns_and_placeholders_case_insensitively(
    campaigns: CampaignProducer, drain: Drain, status
) -> None:
    handle = campaigns.create(
        "csv",
        text="Bonjour {{PRENOM}}",
        csv="Tel;Prenom\n0612345678;Ana\n",
        csv_columns={"mobile": "Tel"},
        category="notification",
    )
    drain.run()
    assert status(handle.id).states["sent"] == 1


def test_dry_run_estimates_without_storing(
    campaigns: CampaignProducer, engine: Engine, drain: Drain
) -> None:
    estimate = campaigns.estimate(
        text="Soldes -30% !", recipients=[*numbers(1200), "0612000001", "nope"]
    )
    assert (estimate.provider, estimate.messages, estimate.duplicates, estimate.invalid) == (
        "octopush",
        1200,
        1,
        1,
    )
    assert estimate.requests == 3  # batches of 500
    assert estimate.parts == 1200
    assert str(estimate.cost) == "66.00"
    assert estimate.starts_at is not None
    assert message_count(engine) == 0 and drain.pending() == []
