"""Legacy request signing: ``request_keys`` + ``request_sha1`` (PROVIDERS.md, "Octopush").

``request_keys`` lists letters, each naming one form field; ``request_sha1`` is the SHA-1 (hex)
of those fields' values concatenated in the letters' order, as UTF-8. Octopush recomputes it
and answers 124 when it differs (123 when the keys come without it), so a request altered on
the way is refused. A field named by a letter but not sent counts as the empty string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

#: request_keys letter -> the form field it signs, in the order the client signs them
SIGNED_FIELDS: Final[dict[str, str]] = {
    "T": "sms_text",
    "R": "sms_recipients",
    "Y": "sms_type",
    "S": "sms_sender",
    "D": "sending_date",
    "W": "with_replies",
    "N": "transactional",
    "Q": "request_id",
}


def request_sha1(form: Mapping[str, str], keys: str) -> str:
    """SHA-1 hex of the values of the fields ``keys`` names; an unknown letter is a ValueError."""
    try:
        values = [form.get(SIGNED_FIELDS[letter], "") for letter in keys]
    except KeyError as exc:
        raise ValueError(f"request_keys: unknown letter {exc.args[0]!r}") from exc
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def sign_form(form: Mapping[str, str]) -> dict[str, str]:
    """``form`` plus ``request_keys`` (every signable field it holds) and ``request_sha1``."""
    keys = "".join(letter for letter, name in SIGNED_FIELDS.items() if name in form)
    return {**form, "request_keys": keys, "request_sha1": request_sha1(form, keys)}
