"""``postier api-key create|list|revoke``: the token once, never again; revoked at once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postier.api.keys import authenticate
from postier.cli import app
from postier.config import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_settings(api_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POSTIER_DATABASE_URL", str(api_engine.url))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_create_list_revoke(api_engine: Engine) -> None:
    created = run("api-key", "create", "--name", "boutique", "--scope", "send", "--scope", "read")
    token = re.search(r"postier_[0-9a-f]{12}_\S{43}", created)
    assert token is not None, created
    key = authenticate(api_engine, token.group(0))
    assert key is not None and key.scopes == ("send", "read") and key.name == "boutique"
    listed = run("api-key", "list")
    assert key.id in listed and "boutique" in listed and "send,read" in listed
    assert token.group(0).split("_")[2] not in listed
    assert f"key {key.id} revoked" in run("api-key", "revoke", key.id)
    assert authenticate(api_engine, token.group(0)) is None
    assert "no active key" in run("api-key", "revoke", key.id, code=1)


def test_default_scopes_and_refusals(api_engine: Engine) -> None:
    created = run("api-key", "create", "--name", "app")
    assert "send, read, campaigns" in created
    assert "unknown scope admin" in run(
        "api-key", "create", "--name", "x", "--scope", "admin", code=2
    )
