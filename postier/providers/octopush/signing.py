"""Legacy request signing: ``request_keys`` + ``request_sha1`` (Octopush API docs).

``request_keys`` lists letters, each naming one form field; ``request_sha1`` is the SHA-1 (hex)
of those fields' values concatenated in the letters' order, as UTF-8. Octopush recomputes it
and answers 124 when it differs (123 when the keys come without it), so a request altered on
the way is refused. A field named by a letter but not sent counts as the empty string.

D is never signed: the docs' list says it is the date, but Octopush's own client libraries
map it to ``sms_date``, a field no request carries, where ``sending_date`` would be expected.
Under one reading a deferred send signed with D would be refused with 124, so Postier signs
only the letters whose field is certain (``SIGNED_LETTERS``); such a signature holds under
either reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

#: request_keys letter -> the form field it names, every letter of the Octopush API docs
SIGNED_FIELDS: Final[dict[str, str]] = {
    "T": "sms_text",
    "R": "sms_recipients",
    "M": "sms_mode",
    "Y": "sms_type",
    "S": "sms_sender",
    "D": "sending_date",
    "a": "recipients_first_names",
    "b": "recipients_last_names",
    "c": "sms_fields_1",
    "d": "sms_fields_2",
    "e": "sms_fields_3",
    "W": "with_replies",
    "N": "transactional",
    "Q": "request_id",
}
#: the letters Postier signs, in this order: every one whose field is certain (not D)
SIGNED_LETTERS: Final = "".join(letter for letter in SIGNED_FIELDS if letter != "D")


def request_sha1(form: Mapping[str, str], keys: str) -> str:
    """SHA-1 hex of the values of the fields ``keys`` names; an unknown letter is a ValueError."""
    try:
        values = [form.get(SIGNED_FIELDS[letter], "") for letter in keys]
    except KeyError as exc:
        raise ValueError(f"request_keys: unknown letter {exc.args[0]!r}") from exc
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def sign_form(form: Mapping[str, str]) -> dict[str, str]:
    """``form`` plus ``request_keys`` (each field of ``SIGNED_LETTERS`` it holds) and
    ``request_sha1``."""
    keys = "".join(letter for letter in SIGNED_LETTERS if SIGNED_FIELDS[letter] in form)
    return {**form, "request_keys": keys, "request_sha1": request_sha1(form, keys)}
