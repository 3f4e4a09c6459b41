"""``postier campaign`` and ``postier contacts``, run as a user runs them (typer's runner)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postier.cli import app
from postier.config import get_settings
from postier.sandbox.server import SandboxServer
from tests.campaigns.conftest import Drain

runner = CliRunner()


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    sandbox_server: SandboxServer,
    redis_test_url: str,
    drain: Drain,
) -> Iterator[None]:
    """The CLI's settings: this test's ledger, the sandbox, the test Redis."""
    monkeypatch.setenv("POSTIER_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("POSTIER_SANDBOX_URL", sandbox_server.url)
    monkeypatch.setenv("POSTIER_REDIS_URL", redis_test_url)
    monkeypatch.setenv("POSTIER_CAMPAIGNS__CHUNK_SIZE", "50")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_contacts_commands_cover_every_group_method(env: None, tmp_path: Path) -> None:
    group = run(
        "contacts", "create-group", "clients", "--field", "mobile", "--field", "name"
    ).strip()
    contact = run("contacts", "add", group, "mobile=33612345601", "name=Ana").strip()
    csv = tmp_path / "clients.csv"
    csv.write_text("Tel;Nom\n0612345602;Bo\n06;Cy\n", encoding="utf-8")
    out = run(
        "contacts", "import", group, str(csv), "--column", "mobile=Tel", "--column", "name=Nom"
    )
    assert "1 contacts sent" in out and "e164.impossible" in out
    listing = run("contacts", "list", group)
    assert "2 contacts" in listing and "+336******01" in listing and "33612345601" not in listing
    assert run("contacts", "columns", group).split() == ["mobile", "name"]
    run("contacts", "add-column", group, "city")
    assert "city" in run("contacts", "columns", group)
    run("contacts", "delete-column", group, "city")
    run("contacts", "set-country", group, "fra")
    run("contacts", "modify", group, contact, "name=Anna")
    assert '"name": "Anna"' in run("contacts", "get", group, contact)
    run("contacts", "delete", group, contact)
    assert "1 contacts" in run("contacts", "list", group)
    assert "refused" in run("contacts", "set-country", group, "france", code=2)
    run("contacts", "delete-group", group)
    assert "provider error" in run("contacts", "columns", group, code=1)


def test_the_dry_run_shows_what_the_text_policy_changes(env: None) -> None:
    out = run(
        "campaign",
        "create",
        "rappel",
        "--text",
        "Votre commande est prête à l’heure",
        "--to",
        "0612345601",
        "--notification",
        "--provider",
        "primotexto",
        "--dry-run",
    )
    assert "transliterate" in out
    assert "1 message(s) changed: 'ê'→'e' ×1, '’'→\"'\" ×1" in out
    assert "1 (as written, in UCS-2: 1)" not in out and "SMS parts" in out
    assert "Votre commande est prete à l'heure" in out


def test_campaign_commands(env: None, drain: Drain, tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("0612345601\n0612345602\n\n0612345601\nnope\n", encoding="utf-8")
    estimate = run(
        "campaign", "create", "promo", "--text", "Soldes", "--numbers", str(numbers), "--dry-run"
    )
    assert "nothing stored" in estimate and "octopush" in estimate
    assert "e164.characters" in estimate and "€0.11" in estimate

    refused = run(
        "campaign",
        "create",
        "promo",
        "--text",
        "Soldes",
        "--to",
        "0612345601",
        "--provider",
        "primotexto",
        "--route",
        "notification",
        code=2,
    )
    assert "route.marketing_forbidden" in refused

    created = run(
        "campaign",
        "create",
        "rappel",
        "--text",
        "Rappel",
        "--numbers",
        str(numbers),
        "--notification",
    )
    campaign_id = created.split()[0]
    assert "running" in created
    drain.run()
    status = run("campaign", "status", campaign_id)
    assert "sent: 2" in status and "1 repeated" in status and "e164.characters" in status
    listing = run("campaign", "list")
    assert campaign_id[:12] in listing and campaign_id not in listing
    # the short id from the listing (or any unique prefix) works wherever an id does
    short = campaign_id[:12]
    assert "unchanged" in run("campaign", "resume", short, code=1)
    assert "paused" in run("campaign", "pause", short)
    assert "scheduled" in run("campaign", "resume", campaign_id[:6])
    assert "cancelled" in run("campaign", "cancel", short)
    followed = run("campaign", "status", short, "--follow", "--interval", "0.05")
    assert "cancelled" in followed
    assert "no campaign" in run("campaign", "status", "0" * 32, code=1)


def test_optout_commands(env: None) -> None:
    assert run("campaign", "optout", "add", "0612345678").strip() == "added"
    assert run("campaign", "optout", "add", "+33612345678").strip() == "already opted out"
    assert "+336******78" in run("campaign", "optout", "list")
    assert "primotexto: 0 added" in run("campaign", "optout", "sync")
    assert run("campaign", "optout", "remove", "0612345678").strip() == "removed"
    assert "refused" in run("campaign", "optout", "add", "hello", code=2)
