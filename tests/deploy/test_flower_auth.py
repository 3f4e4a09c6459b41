"""Flower's options from the settings: authentication on by default, OAuth when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from postier.config import FlowerSettings, Settings
from postier.flower import (
    TASKS_COLUMNS,
    FlowerAuthError,
    flower_environment,
    uses_oauth,
    with_generated_password,
)
from postier.stack import Stack, StackOptions
from tests.deploy.conftest import RunCli


def test_basic_auth_from_the_settings() -> None:
    env = flower_environment(FlowerSettings(password=SecretStr("s3cret"), port=5601))
    assert env == {
        "FLOWER_ADDRESS": "127.0.0.1",
        "FLOWER_PORT": "5601",
        "FLOWER_PURGE_OFFLINE_WORKERS": "60",
        "FLOWER_TASKS_COLUMNS": TASKS_COLUMNS,
        "FLOWER_BASIC_AUTH": "postier:s3cret",
    }


def test_no_password_and_no_oauth_is_refused() -> None:
    with pytest.raises(FlowerAuthError, match="POSTIER_FLOWER__PASSWORD"):
        flower_environment(FlowerSettings())
    with pytest.raises(FlowerAuthError, match="','"):
        flower_environment(FlowerSettings(password=SecretStr("a,b")))
    # an auth provider without the e-mail regexp is not OAuth: a password is still needed
    with pytest.raises(FlowerAuthError):
        flower_environment(FlowerSettings(auth_provider="flower.views.auth.GithubLoginHandler"))


def test_oauth_replaces_basic_auth() -> None:
    flower = FlowerSettings(
        auth_provider="flower.views.auth.GoogleAuth2LoginHandler",
        auth=r".*@example\.com",
        oauth2_key="client-id",
        oauth2_secret=SecretStr("client-secret"),
        oauth2_redirect_uri="https://flower.example.com/login",
        persistent=True,
        db="/var/lib/postier/flower.db",
        url_prefix="flower",
    )
    assert uses_oauth(flower)
    env = flower_environment(flower)
    assert "FLOWER_BASIC_AUTH" not in env
    assert env["FLOWER_AUTH_PROVIDER"] == "flower.views.auth.GoogleAuth2LoginHandler"
    assert env["FLOWER_AUTH"] == r".*@example\.com"
    assert env["FLOWER_OAUTH2_SECRET"] == "client-secret"
    assert env["FLOWER_OAUTH2_REDIRECT_URI"] == "https://flower.example.com/login"
    assert (env["FLOWER_PERSISTENT"], env["FLOWER_DB"]) == ("true", "/var/lib/postier/flower.db")
    assert env["FLOWER_URL_PREFIX"] == "flower"
    assert with_generated_password(flower) is flower


def test_every_flower_variable_is_a_flower_option() -> None:
    from flower.options import default_options

    flower = FlowerSettings(
        password=SecretStr("pw"), persistent=True, url_prefix="f", auth_provider="x", auth="y"
    )
    names = set(flower_environment(flower)) | set(
        flower_environment(FlowerSettings(password=SecretStr("pw")))
    )
    for name in names:
        assert name[len("FLOWER_") :].lower() in default_options, name


def test_the_stack_generates_a_password_once(tmp_path: Path) -> None:
    stack = Stack(StackOptions(workdir=tmp_path, settings=Settings(_env_file=None)))
    credentials = stack.flower_credentials
    assert credentials is not None
    user, password = credentials
    assert user == "postier" and len(password) >= 16
    assert stack.flower_credentials == credentials
    given = Stack(StackOptions(workdir=tmp_path, flower_password="chosen-one"))
    assert given.flower_credentials == ("postier", "chosen-one")


def test_postier_flower_refuses_to_start_without_a_password(run_cli: RunCli) -> None:
    result = run_cli("flower")
    assert result.exit_code == 2
    assert "POSTIER_FLOWER__PASSWORD" in result.stdout
