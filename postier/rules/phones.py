"""Phone numbers: everything Postier stores or sends is E.164 (``+33612345678``).

Accepted input forms (region ``FR`` by default):

* international with ``+``: ``+33612345678``, ``+33 6 12 34 56 78``, ``+33 (0)6 12 34 56 78``;
* international with the ``00`` prefix: ``0033612345678``;
* national: ``0612345678``, ``06.12.34.56.78``, ``06-12-34-56-78`` (and ``612345678``, which
  libphonenumber reads as the national number without its trunk ``0``).

Rejected: bare international digits without ``+`` or ``00`` (``33612345678``). They are the
form Afilnet *returns* and wants in ``destination`` (Afilnet WhatsApp API docs), but read as input
they are ambiguous (a national number in some regions, a country code in others), and libphonenumber
would guess silently; callers holding that form write ``"+" + digits``.

With region ``FR``, a national number of an overseas department (``0692…`` Réunion, ``0690…``
Guadeloupe…) is part of the French numbering plan although libphonenumber files it under its
own region; it is normalised to its own country code (``+262692…``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final, Literal

import phonenumbers
from phonenumbers import CountryCodeSource, NumberParseException, PhoneNumber, PhoneNumberType

from postier.rules.errors import RuleViolation

NumberType = Literal[
    "fixed_line",
    "mobile",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]

_NUMBER_TYPES: Final[dict[int, NumberType]] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

#: separators people type inside numbers; anything else (letters, "ext") is refused
_INPUT_SHAPE: Final = re.compile(r"\+?[0-9 .\-()/]+")
_E164_SHAPE: Final = re.compile(r"\+[1-9][0-9]{1,14}")

#: regions that share the French national numbering plan (ARCEP): dialled 0ABPQ… from France
_FRENCH_PLAN_REGIONS: Final = ("GP", "BL", "MF", "MQ", "GF", "RE", "YT", "PM")

_UNMASKED_HEAD: Final = 1
_UNMASKED_TAIL: Final = 2
_MIN_MASKABLE: Final = 6


#: libphonenumber's own pattern of French mobile numbers (its metadata, not a copy of it)
def _fr_mobile_pattern() -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("FR")
    pattern = metadata.mobile.national_number_pattern if metadata and metadata.mobile else None
    # no pattern (a stripped metadata build): never matches, every number takes the full path
    return str(pattern) if pattern else r"(?!)"


#: a French mobile number written plainly: ``+33``, ``0033`` or the trunk ``0``, then 9 ASCII
#: digits (the first not 0) that libphonenumber's mobile pattern takes whole
_PLAIN_FRENCH_MOBILE: Final = re.compile(
    r"(?:\+33|0033|0)(?=[1-9][0-9]{8}\Z)(?:" + _fr_mobile_pattern() + ")"
)


def plain_french_mobile(text: str, region: str = "FR") -> str | None:
    """The E.164 form of ``text`` when it is a plainly written French mobile number (nothing
    to strip, nothing but ``+`` and ASCII digits), or None to take ``normalize_number``.

    A bulk send is mostly such numbers; libphonenumber's parse and validity check cost about
    a quarter of a millisecond each. Matching its own mobile pattern gives the same answer
    (a property test compares both paths) in one regular expression. Such a ``text`` also
    passes every check of a string field (``rules.inputs.check_string``): a producer calls
    this first, and the checks only for what it does not take.
    """
    if _PLAIN_FRENCH_MOBILE.fullmatch(text) is None:
        return None
    if text[0] == "+":
        return text
    return "+33" + text[-9:] if region == "FR" else None


def normalize_number(raw: str, *, region: str = "FR", field: str = "recipient") -> str:
    """Return ``raw`` as a valid E.164 number, or raise ``RuleViolation`` (rules ``e164.*``).

    Validity is libphonenumber's: the number must be possible (length) and valid (assigned
    range) for its country, so typos are caught before a provider bills or refuses them
    (Primotexto code 11, Octopush 117).
    """
    text = raw.strip()
    if not text:
        raise RuleViolation(field, "e164.empty", "phone number is empty")
    fast = plain_french_mobile(text, region)
    if fast is not None:
        return fast
    return _normalize_with_libphonenumber(text, region, field)


def _normalize_with_libphonenumber(text: str, region: str, field: str) -> str:
    """``normalize_number``'s full path, for any number in any written form."""
    if not text:
        raise RuleViolation(field, "e164.empty", "phone number is empty")
    if not _INPUT_SHAPE.fullmatch(text):
        raise RuleViolation(
            field,
            "e164.characters",
            "phone number may hold only digits, a leading '+', spaces and . - ( ) /",
        )
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except NumberParseException as exc:
        raise RuleViolation(field, "e164.unparsable", "not a phone number") from exc
    if number.country_code_source == CountryCodeSource.FROM_NUMBER_WITHOUT_PLUS_SIGN:
        raise RuleViolation(
            field,
            "e164.prefix",
            "international numbers need a '+' or '00' prefix (write +33…, not 33…)",
        )
    valid = False
    if number.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY and region == "FR":
        number, valid = _french_plan_number(text, number)
    if not valid:
        # (validity is libphonenumber's costliest check: a French number found valid above
        # is not checked twice; that is most of a campaign's fan-out time)
        if not phonenumbers.is_possible_number(number):
            raise RuleViolation(field, "e164.impossible", "phone number has an impossible length")
        if not phonenumbers.is_valid_number(number):
            raise RuleViolation(field, "e164.invalid", "phone number is not in an assigned range")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _E164_SHAPE.fullmatch(e164):
        # libphonenumber validates some German numbers longer than E.164's 15 digits
        # (+4920100000000000): no provider would take them
        raise RuleViolation(field, "e164.impossible", "phone number has more than 15 digits")
    return e164


def _french_plan_number(text: str, number: PhoneNumber) -> tuple[PhoneNumber, bool]:
    """A national French number that libphonenumber files under an overseas region, and
    whether it is valid."""
    if phonenumbers.is_valid_number(number):
        return number, True
    for region in _FRENCH_PLAN_REGIONS:
        try:
            candidate = phonenumbers.parse(text, region)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(candidate):
            return candidate, True
    return number, False


def _parse_e164(e164: str, field: str) -> PhoneNumber:
    if not _E164_SHAPE.fullmatch(e164):
        raise RuleViolation(field, "e164.format", "expected an E.164 number such as +33612345678")
    try:
        return phonenumbers.parse(e164, None)
    except NumberParseException as exc:
        raise RuleViolation(field, "e164.unparsable", "not a phone number") from exc


def number_type(e164: str, *, field: str = "recipient") -> NumberType:
    """libphonenumber's type of an E.164 number (``"mobile"``, ``"fixed_line"``, …).

    Primotexto refuses fixed lines (code 19); knowing the type lets producers refuse first.
    """
    kind = phonenumbers.number_type(_parse_e164(e164, field))
    return _NUMBER_TYPES.get(kind, "unknown")


def is_mobile(e164: str, *, field: str = "recipient") -> bool:
    """Whether an SMS can reach the number: mobile, or a range that mixes fixed and mobile.

    ``fixed_line_or_mobile`` counts as mobile because some plans (North America) do not tell
    them apart; refusing those would refuse every such recipient.
    """
    return number_type(e164, field=field) in ("mobile", "fixed_line_or_mobile")


def to_international_digits(e164: str, *, field: str = "recipient") -> str:
    """``+33612345678`` → ``33612345678``: Afilnet's ``destination`` (its WhatsApp API docs)."""
    if not _E164_SHAPE.fullmatch(e164):
        raise RuleViolation(field, "e164.format", "expected an E.164 number such as +33612345678")
    return e164[1:]


def mask_number(e164: str) -> str:
    """A number safe for logs: ``+33612345678`` → ``+336******78``.

    Keeps the country code, the first digit and the last two of the national part; national
    parts shorter than six digits are masked whole. Never raises (logging must not fail): a
    value that is not E.164 comes back as stars of the same length.
    """
    if not _E164_SHAPE.fullmatch(e164):
        return "*" * len(e164)
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except NumberParseException:
        return "+" + "*" * (len(e164) - 1)
    national = e164[1 + len(country) :]
    if len(national) < _MIN_MASKABLE:
        return f"+{country}" + "*" * len(national)
    hidden = len(national) - _UNMASKED_HEAD - _UNMASKED_TAIL
    return f"+{country}{national[:_UNMASKED_HEAD]}{'*' * hidden}{national[-_UNMASKED_TAIL:]}"


#: prefix of a number kept as a keyed hash (``number_hash``)
HASH_PREFIX: Final = "h:"


def number_hash(e164: str, key: str) -> str:
    """``e164`` as a keyed hash, ``h:`` and 30 hex digits (HMAC-SHA256 with ``key``).

    Why keyed: a plain hash of a French mobile number is reversed by hashing the few hundred
    million possible numbers; without the key (``POSTIER_RETENTION__HASH_KEY``, kept out of
    the ledger) the hash says nothing, with it a number typed in can still be matched. The
    ledger keeps it for opt-outs of erased numbers and beside each message's recipient, so
    support finds a message by number after retention has redacted the number itself.
    """
    digest = hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest[:30]
