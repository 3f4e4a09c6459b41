"""Who a campaign goes to: an Afilnet group, a CSV file or a list, read into ``Contact``s.

Every contact keeps where it came from (``line``: the CSV line, the header being line 1; or
its position from 1 in a list or a group), so a refused contact is reported where the user can
find it. Reading only splits and maps; numbers and texts are checked later, per contact, by
the fan-out (``fanout.py``), which reports each refusal by line too.

- CSV: the delimiter is ``,`` or ``;`` (French spreadsheets write ``;``), sniffed from the
  header; a UTF-8 byte-order mark is dropped. ``columns`` maps the campaign's field names to
  CSV headers (``{"mobile": "Téléphone", "prenom": "Prénom"}``); headers not mapped keep their
  own name, so any column can fill a ``{{placeholder}}``. A row with more or fewer values than
  the header is refused as a whole (rule ``csv.shape``): its values cannot be matched to
  columns.
- List: numbers (``"0612345678"``) or mappings of fields holding the number field.
- Group: Afilnet's ``getcontacts``, one call (Afilnet's contacts API documents no paging; see
  ``providers/afilnet/groups.py``). Only a ``mobile`` group can receive SMS or WhatsApp.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from postier.providers.afilnet.groups import AfilnetGroups
from postier.rules.errors import RuleViolation

AudienceKind = Literal["group", "csv", "list"]
AUDIENCE_KINDS: Final[tuple[AudienceKind, ...]] = ("group", "csv", "list")

#: the field holding the number unless the campaign names another (Afilnet's main field)
DEFAULT_PHONE_FIELD: Final = "mobile"
_DELIMITERS: Final = ",;\t"
_BOM: Final = "\ufeff"


@dataclass(frozen=True, slots=True)
class Contact:
    """One recipient as given, with where it came from."""

    line: int
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A contact left out, with the line, field and rule that say why."""

    line: int
    field: str
    rule: str
    message: str

    @classmethod
    def of(cls, line: int, violation: RuleViolation) -> Rejection:
        return cls(line, violation.field, violation.rule, violation.message)

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message} (rule: {self.rule})"


@dataclass(frozen=True, slots=True)
class Audience:
    """The contacts read from an audience, and the rows refused while reading it."""

    contacts: list[Contact]
    rejections: list[Rejection] = field(default_factory=list)


# -- CSV ----------------------------------------------------------------------------------


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith(_BOM) else text


def csv_delimiter(text: str) -> str:
    """The delimiter of the CSV ``text``, from its header line (``,`` when it cannot tell)."""
    header = _strip_bom(text).split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in _DELIMITERS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _reader(text: str) -> tuple[Any, str]:
    delimiter = csv_delimiter(text)
    return csv.reader(io.StringIO(_strip_bom(text), newline=""), delimiter=delimiter), delimiter


def csv_header(text: str) -> list[str]:
    """The column names of the CSV ``text`` (its first line), blanks stripped.

    Raises ``RuleViolation`` (field ``csv``) for an empty file, a repeated column name or a
    header the reader cannot split.
    """
    reader, _ = _reader(text)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise RuleViolation("csv", "csv.format", f"the CSV cannot be read: {exc}") from exc
    if not header or not any(name.strip() for name in header):
        raise RuleViolation("csv", "csv.header", "the CSV has no header line")
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RuleViolation(
            "csv", "csv.header_duplicate", f"columns named more than once: {', '.join(repeated)}"
        )
    return names


def check_columns(
    header: Sequence[str], columns: Mapping[str, str], *, phone_field: str = DEFAULT_PHONE_FIELD
) -> None:
    """Refuse a mapping naming a column the CSV lacks, or one that leaves no number column."""
    missing = sorted({source for source in columns.values() if source not in header})
    if missing:
        raise RuleViolation(
            "csv_columns",
            "csv.column_missing",
            f"no column {', '.join(repr(m) for m in missing)} in the CSV"
            f" (its columns: {', '.join(header)})",
        )
    mapped_sources = set(columns.values())
    available = set(columns) | {name for name in header if name not in mapped_sources}
    if phone_field not in available:
        raise RuleViolation(
            "csv_columns",
            "csv.phone_column",
            f"no {phone_field!r} column: map the column holding the numbers,"
            f" e.g. {phone_field}=<its header>",
        )


def parse_csv(
    text: str, columns: Mapping[str, str] | None = None, *, phone_field: str = DEFAULT_PHONE_FIELD
) -> Audience:
    """The contacts of the CSV ``text`` (header first), mapped by ``columns``.

    Raises ``RuleViolation`` (rule ``csv.format``) for a CSV the reader cannot split, e.g. a
    field longer than the reader's limit (128 kB).
    """
    try:
        return _parse_csv(text, columns, phone_field=phone_field)
    except csv.Error as exc:
        raise RuleViolation("csv", "csv.format", f"the CSV cannot be read: {exc}") from exc


def _parse_csv(text: str, columns: Mapping[str, str] | None, *, phone_field: str) -> Audience:
    columns = dict(columns or {})
    header = csv_header(text)
    check_columns(header, columns, phone_field=phone_field)
    renamed = {source: name for name, source in columns.items()}
    names = [renamed.get(name, name) for name in header]
    reader, _ = _reader(text)
    next(reader)
    contacts: list[Contact] = []
    rejections: list[Rejection] = []
    line = reader.line_num + 1
    for values in reader:
        here, line = line, reader.line_num + 1
        if not values or not any(value.strip() for value in values):
            continue
        if len(values) != len(names):
            rejections.append(
                Rejection(
                    here,
                    "csv",
                    "csv.shape",
                    f"{len(values)} values for {len(names)} columns",
                )
            )
            continue
        contacts.append(
            Contact(here, dict(zip(names, (value.strip() for value in values), strict=True)))
        )
    return Audience(contacts, rejections)


# -- list ---------------------------------------------------------------------------------


def list_entries(entries: Sequence[str | Mapping[str, str]]) -> list[str | dict[str, str]]:
    """A list audience checked for its shape (each a number or a mapping of strings)."""
    if isinstance(entries, str | bytes | Mapping):
        raise RuleViolation("recipients", "recipients.list", "recipients must be a list")
    checked: list[str | dict[str, str]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            checked.append(entry)
        elif isinstance(entry, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
        ):
            checked.append(dict(entry))
        else:
            raise RuleViolation(
                f"recipients[{index}]",
                "recipients.entry",
                "each recipient is a number or a mapping of field names to strings",
            )
    return checked


def parse_list(
    entries: Sequence[str | Mapping[str, str]], *, phone_field: str = DEFAULT_PHONE_FIELD
) -> Audience:
    """Contacts of a list: a bare number becomes ``{phone_field: number}``."""
    contacts = [
        Contact(index, {phone_field: entry} if isinstance(entry, str) else dict(entry))
        for index, entry in enumerate(list_entries(entries), start=1)
    ]
    return Audience(contacts)


def encode_list(entries: Sequence[str | Mapping[str, str]]) -> str:
    """A list audience as stored (JSON text)."""
    return json.dumps(list_entries(entries), ensure_ascii=False, separators=(",", ":"))


def decode_list(content: str) -> list[str | dict[str, str]]:
    """The stored JSON text of a list audience, back as a list."""
    try:
        value = json.loads(content)
    except ValueError as exc:
        raise RuleViolation("recipients", "recipients.list", "the stored list is not JSON") from exc
    if not isinstance(value, list):
        raise RuleViolation("recipients", "recipients.list", "recipients must be a list")
    return list_entries(value)


# -- Afilnet group ------------------------------------------------------------------------


def group_audience(
    groups: AfilnetGroups,
    group_id: str,
    *,
    phone_field: str = DEFAULT_PHONE_FIELD,
    used: Sequence[str] = (),
) -> Audience:
    """Every contact of an Afilnet group (``getcontacts``), in Afilnet's order.

    Raises ``RuleViolation`` when the group has no ``phone_field`` column (an e-mail group)
    or no column for a placeholder in ``used`` (every contact would fail); provider errors
    (an unknown group: ``NotFoundError``) propagate.
    """
    columns = groups.get_columns(group_id)
    folded = {name.casefold() for name in columns}
    if phone_field.casefold() not in folded:
        raise RuleViolation(
            "group",
            "group.phone_column",
            f"group {group_id} has no {phone_field!r} column (its columns: {', '.join(columns)})",
        )
    missing = [name for name in used if name.casefold() not in folded]
    if missing:
        raise RuleViolation(
            "text",
            "placeholder.unknown_column",
            f"group {group_id} has no column {', '.join(repr(m) for m in missing)}"
            f" (its columns: {', '.join(columns)})",
        )
    contacts: list[Contact] = []
    for index, contact in enumerate(groups.get_contacts(group_id), start=1):
        fields = dict(contact.fields)
        for name in fields:
            if name.casefold() == phone_field.casefold():
                fields[name] = afilnet_number(fields[name])
        contacts.append(Contact(index, fields))
    return Audience(contacts)


def afilnet_number(value: str) -> str:
    """A group's number as our rules read it: Afilnet keeps international digits without
    ``+`` (Afilnet contacts API docs: ``"mobile":"34600000000"``), which ``normalize_number``
    refuses as ambiguous; digits not starting with ``0`` get their ``+`` back."""
    text = value.strip()
    return f"+{text}" if text.isdigit() and not text.startswith("0") else text


def slices(contacts: Sequence[Contact], size: int) -> Iterator[tuple[int, int]]:
    """Bounds ``(start, stop)`` of consecutive slices of at most ``size`` contacts."""
    for start in range(0, len(contacts), size):
        yield start, min(start + size, len(contacts))


def contacts_to_json(contacts: Sequence[Contact]) -> list[list[Any]]:
    """Contacts as a chunk stores them: ``[[line, {fields}], …]``."""
    return [[contact.line, dict(contact.fields)] for contact in contacts]


def contacts_from_json(stored: Sequence[Any]) -> list[Contact]:
    """The contacts of a stored chunk."""
    return [
        Contact(int(line), {str(k): str(v) for k, v in fields.items()}) for line, fields in stored
    ]
