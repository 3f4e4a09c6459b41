"""Each hard edge a careless caller hit, as a test: a ``RuleViolation`` naming the rule, not a
crash; ``send_many`` keeps its good rows; the CLI answers on one line; the terminal shows
outside text inert. The ledger is a SQLite file; tasks go to the test Redis (nothing consumes
them). The same edges on PostgreSQL: ``tests/privacy`` (NUL is refused before any database).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postier.cli import app
from postier.config import Settings, get_settings
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import (
    CampaignAudience,
    InboundMessage,
    campaigns_table,
    messages_table,
)
from postier.rules.errors import RuleViolation
from postier.terminal import shown
from producers import default_producer
from producers.campaigns import CampaignProducer, default_campaign_producer
from producers.messages import Producer, SmsRequest

PLUS_ONE = timezone(timedelta(hours=1))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("edges") / "ledger.db"
    ledger = make_engine(f"sqlite:///{path}")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


@pytest.fixture(scope="module")
def edge_settings(redis_test_url: str) -> Iterator[Settings]:
    base = Settings(_env_file=None, redis_url=redis_test_url)  # type: ignore[call-arg]
    yield base.pointed_at_sandbox("http://127.0.0.1:9")
    client = redis.Redis.from_url(redis_test_url)
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def producer(edge_settings: Settings, engine: Engine) -> Producer:
    return Producer(edge_settings, engine=engine)


@pytest.fixture(scope="module")
def campaigns(edge_settings: Settings, engine: Engine) -> CampaignProducer:
    return CampaignProducer(edge_settings, engine=engine)


def count(engine: Engine, table: Any = messages_table) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def refused(call: Any, rule: str) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call()
    assert caught.value.rule == rule, caught.value
    return caught.value


# -- characters ---------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_whatsapp_text_is_refused(producer: Producer) -> None:
    refused(lambda: producer.send_whatsapp("0612345678", "a\ud800b"), "text.encoding")


def test_a_lone_surrogate_in_an_idempotency_key_is_refused(producer: Producer) -> None:
    refused(
        lambda: producer.send_sms("0612345678", "Bonjour", idempotency_key="k\udfff"),
        "idempotency_key.encoding",
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.send_whatsapp("0612345678", "a\x00b"),
        lambda p: p.send_sms("0612345678", "a\x00b"),
        lambda p: p.send_whatsapp_template("0612345678", "tpl", params={"name": "a\x00"}),
        lambda p: p.send_whatsapp_template("0612345678", "t\x00pl"),
    ],
    ids=["whatsapp text", "sms text", "template param", "template id"],
)
def test_nul_is_refused_before_any_database(producer: Producer, call: Any) -> None:
    with pytest.raises(RuleViolation) as caught:
        call(producer)
    assert caught.value.rule.endswith(".nul")


# -- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.send_sms(612345678, "Bonjour"),
        lambda p: p.send_sms("0612345678", b"Bonjour"),
        lambda p: p.send_sms("0612345678", None),
        lambda p: p.send_sms("0612345678", "Bonjour", sender=42),
        lambda p: p.send_sms("0612345678", "Bonjour", idempotency_key=7),
        lambda p: p.send_sms("0612345678", "Bonjour", send_at="2030-01-01"),
        lambda p: p.send_sms("0612345678", "Bonjour", provider=["octopush"]),
        lambda p: p.send_whatsapp(None, "Bonjour"),
        lambda p: p.send_whatsapp_template("0612345678", 12),
        lambda p: p.send_whatsapp_template("0612345678", "tpl", params=["a"]),
        lambda p: p.send_whatsapp_template("0612345678", "tpl", params={"a": ["b"]}),
        lambda p: p.send_whatsapp_template("0612345678", "tpl", header="x"),
        lambda p: p.send_whatsapp_file("0612345678", 3),
        lambda p: p.send_whatsapp("0612345678", "Bonjour", platform_id=5),
    ],
)
def test_a_wrong_type_is_a_rule_violation(producer: Producer, call: Any) -> None:
    with pytest.raises(RuleViolation) as caught:
        call(producer)
    assert caught.value.field and caught.value.rule


# -- sizes --------------------------------------------------------------------------------


def test_template_params_are_capped_in_count_and_length(producer: Producer, engine: Engine) -> None:
    before = count(engine)
    many = {f"p{i}": "x" for i in range(1000)}
    refused(
        lambda: producer.send_whatsapp_template("0612345678", "tpl", params=many), "params.count"
    )
    huge = {"name": "x" * 100_000}
    refused(
        lambda: producer.send_whatsapp_template("0612345678", "tpl", params=huge), "params.length"
    )
    assert count(engine) == before


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (lambda p: p.send_whatsapp_template("0612345678", "t" * 1_000_000), "template_id.length"),
        (
            lambda p: p.send_whatsapp("0612345678", "Bonjour", platform_id="p" * 1_000_000),
            "platform_id.length",
        ),
        (lambda p: p.send_sms("0612345678", "x" * 1_000_000), "text.length"),
        (lambda p: p.send_sms("0" * 1_000_000, "Bonjour"), "to.length"),
    ],
    ids=["template_id", "platform_id", "text", "number"],
)
def test_a_megabyte_id_or_text_is_refused(producer: Producer, call: Any, rule: str) -> None:
    refused(lambda: call(producer), rule)


# -- the send_at window -------------------------------------------------------------------


def test_year_9999_with_an_offset_is_beyond_the_horizon(producer: Producer) -> None:
    when = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    refused(lambda: producer.send_sms("0612345678", "Bonjour", send_at=when), "send_at.horizon")
    late = datetime(9999, 1, 1, tzinfo=UTC)
    refused(lambda: producer.send_sms("0612345678", "Bonjour", send_at=late), "send_at.horizon")


def test_year_0001_is_in_the_past_not_now(producer: Producer) -> None:
    when = datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE)  # before the calendar once in UTC
    refused(lambda: producer.send_sms("0612345678", "Bonjour", send_at=when), "send_at.past")
    old = datetime(1, 1, 2, tzinfo=UTC)
    refused(lambda: producer.send_sms("0612345678", "Bonjour", send_at=old), "send_at.past")


def test_a_send_at_a_moment_ago_is_sent_now(producer: Producer) -> None:
    moment_ago = datetime.now(UTC) - timedelta(seconds=30)
    assert producer.send_sms("0612345678", "Bonjour", send_at=moment_ago).status == "queued"


def test_a_campaign_beyond_the_horizon_is_refused(campaigns: CampaignProducer) -> None:
    when = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-3)))
    refused(
        lambda: campaigns.create("c", text="Bonjour", recipients=["0612345678"], send_at=when),
        "send_at.horizon",
    )


# -- send_many ----------------------------------------------------------------------------


def test_send_many_reports_bad_rows_and_keeps_the_good(producer: Producer, engine: Engine) -> None:
    before = count(engine)
    requests: list[Any] = [
        SmsRequest("0612345601", "Bonjour"),
        SmsRequest("0612345602", "a\ud800"),
        SmsRequest("0612345603", "a\x00"),
        SmsRequest(612345604, "Bonjour"),  # type: ignore[arg-type]
        SmsRequest("0612345605", "Bonjour", send_at=datetime(9999, 1, 1, tzinfo=PLUS_ONE)),
        None,
        SmsRequest("0612345606", "Bonjour"),
    ]

    result = producer.send_many(requests)

    assert [index for index, _ in result.rejected] == [1, 2, 3, 4, 5]
    assert len(result.accepted) == 2
    assert count(engine) == before + 2


# -- campaigns ----------------------------------------------------------------------------


def test_a_csv_with_a_huge_field_is_refused_at_create(
    campaigns: CampaignProducer, engine: Engine
) -> None:
    before = count(engine, campaigns_table)
    text = "mobile,note\n0612345678," + "x" * 5_000_000 + "\n"
    refused(lambda: campaigns.create("big", text="Bonjour", csv=text), "csv.format")
    assert count(engine, campaigns_table) == before


def test_a_campaign_whose_audience_cannot_be_read_fails_with_its_reason(
    campaigns: CampaignProducer, engine: Engine, edge_settings: Settings
) -> None:
    """A campaign stored before its audience was read at create: the plan fails it, once."""
    from postier.campaigns.context import CampaignContext
    from postier.campaigns.fanout import plan_campaign
    from postier.campaigns.queries import get_campaign

    handle = campaigns.create("old", text="Bonjour", csv="mobile\n0612345678\n")
    with session_scope(engine) as session:
        audience = session.get(CampaignAudience, handle.id)
        assert audience is not None
        audience.content = "mobile,note\n0612345678," + "x" * 200_000 + "\n"
    ctx = CampaignContext(
        settings=edge_settings,
        engine=engine,
        clients=None,  # type: ignore[arg-type]  # a CSV audience is read without a provider
        factory=campaigns.factory,
        publisher=campaigns.producer.publisher,
        tasks=campaigns.tasks,
    )

    plan_campaign(ctx, handle.id)

    with session_scope(engine) as session:
        campaign = get_campaign(session, handle.id)
        assert campaign is not None
        assert str(campaign.status) == "failed"
        assert campaign.error is not None and "field larger than field limit" in campaign.error


# -- the command line ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_ledger(tmp_path_factory: pytest.TempPathFactory, redis_test_url: str) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("cli") / "ledger.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTIER_DATABASE_URL", url)
        patch.setenv("POSTIER_REDIS_URL", redis_test_url)
        patch.setenv("POSTIER_SANDBOX_URL", "http://127.0.0.1:9")
        for cached in (get_settings, default_producer, default_campaign_producer):
            cached.cache_clear()
        ledger = make_engine(url)
        upgrade(ledger)
        yield ledger
        ledger.dispose()
    for cached in (get_settings, default_producer, default_campaign_producer):
        cached.cache_clear()


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["send", "0612345678", "Bonjour", "--at", "9999-12-31T23:00:00-05:00"],
        ["send", "0612345678", "Bonjour", "--at", "0001-01-01T00:00:00+01:00"],
        ["send", "0612345678", "Bonjour", "--at", "tomorrow"],
        [
            "campaign",
            "create",
            "c",
            "--text",
            "a",
            "--to",
            "0612345678",
            "--at",
            "9999-12-31T23:00:00-05:00",
        ],
        ["list", "--status", "bogus"],
    ],
    ids=["send 9999", "send 0001", "send unreadable", "campaign 9999", "list bogus status"],
)
def test_cli_errors_are_one_line(cli_ledger: Engine, args: list[str]) -> None:
    one_line_error(CliRunner().invoke(app, args))


def test_a_latin1_or_huge_csv_is_one_line(cli_ledger: Engine, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("mobile;prénom\n0612345678;Hélène\n".encode("latin-1"))
    huge = tmp_path / "huge.csv"
    huge.write_text("mobile,note\n0612345678," + "x" * 5_000_000 + "\n", encoding="utf-8")

    for path, rule in ((latin, "csv.encoding"), (huge, "csv.format")):
        line = one_line_error(
            CliRunner().invoke(app, ["campaign", "create", "c", "--text", "a", "--csv", str(path)])
        )
        assert rule in line


def test_inbox_shows_escape_codes_and_markup_inert(cli_ledger: Engine) -> None:
    with session_scope(cli_ledger) as session:
        session.add(
            InboundMessage(
                provider="octopush",
                provider_message_id="in_escape",
                sender="+33612345678",
                text="\x1b[2J\x1b]0;pwned\x07[bold red]hi[/] \u202eevil",
            )
        )

    result = CliRunner().invoke(app, ["inbox"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\u202e" not in result.output
    assert "\\x1b[2J" in result.output
    assert "[bold red]hi[/]" in result.output


@pytest.mark.parametrize(
    ("given", "seen"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("[bold]x[/bold]", "[bold]x[/bold]"),
        ("ligne\nsuite\u2066", "ligne\\x0asuite\\u2066"),
        ("a\ud800", "a\\ud800"),
    ],
)
def test_shown_escapes_controls_and_markup(given: str, seen: str) -> None:
    from rich.text import Text

    assert Text.from_markup(shown(given)).plain == seen


# -- property -----------------------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=10),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(PLUS_ONE)
    ),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    to=anything,
    text=anything,
    template=anything,
    params=anything,
    header=anything,
    platform=anything,
    key=anything,
    send_at=anything,
)
def test_whatever_the_types_only_rule_violations_escape(
    producer: Producer,
    to: Any,
    text: Any,
    template: Any,
    params: Any,
    header: Any,
    platform: Any,
    key: Any,
    send_at: Any,
) -> None:
    calls = [
        lambda: producer.send_sms(to, text, idempotency_key=key, send_at=send_at),
        lambda: producer.send_whatsapp(to, text, platform_id=platform, send_at=send_at),
        lambda: producer.send_whatsapp_template(
            to, template, params=params, header=header, platform_id=platform
        ),
        lambda: producer.send_many([SmsRequest(to, text, send_at=send_at), None]),
    ]
    for call in calls:
        with contextlib.suppress(RuleViolation):
            call()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=anything,
    text=anything,
    params=anything,
    audience=st.sampled_from(["csv", "recipients", "group"]),
    value=anything,
    send_at=anything,
    columns=anything,
)
def test_campaign_create_whatever_the_types_only_rule_violations_escape(
    campaigns: CampaignProducer,
    name: Any,
    text: Any,
    params: Any,
    audience: str,
    value: Any,
    send_at: Any,
    columns: Any,
) -> None:
    with contextlib.suppress(RuleViolation):
        campaigns.create(
            name,
            text=text,
            params=params,
            send_at=send_at,
            csv_columns=columns,
            **{audience: value},
        )
    with contextlib.suppress(RuleViolation):
        campaigns.create(name, template_id=text, params=params, recipients=["0612345678"])
