"""``postier erase`` and ``postier export`` over every table and every form of the number,
on SQLite and PostgreSQL: after an erasure a search of every column finds no trace of it,
its opt-out still blocks campaigns (as a keyed hash), and someone else's data is untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import Engine
from typer.testing import CliRunner

from postier.campaigns.optout import opted_out, sync_opt_outs
from postier.config import RetentionSettings
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus, messages_table, opt_outs_table
from postier.ledger.queries import messages_to_number
from postier.privacy.erasure import (
    NOT_REACHABLE,
    ErasureError,
    erase_number,
    export_number,
    find_traces,
    opt_out_hash,
)
from postier.privacy.retention import REDACTED, redact_expired
from postier.rules.phones import number_hash
from tests.privacy.conftest import HASH_KEY, OTHER, PERSON, seed_person, traces_of


def test_the_seed_puts_the_number_everywhere(engine: Engine) -> None:
    seed_person(engine)
    assert len(traces_of(engine, PERSON)) >= 12
    with session_scope(engine) as session:
        assert {t.table for t in find_traces(session, PERSON)} == {
            "messages",
            "delivery_events",
            "inbound_messages",
            "campaign_audiences",
            "campaign_chunks",
            "campaign_rejections",
            "opt_outs",
        }


def test_erasure_leaves_no_trace_in_any_column(engine: Engine) -> None:
    seeded = seed_person(engine)

    report = erase_number(engine, "06 12 34 56 78", hash_key=HASH_KEY)

    assert traces_of(engine, PERSON) == []
    assert report.remaining == []
    assert report.opt_out_kept
    assert report.cancelled == 1
    assert report.messages >= 3  # both of the person's, and the other's that named the number
    assert report.not_reachable == NOT_REACHABLE
    with session_scope(engine) as session:
        rows = {row.id: row for row in session.execute(sa.select(messages_table)).all()}
    settled = rows[seeded.settled]
    # statistics stay: state, cost, parts, timings
    assert (settled.status, settled.cost, settled.parts) == (
        MessageStatus.DELIVERED,
        rows[seeded.other].cost,
        1,
    )
    assert settled.recipient == REDACTED and settled.body == ""
    assert settled.payload == {"sender": "Postier", "template_id": "7"}
    assert rows[seeded.queued].status == MessageStatus.CANCELLED


def test_someone_else_keeps_their_data(engine: Engine) -> None:
    seeded = seed_person(engine)

    erase_number(engine, PERSON, hash_key=HASH_KEY)

    with session_scope(engine) as session:
        other = session.execute(
            sa.select(messages_table).where(messages_table.c.id == seeded.other)
        ).one()
        assert (other.recipient, other.body) == (OTHER, "Bonjour Paul")
        assert opted_out(session, [OTHER]) == {OTHER}
    assert traces_of(engine, OTHER)  # the other person's number is still where it was


def test_the_opt_out_survives_as_a_keyed_hash(engine: Engine) -> None:
    seed_person(engine)

    erase_number(engine, PERSON, hash_key=HASH_KEY)

    with session_scope(engine) as session:
        stored = set(session.execute(sa.select(opt_outs_table.c.recipient)).scalars())
        assert opt_out_hash(PERSON, HASH_KEY) in stored and PERSON not in stored
        # a campaign's fan-out asks with the key: the STOP is still honoured
        assert opted_out(session, [PERSON, "+33611111111"], hash_key=HASH_KEY) == {PERSON}
        assert opted_out(session, [PERSON]) == set()  # without the key nothing can match


def test_a_primotexto_sync_does_not_bring_an_erased_number_back(
    engine: Engine, settings: object
) -> None:
    from pydantic import SecretStr

    from postier.config import Settings
    from postier.dispatch.clients import ProviderClients

    assert isinstance(settings, Settings)
    keyed = settings.model_copy(
        update={
            "retention": settings.retention.model_copy(update={"hash_key": SecretStr(HASH_KEY)})
        }
    )
    seed_person(engine)
    erase_number(engine, PERSON, hash_key=HASH_KEY)
    clients = ProviderClients(keyed)
    try:
        clients.primotexto.add_unsubscriber(PERSON)  # Primotexto still lists it
        sync_opt_outs(engine, keyed, clients)
    finally:
        clients.close()

    assert traces_of(engine, PERSON) == []
    with session_scope(engine) as session:
        assert opted_out(session, [PERSON], hash_key=HASH_KEY) == {PERSON}


def test_erasure_refuses_without_a_hash_key(engine: Engine) -> None:
    seed_person(engine)
    with pytest.raises(ErasureError):
        erase_number(engine, PERSON, hash_key="")
    assert traces_of(engine, PERSON)


def test_export_holds_every_record_of_the_number(engine: Engine) -> None:
    seeded = seed_person(engine)

    data = export_number(engine, "0612345678")

    assert data["number"] == PERSON
    ids = {message["id"] for message in data["messages"]}
    assert {seeded.settled, seeded.queued} <= ids
    assert seeded.recent in ids  # another's message that names the number
    settled = next(m for m in data["messages"] if m["id"] == seeded.settled)
    assert settled["events"][0]["raw"]["number"] == PERSON
    assert [e["message_id"] for e in data["other_provider_answers"]] == [seeded.other]
    assert [row["text"] for row in data["inbound_messages"]] == ["STOP"]
    entries = {a["campaign_id"]: a["entries"] for a in data["campaign_audiences"]}
    assert entries[seeded.campaign_done] == ["mobile;prenom", "06 12 34 56 78;Jeanne"]
    assert entries[seeded.campaign_running] == ["+33612345678"]
    assert data["campaign_chunks"][0]["contacts"] == [[1, {"mobile": "+33 6 12 34 56 78"}]]
    assert data["opt_out"]["source"] == "primotexto"
    assert data["not_reachable"] == list(NOT_REACHABLE)


def test_the_commands_export_then_erase(
    engine: Engine, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from postier.cli import app
    from postier.config import get_settings

    seed_person(engine)
    monkeypatch.setenv("POSTIER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("POSTIER_RETENTION__HASH_KEY", HASH_KEY)
    get_settings.cache_clear()
    try:
        exported = CliRunner().invoke(app, ["export", PERSON, "--output", str(tmp_path / "e.json")])
        erased = CliRunner().invoke(app, ["erase", PERSON, "--yes"])
        again = CliRunner().invoke(app, ["export", PERSON])
        bogus = CliRunner().invoke(app, ["erase", "not a number", "--yes"])
    finally:
        get_settings.cache_clear()

    assert exported.exit_code == 0, exported.output
    assert json.loads((tmp_path / "e.json").read_text())["number"] == PERSON
    assert "providers' own copies" in exported.output
    assert erased.exit_code == 0, erased.output
    assert "STOP is still honoured" in erased.output
    assert "Not reached" in erased.output and "backups" in erased.output
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout[: again.stdout.rindex("}") + 1])
    assert data["messages"] == [] and data["inbound_messages"] == []
    assert bogus.exit_code == 2 and "Traceback" not in bogus.output
    assert traces_of(engine, PERSON) == []


def test_a_redacted_number_stays_as_a_keyed_hash_until_erased(engine: Engine) -> None:
    """Retention keeps (or computes) the message's keyed hash as it redacts the number: the
    support page's lookup and an export still reach the message; an erasure cuts the link."""
    seeded = seed_person(engine)
    digest = number_hash(PERSON, HASH_KEY)

    redact_expired(engine, RetentionSettings(hash_key=SecretStr(HASH_KEY)))

    with session_scope(engine) as session:
        row = session.execute(
            sa.select(messages_table).where(messages_table.c.id == seeded.settled)
        ).one()
        assert (row.recipient, row.recipient_hash) == (REDACTED, digest)
        found = [m.id for m in messages_to_number(session, PERSON, digest)]
        assert seeded.settled in found and seeded.other not in found
        assert seeded.settled not in [m.id for m in messages_to_number(session, PERSON, None)]
    exported = {m["id"] for m in export_number(engine, PERSON, hash_key=HASH_KEY)["messages"]}
    assert seeded.settled in exported
    assert seeded.settled not in {m["id"] for m in export_number(engine, PERSON)["messages"]}

    erase_number(engine, PERSON, hash_key=HASH_KEY)

    with session_scope(engine) as session:
        assert messages_to_number(session, PERSON, digest) == []
        hashes = session.execute(sa.select(messages_table.c.recipient_hash)).scalars().all()
        assert digest not in hashes
