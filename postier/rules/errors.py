"""The error every input rule raises: it names the field and the rule that was broken."""

from __future__ import annotations


class RuleViolation(ValueError):
    """Input that breaks one of Postier's rules, caught before anything is stored or sent."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message} (rule: {rule})")
        self.field = field
        self.rule = rule
        self.message = message
