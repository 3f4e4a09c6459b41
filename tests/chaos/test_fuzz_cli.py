"""Bad input at the command line (typer's CliRunner): ``postier send`` and ``postier campaign
create`` with arbitrary numbers, texts, senders, providers, times, CSV files and columns.

Property: exit code 0 with an id that is in the ledger, or a clear refusal (exit 2: the rule
that was broken, or a usage error); never a traceback, never a row or campaign half stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postier.cli import app
from postier.config import get_settings
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import campaigns_table, messages_table
from producers import default_producer
from producers.campaigns import default_campaign_producer

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: what typer/click may not see: NUL cannot be passed in a real argv
argument = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=60
)


@pytest.fixture(scope="module")
def cli_ledger(tmp_path_factory: pytest.TempPathFactory, redis_test_url: str) -> Iterator[Engine]:
    """The CLI's settings come from the environment: point them at a ledger of this module."""
    path = tmp_path_factory.mktemp("cli") / "ledger.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTIER_DATABASE_URL", url)
        patch.setenv("POSTIER_REDIS_URL", redis_test_url)
        patch.setenv("POSTIER_SANDBOX_URL", "http://127.0.0.1:9")
        for cached in (get_settings, default_producer, default_campaign_producer):
            cached.cache_clear()
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()
    for cached in (get_settings, default_producer, default_campaign_producer):
        cached.cache_clear()
    client = redis.Redis.from_url(redis_test_url)
    client.flushdb()
    client.close()


def count(engine: Engine, table: object = messages_table) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def no_crash(result: object) -> None:
    exc = getattr(result, "exception", None)
    assert exc is None or isinstance(exc, SystemExit), repr(exc)


@FUZZ
@given(
    to=argument,
    text=argument,
    options=st.lists(
        st.one_of(
            st.tuples(st.just("--sender"), argument),
            st.tuples(
                st.just("--provider"), st.sampled_from(["octopush", "primotexto", "nope", ""])
            ),
            st.tuples(st.just("--at"), st.one_of(argument, st.just("2031-01-01T10:00:00+01:00"))),
            st.tuples(st.just("--key"), argument),
            st.tuples(st.sampled_from(["--marketing", "--whatsapp"])),
        ),
        max_size=3,
    ),
)
def test_send_queues_or_refuses_clearly(
    cli_ledger: Engine, to: str, text: str, options: list[tuple[str, ...]]
) -> None:
    before = count(cli_ledger)
    args = ["send", "--", to, text]
    flags = [part for option in options for part in option]
    result = CliRunner().invoke(app, [*args[:1], *flags, *args[1:]])
    no_crash(result)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 0:
        message_id = result.output.split()[0]
        with session_scope(cli_ledger) as session:
            found = session.execute(
                select(messages_table.c.id).where(messages_table.c.id == message_id)
            ).scalar_one_or_none()
        assert found == message_id
        assert count(cli_ledger) in (before, before + 1)
    else:
        assert count(cli_ledger) == before
        assert "refused" in result.output or "Usage" in result.output or "Error" in result.output


@FUZZ
@given(
    name=argument,
    text=argument,
    header=st.lists(argument, min_size=1, max_size=3),
    rows=st.lists(st.lists(argument, min_size=1, max_size=3), max_size=4),
    columns=st.lists(argument, max_size=2),
)
def test_campaign_create_from_any_csv_starts_or_refuses_clearly(
    cli_ledger: Engine,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    text: str,
    header: list[str],
    rows: list[list[str]],
    columns: list[str],
) -> None:
    csv: Path = tmp_path_factory.mktemp("csv") / "audience.csv"
    csv.write_text("\n".join(",".join(row) for row in [header, *rows]), encoding="utf-8")
    before = count(cli_ledger, campaigns_table)
    args = ["campaign", "create", "--text", text, "--csv", str(csv), "--notification"]
    for column in columns:
        args += ["--column", column]
    result = CliRunner().invoke(app, [*args, "--", name])
    no_crash(result)
    assert result.exit_code in (0, 1, 2), result.output
    stored = count(cli_ledger, campaigns_table)
    assert stored in (before, before + 1)
    if result.exit_code != 0:
        assert stored == before


def test_a_valid_send_and_a_valid_campaign_go_through(cli_ledger: Engine, tmp_path: Path) -> None:
    """The success branches of the properties above, taken for sure."""
    sent = CliRunner().invoke(app, ["send", "0612345678", "Bonjour"])
    assert sent.exit_code == 0, sent.output
    refused = CliRunner().invoke(app, ["send", "not a number", "Bonjour"])
    assert refused.exit_code == 2 and "phone" in refused.output
    csv = tmp_path / "audience.csv"
    csv.write_text("mobile,prenom\n0612345678,Jeanne\n", encoding="utf-8")
    before = count(cli_ledger, campaigns_table)
    created = CliRunner().invoke(
        app,
        [
            "campaign",
            "create",
            "Soldes",
            "--text",
            "Bonjour {{prenom}}",
            "--csv",
            str(csv),
            "--notification",
        ],
    )
    assert created.exit_code == 0, created.output
    assert count(cli_ledger, campaigns_table) == before + 1
