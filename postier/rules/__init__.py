"""Input rules checked before a message is stored or sent: numbers, texts, senders, files.

Every violation raises ``RuleViolation`` naming the field and the rule that was broken.
"""

from postier.rules.charsets import (
    PRIMOTEXTO_ALLOWED_CHARS,
    check_characters,
    check_primotexto_text,
)
from postier.rules.errors import RuleViolation
from postier.rules.files import (
    FILE_TYPES,
    FILE_TYPES_BY_EXTENSION,
    FileType,
    check_file_url,
    file_type_for_url,
)
from postier.rules.limits import (
    DEFAULT_TRANSPORTS,
    TEXT_LIMITS,
    TextLimit,
    check_text,
    text_limit,
)
from postier.rules.phones import (
    NumberType,
    is_mobile,
    mask_number,
    normalize_number,
    number_hash,
    number_type,
    to_international_digits,
)
from postier.rules.segments import (
    GSM7_BASIC_CHARS,
    GSM7_CHARS,
    GSM7_EXTENSION_CHARS,
    Encoding,
    SegmentInfo,
    analyze,
    count_parts,
    is_gsm7,
    split_parts,
)
from postier.rules.senders import validate_sender
from postier.rules.stop import add_stop_mention, has_stop_mention, require_stop_mention
from postier.rules.textpolicy import (
    FRENCH_SPELLINGS,
    TEXT_POLICIES,
    PolicyOutcome,
    TextChange,
    TextPolicy,
    apply_text_policy,
    transliterate,
)

__all__ = [
    "DEFAULT_TRANSPORTS",
    "FILE_TYPES",
    "FILE_TYPES_BY_EXTENSION",
    "FRENCH_SPELLINGS",
    "GSM7_BASIC_CHARS",
    "GSM7_CHARS",
    "GSM7_EXTENSION_CHARS",
    "PRIMOTEXTO_ALLOWED_CHARS",
    "TEXT_LIMITS",
    "TEXT_POLICIES",
    "Encoding",
    "FileType",
    "NumberType",
    "PolicyOutcome",
    "RuleViolation",
    "SegmentInfo",
    "TextChange",
    "TextLimit",
    "TextPolicy",
    "add_stop_mention",
    "analyze",
    "apply_text_policy",
    "check_characters",
    "check_file_url",
    "check_primotexto_text",
    "check_text",
    "count_parts",
    "file_type_for_url",
    "has_stop_mention",
    "is_gsm7",
    "is_mobile",
    "mask_number",
    "normalize_number",
    "number_hash",
    "number_type",
    "require_stop_mention",
    "split_parts",
    "text_limit",
    "to_international_digits",
    "transliterate",
    "validate_sender",
]
