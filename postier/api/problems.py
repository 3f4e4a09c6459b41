"""RFC 9457 problem answers: every refusal of the API is ``application/problem+json``.

A problem has ``type``, ``title``, ``status`` and ``detail``; a refused input adds ``errors``,
one ``{field, rule, message}`` per broken rule, the field and rule the producers' own
``RuleViolation`` names (``postier.rules.errors``), so an API client reads the same rule
names as a Python caller.

Types: ``about:blank`` (the HTTP status says it all: 401, 403, 404, 413, 429 …) and three of
our own, URNs as RFC 9457 allows (section 3.1.1: a URI need not be dereferenceable):
``urn:postier:problem:rule-violation`` (422, the input breaks a rule),
``urn:postier:problem:idempotency-conflict`` (409, an Idempotency-Key reused for another
request) and ``urn:postier:problem:state-conflict`` (409, a message or campaign that cannot
move that way now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from starlette.responses import JSONResponse

from postier.rules.errors import RuleViolation

PROBLEM_JSON: Final = "application/problem+json"
RULE_VIOLATION: Final = "urn:postier:problem:rule-violation"
IDEMPOTENCY_CONFLICT: Final = "urn:postier:problem:idempotency-conflict"
STATE_CONFLICT: Final = "urn:postier:problem:state-conflict"
BLANK: Final = "about:blank"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: the field (a body field, ``messages[3].to``, a header) and the rule."""

    field: str
    rule: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass
class Problem(Exception):
    """A refusal the API answers as a problem document."""

    status: int
    detail: str
    type: str = BLANK
    title: str | None = None
    errors: Sequence[FieldError] = field(default_factory=tuple)
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": self.type,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            document["errors"] = [error.as_json() for error in self.errors]
        return document

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(),
            status_code=self.status,
            headers=dict(self.headers),
            media_type=PROBLEM_JSON,
        )


def violation_problem(violation: RuleViolation, *, prefix: str = "") -> Problem:
    """The 422 answer for a producer's ``RuleViolation`` (``prefix``: where the input sits)."""
    error = FieldError(prefix + violation.field, violation.rule, violation.message)
    return Problem(
        422,
        f"{error.field}: {violation.message} (rule: {violation.rule})",
        type=RULE_VIOLATION,
        title="The input breaks a rule",
        errors=(error,),
    )


#: pydantic error types → the rule suffix the producers use for the same fault
_PYDANTIC_RULES: Final[Mapping[str, str]] = {
    "missing": "required",
    "extra_forbidden": "unknown",
    "literal_error": "value",
    "enum": "value",
    "too_long": "length",
    "too_short": "length",
    "string_too_long": "length",
    "string_too_short": "length",
    "datetime_from_date_parsing": "format",
    "datetime_parsing": "format",
    "timezone_aware": "timezone",
    "json_invalid": "json",
    "greater_than_equal": "range",
    "less_than_equal": "range",
    "greater_than": "range",
    "less_than": "range",
}


def field_path(location: Sequence[str | int]) -> str:
    """``("body", "messages", 3, "to")`` → ``messages[3].to``."""
    parts = [part for part in location if part not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return "body" + text if text.startswith("[") or not text else text


def schema_errors(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic's validation errors as ``FieldError``s with rules named like the producers'.

    The rule is ``<last field>.<kind>``: ``to.required``, ``send_at.format``, ``text.type``.
    """
    found: list[FieldError] = []
    for error in errors:
        location = [part for part in error.get("loc", ()) if isinstance(part, str | int)]
        path = field_path(location)
        named = [part for part in location if isinstance(part, str)]
        leaf = named[-1] if named and named[-1] not in ("body",) else "body"
        kind = str(error.get("type", "invalid"))
        if kind == "json_invalid":  # its location is a character position, not a field
            path, leaf = "body", "body"
        suffix = _PYDANTIC_RULES.get(kind, "type" if kind.endswith("_type") else "invalid")
        message = str(error.get("msg", "invalid"))
        found.append(FieldError(path, f"{leaf}.{suffix}", message))
    return found


def validation_problem(errors: Sequence[FieldError]) -> Problem:
    """The 422 answer for a body that does not fit the schema (before any producer)."""
    first = errors[0] if errors else FieldError("body", "body.invalid", "invalid body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(
        422,
        f"{first.field}: {first.message} (rule: {first.rule}){more}",
        type=RULE_VIOLATION,
        title="The input breaks a rule",
        errors=tuple(errors),
    )


__all__ = [
    "BLANK",
    "IDEMPOTENCY_CONFLICT",
    "PROBLEM_JSON",
    "RULE_VIOLATION",
    "STATE_CONFLICT",
    "FieldError",
    "Problem",
    "field_path",
    "schema_errors",
    "validation_problem",
    "violation_problem",
]
