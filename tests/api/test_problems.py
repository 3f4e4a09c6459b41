"""RFC 9457 problems: the producers' RuleViolation and pydantic's errors as {field, rule}."""

from __future__ import annotations

from postier.api.problems import (
    RULE_VIOLATION,
    FieldError,
    Problem,
    field_path,
    schema_errors,
    validation_problem,
    violation_problem,
)
from postier.rules.errors import RuleViolation


def test_violation_problem() -> None:
    problem = violation_problem(RuleViolation("to", "e164.format", "not a number"))
    assert problem.status == 422
    assert problem.body() == {
        "type": RULE_VIOLATION,
        "title": "The input breaks a rule",
        "status": 422,
        "detail": "to: not a number (rule: e164.format)",
        "errors": [{"field": "to", "rule": "e164.format", "message": "not a number"}],
    }


def test_blank_problem_takes_the_status_phrase() -> None:
    body = Problem(429, "slow down", headers={"Retry-After": "2"}).body()
    assert body == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "slow down",
    }
    response = Problem(429, "slow down", headers={"Retry-After": "2"}).response()
    assert response.headers["retry-after"] == "2"
    assert response.media_type == "application/problem+json"


def test_field_paths() -> None:
    assert field_path(("body", "messages", 3, "to")) == "messages[3].to"
    assert field_path(("body",)) == "body"
    assert field_path(("body", 0, "to")) == "body[0].to"
    assert field_path(("header", "Idempotency-Key")) == "Idempotency-Key"


def test_schema_errors_name_rules_like_the_producers() -> None:
    errors = schema_errors(
        [
            {"loc": ("body", "to"), "type": "missing", "msg": "Field required"},
            {"loc": ("body", "text"), "type": "string_type", "msg": "Input should be a string"},
            {"loc": ("body", "category"), "type": "literal_error", "msg": "bad"},
            {"loc": ("body", "colour"), "type": "extra_forbidden", "msg": "extra"},
            {"loc": ("body", "send_at"), "type": "datetime_from_date_parsing", "msg": "bad"},
            {"loc": ("body", 12), "type": "json_invalid", "msg": "JSON decode error"},
            {"loc": ("body", "params", "x"), "type": "weird", "msg": "?"},
        ]
    )
    assert [(e.field, e.rule) for e in errors] == [
        ("to", "to.required"),
        ("text", "text.type"),
        ("category", "category.value"),
        ("colour", "colour.unknown"),
        ("send_at", "send_at.format"),
        ("body", "body.json"),
        ("params.x", "x.invalid"),
    ]


def test_validation_problem_counts_the_rest() -> None:
    problem = validation_problem(
        [FieldError("to", "to.required", "missing"), FieldError("text", "text.type", "bad")]
    )
    assert problem.detail == "to: missing (rule: to.required) (and 1 more)"
    assert len(problem.body()["errors"]) == 2
