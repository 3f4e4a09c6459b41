"""Where callbacks may go: https anywhere, http on loopback only, no credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules.callback_targets import (
    TargetKind,
    check_callback_url,
    check_target,
    target_kind,
)
from postier.rules.errors import RuleViolation


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/postier/events",
        "https://app.example:8443/hook?tenant=4",
        "http://127.0.0.1:8000/events",
        "http://localhost/events",
        "http://[::1]:9000/e",
        "http://127.0.0.5/e",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://app.example/events", "callback_url.scheme"),
        ("http://10.0.0.1/events", "callback_url.scheme"),
        ("ftp://app.example/events", "callback_url.scheme"),
        ("app.example/events", "callback_url.scheme"),
        ("https:///nohost", "callback_url.host"),
        ("https://user:pw@app.example/events", "callback_url.credentials"),
        ("https://app.example/a b", "callback_url.syntax"),
        ("https://app.example:99999/", "callback_url.syntax"),
        ("", "callback_url.required"),
        ("https://app.example/" + "a" * 2100, "callback_url.length"),
    ],
)
def test_refused_urls_name_the_field_and_rule(url: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_callback_url(url)
    assert (caught.value.field, caught.value.rule) == ("callback_url", rule)


def test_http_off_loopback_with_the_explicit_setting() -> None:
    assert check_callback_url("http://app.internal/e", allow_http=True)


def test_the_field_named_is_the_caller_s() -> None:
    with pytest.raises(RuleViolation, match=r"callbacks\.target"):
        check_callback_url("http://app.example/", field="callbacks.target")


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("https://app.example/e", TargetKind.URL),
        ("myapp.hooks:on_status", TargetKind.FUNCTION),
        ("myapp.tasks.on_status", TargetKind.TASK),
        ("on-status", TargetKind.TASK),
    ],
)
def test_target_kinds(target: str, kind: TargetKind) -> None:
    assert target_kind(target) is kind
    assert check_target(target, field="callbacks.target") is kind


@pytest.mark.parametrize("target", ["my app:x", "mod:1func", "a/b", ":f"])
def test_targets_of_no_kind_are_refused(target: str) -> None:
    with pytest.raises(RuleViolation, match=r"callbacks\.target"):
        target_kind(target)


@given(st.text(max_size=300))
def test_any_text_is_accepted_or_refused_by_rule_never_crashes(text: str) -> None:
    try:
        check_callback_url(text)
    except RuleViolation as exc:
        assert exc.field == "callback_url" and exc.rule.startswith("callback_url.")
