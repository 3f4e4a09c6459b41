"""Filling an Afilnet group from a CSV: checked line by line, sent with ``addcontactlist``.

The CSV is read like a campaign's (``audience.parse_csv``: delimiter, column mapping, line
numbers). Each contact's number is checked and written as Afilnet keeps it — international
digits without ``+`` (Afilnet contacts API docs' example: ``"mobile":"34600000000"``) — and only the
group's own columns are sent (Afilnet drops the others; the report names them). Refused lines are
reported and the rest is added, ``CONTACT_LIST_BATCH`` contacts per call
(``providers/afilnet/groups.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from postier.campaigns.audience import Rejection, parse_csv
from postier.providers.afilnet.groups import MAIN_FIELDS, AfilnetGroups
from postier.rules.errors import RuleViolation
from postier.rules.phones import normalize_number, to_international_digits


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What a CSV import sent, what it refused by line, and the columns the group lacks."""

    sent: int
    rejections: list[Rejection] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def import_csv(
    groups: AfilnetGroups,
    group_id: str,
    text: str,
    columns: Mapping[str, str] | None = None,
    *,
    region: str = "FR",
) -> ImportReport:
    """Add the CSV's contacts to a mobile group; refused lines are reported, the rest sent."""
    group_columns = groups.get_columns(group_id)
    main = MAIN_FIELDS["mobile"]
    if main not in group_columns:
        raise RuleViolation(
            "group", "group.phone_column", f"group {group_id} has no {main!r} column"
        )
    audience = parse_csv(text, columns, phone_field=main)
    rejections = list(audience.rejections)
    known = set(group_columns)
    ignored: set[str] = set()
    entries: list[dict[str, str]] = []
    for contact in audience.contacts:
        try:
            number = normalize_number(contact.fields.get(main, ""), region=region, field=main)
        except RuleViolation as exc:
            rejections.append(Rejection.of(contact.line, exc))
            continue
        entry = {name: value for name, value in contact.fields.items() if name in known}
        ignored.update(name for name in contact.fields if name not in known)
        entry[main] = to_international_digits(number)
        entries.append(entry)
    sent = groups.add_contacts(group_id, entries) if entries else 0
    return ImportReport(
        sent=sent,
        rejections=sorted(rejections, key=lambda r: r.line),
        ignored_columns=sorted(ignored),
    )
