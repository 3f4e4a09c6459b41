"""The opt-out list and its sources: local, Primotexto's unsubscribers, Octopush STOP SMS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from postier.campaigns.optout import (
    add_opt_out,
    list_opt_outs,
    opted_out,
    remove_opt_out,
    sync_opt_outs,
)
from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage, OptOut, opt_outs_table
from postier.privacy.erasure import opt_out_hash
from postier.rules.errors import RuleViolation
from postier.sandbox import Sandbox
from tests.ledger.conftest import pg_admin, postgresql_ledger, sqlite_ledger  # noqa: F401


def test_local_opt_outs(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert add_opt_out(session, "06 12 34 56 78", detail="by phone")
        assert not add_opt_out(session, "+33612345678")
        assert opted_out(session, ["+33612345678", "+33612345679"]) == {"+33612345678"}
        [row] = list_opt_outs(session)
        assert (row.recipient, row.source, row.detail) == ("+33612345678", "local", "by phone")
        assert remove_opt_out(session, "0612345678")
        assert not remove_opt_out(session, "0612345678")
        with pytest.raises(RuleViolation):
            add_opt_out(session, "hello")


def test_sync_takes_octopush_stops_and_follows_primotexto(
    engine: Engine, campaign_settings: Settings, clients: ProviderClients, sandbox: Sandbox
) -> None:
    with session_scope(engine) as session:
        session.add_all(
            [
                InboundMessage(
                    provider="octopush", provider_message_id="1", sender="+33612000001", text="STOP"
                ),
                InboundMessage(
                    provider="octopush",
                    provider_message_id="2",
                    sender="+33612000002",
                    text="Stop svp",
                ),
                InboundMessage(
                    provider="octopush",
                    provider_message_id="3",
                    sender="+33612000003",
                    text="Merci, non-stop",
                ),
                InboundMessage(
                    provider="afilnet", provider_message_id="4", sender="+33612000004", text="STOP"
                ),
            ]
        )
    unsubscribers = sandbox.primotexto.blacklist("unsubscribers")
    unsubscribers.add("+33612000005")
    unsubscribers.add("+33612000006")
    report = sync_opt_outs(engine, campaign_settings, clients)
    assert (report.octopush_added, report.primotexto_added, report.primotexto_removed) == (2, 2, 0)
    unsubscribers.discard("+33612000006")
    again = sync_opt_outs(engine, campaign_settings, clients)
    assert (again.octopush_added, again.primotexto_added, again.primotexto_removed) == (0, 0, 1)
    everyone = [f"+3361200000{n}" for n in range(1, 7)]
    with session_scope(engine) as session:
        assert opted_out(session, everyone) == {"+33612000001", "+33612000002", "+33612000005"}
    without_key = campaign_settings.model_copy(
        update={
            "campaigns": campaign_settings.campaigns.model_copy(
                update={"sync_primotexto_unsubscribers": False}
            )
        }
    )
    assert not sync_opt_outs(engine, without_key, clients).primotexto_synced


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Either backend's migrated ledger (the fan-out asks both the same way)."""
    engine: Engine = request.getfixturevalue(f"{request.param}_ledger")
    yield engine
    with engine.begin() as connection:
        connection.execute(delete(opt_outs_table))


def test_a_chunk_of_numbers_is_asked_in_one_query_on_both_ledgers(ledger: Engine) -> None:
    """Thousands of numbers at once (a fan-out chunk), opt-outs by number and by keyed hash."""
    numbers = [f"+336{10_000_000 + n:08d}" for n in range(6000)]
    with session_scope(ledger) as session:
        for number in numbers[::700]:
            add_opt_out(session, number)
        session.add(OptOut(recipient=opt_out_hash(numbers[5], "k" * 16), source="local"))
    with session_scope(ledger) as session:
        assert opted_out(session, [*numbers, "+33612345678"]) == set(numbers[::700])
        assert opted_out(session, numbers, hash_key="k" * 16) == {*numbers[::700], numbers[5]}
        assert opted_out(session, []) == set()
        assert opted_out(session, ["+33612345678", "+33612345678"]) == set()
