"""``{{field}}`` placeholders, filled from each contact's fields.

The same syntax as Afilnet's WhatsApp templates (Afilnet WhatsApp API docs:
``Cher {{name}}, votre commande {{orderid}}…``), so one campaign text reads the same whatever the
channel. Spaces inside the braces are allowed (``{{ prenom }}``); a field is looked up by its exact
name, then ignoring case (CSV headers are typed by people). A field the contact lacks, or whose
value is blank, is an error for that contact: a text with a hole in it ("Bonjour , …") is never
sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from postier.rules.errors import RuleViolation

#: ``{{ name }}``: a name of letters, digits, ``_``, ``.`` or ``-`` (accents allowed)
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")


def placeholders(text: str) -> list[str]:
    """The field names ``text`` uses, in order of first use."""
    return list(dict.fromkeys(match.group(1) for match in _PLACEHOLDER.finditer(text)))


def check_template(text: str, *, field: str = "text") -> list[str]:
    """Refuse braces that are not a placeholder (``{{prenom``, ``{{ }}``); the names used."""
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise RuleViolation(
            field,
            "placeholder.syntax",
            "a '{{' or '}}' is not part of a {{field}} placeholder"
            " (names are letters, digits, '_', '.', '-')",
        )
    return placeholders(text)


def lookup(fields: Mapping[str, str], name: str) -> str | None:
    """The value of ``name`` in ``fields`` (exact name first, then ignoring case)."""
    if name in fields:
        return fields[name]
    folded = name.casefold()
    for key, value in fields.items():
        if key.casefold() == folded:
            return value
    return None


def render(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by the contact's value, in one pass (a value
    holding ``{{x}}`` stays as written).

    Raises ``RuleViolation`` (field: the placeholder's name, rule ``placeholder.missing``) for
    the first field that is absent or blank.
    """

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        value = lookup(fields, name)
        if value is None or not value.strip():
            raise RuleViolation(
                name,
                "placeholder.missing",
                f"this contact has no value for {{{{{name}}}}}",
            )
        return value

    return _PLACEHOLDER.sub(value_of, text)


def render_params(params: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, str]:
    """WhatsApp template parameters, each value personalised like a text."""
    return {name: render(value, fields) for name, value in params.items()}
