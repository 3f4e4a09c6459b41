""".env.example is generated from the settings model: current, complete, and it parses back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from postier.config import Settings
from postier.envexample import UndocumentedSetting, field_comments, render_env_example
from tests.deploy.commands import setting_exists
from tests.deploy.conftest import RunCli

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"


def assignments(text: str) -> dict[str, str]:
    """The ``#POSTIER_X=value`` lines of the example."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#POSTIER_"):
            key, _, value = line[1:].partition("=")
            found[key] = value
    return found


def test_the_file_is_what_the_model_renders() -> None:
    assert ENV_EXAMPLE.read_text() == render_env_example(), (
        ".env.example is out of date: run `make env-example`"
    )


def test_the_cli_prints_the_same_text_whatever_the_environment(
    run_cli: RunCli, tmp_path: Path
) -> None:
    printed = run_cli("env-example", env={"POSTIER_REDIS_URL": "redis://elsewhere:6379/3"})
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == ENV_EXAMPLE.read_text()
    written = run_cli("env-example", "--write", str(tmp_path / "example.env"))
    assert written.exit_code == 0, written.output
    assert (tmp_path / "example.env").read_text() == ENV_EXAMPLE.read_text()


def test_every_setting_is_listed_once_with_a_meaning() -> None:
    text = ENV_EXAMPLE.read_text()
    found = assignments(text)
    assert all(setting_exists(key) for key in found)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("#POSTIER_"):
            assert lines[index - 1].startswith("# ") and len(lines[index - 1]) > 4, line
    defaults = Settings.model_construct()
    for section in ("HTTP", "AFILNET", "FLOWER", "METRICS", "LOG", "DISPATCH"):
        model = getattr(defaults, section.lower())
        for name in type(model).model_fields:
            assert f"POSTIER_{section}__{name.upper()}" in found
    assert found["POSTIER_FLOWER__PASSWORD"] == ""
    assert found["POSTIER_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert found["POSTIER_RATE_LIMITS__OCTOPUSH__RATE"] == "10.0"


def test_uncommented_it_gives_back_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("POSTIER_"):
            monkeypatch.delenv(key)
    for key, value in assignments(ENV_EXAMPLE.read_text()).items():
        if value:  # an empty value means unset (None or an empty secret)
            monkeypatch.setenv(key, value)
    loaded = Settings(_env_file=None)
    defaults = Settings.model_construct()
    assert loaded.model_dump(mode="json") == defaults.model_dump(mode="json")


class _Documented(BaseModel):
    """A model for the comment reader."""

    #: the first one
    first: int = 1
    #: spans
    #: two lines
    second: str = "x"
    #: a group's comment
    grouped_a: int = 0
    grouped_b: int = 0

    undocumented: int = 0


def test_comments_are_read_and_a_missing_one_is_an_error() -> None:
    comments = field_comments(_Documented)
    assert comments == {
        "first": "the first one",
        "second": "spans two lines",
        "grouped_a": "a group's comment",
        "grouped_b": "a group's comment",
    }

    class _Host(Settings):
        """Settings with one more, undocumented field."""

        extra_section: _Documented = _Documented()

    with pytest.raises(UndocumentedSetting, match="undocumented"):
        render_env_example(_Host.model_construct())
