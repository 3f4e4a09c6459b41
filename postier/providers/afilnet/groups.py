"""Afilnet contacts API (``class=group``): groups, their fields, and their contacts.

The twelve methods of Afilnet's contacts API (docs/PROVIDERS.md, "Afilnet, class=group"), each one
POST through ``AfilnetApi``; error codes become the typed errors of ``ERROR_CLASSES`` in ``api.py``
(NOT_ACCESS_TO_GROUP/NOT_ACCESS_TO_CONTACT -> ``NotFoundError``, INCORRECT_TYPE,
MISSING_MAIN_FIELD, COUNTRY_NOT_FOUND -> ``ContentRejectedError``, CONTACT_EXISTS and
MISSING_COMPULSORY_PARAM -> ``PermanentError``).

Input is checked before any request and refused with ``RuleViolation``:

- ``addcontact``/``modifycontact`` carry a contact as ``field:value`` pairs joined by commas
  (``mobile:123456789,name:testname``, the docs' example). That form has no escape, so a value
  holding ``,`` or ``:`` would reach Afilnet as a different contact; such values are refused
  (docs/PROVIDERS.md). ``add_contacts`` sends JSON (``addcontactlist``) and has no such limit.
- Field names must be simple identifiers (``[A-Za-z_][A-Za-z0-9_]*``, at most 64 characters,
  not ``idcontact``, which names the contact id in answers): a name with a comma would split
  the ``fields`` list of ``creategroup`` (an assumption: Afilnet documents no name rule).
- A group's type is ``mobile`` or ``email`` and its fields must hold that main field.
- A country is three ASCII letters (ISO 3166-1 alpha-3); whether Afilnet knows it is its
  call (COUNTRY_NOT_FOUND).

The docs document no result for any method; the answers read here are the sandbox's
(``postier/sandbox/afilnet/groups.py``): ``{"idgroup": …}`` from ``creategroup``,
``{"idcontact": …}`` from ``addcontact``, a list of field names from ``getgroupcolumns``, and
contacts as objects keyed by field plus ``idcontact``. A bare id is accepted as well.
``getcontacts`` documents no paging, so ``get_contacts`` makes one call and returns every
contact. Fields a group does not have are dropped by the service (sandbox behaviour,
unconfirmed); compare with ``get_columns`` when that matters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from postier.providers.afilnet.api import NAME, AfilnetApi
from postier.providers.errors import PermanentError, ProviderError
from postier.rules.errors import RuleViolation

GroupType = Literal["mobile", "email"]

#: the field every group of a type must have (Afilnet contacts API docs, creategroup)
MAIN_FIELDS: Mapping[str, str] = MappingProxyType({"mobile": "mobile", "email": "email"})

#: contacts per ``addcontactlist`` call. The docs put no limit on a POST's size; 500 keeps
#: one request well under a second and a failed batch cheap to resend (our choice).
CONTACT_LIST_BATCH = 500

#: the name answers use for a contact's id, so no field may take it
CONTACT_ID_KEY = "idcontact"

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: characters the ``field:value,field:value`` form cannot carry inside a value (docs/PROVIDERS.md)
_PAIR_SEPARATORS = (",", ":")

_CLASS = "group"


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact of a group: Afilnet's ``idcontact`` and its values keyed by field name."""

    id: str
    fields: Mapping[str, str]


class AfilnetGroups:
    """Typed calls to Afilnet's contacts API; mutations are sent with ``changes_state=True``."""

    def __init__(self, api: AfilnetApi, *, batch_size: int = CONTACT_LIST_BATCH) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.api = api
        self.batch_size = batch_size

    def _call(self, method: str, params: Mapping[str, str], *, changes_state: bool) -> Any:
        return self.api.call(_CLASS, method, params, changes_state=changes_state)

    def create_group(self, name: str, type: GroupType, fields: Sequence[str]) -> str:
        """Create a group with these fields (columns); return its ``idgroup``."""
        if not isinstance(name, str) or not name.strip():
            raise RuleViolation("name", "required", "a group needs a non-empty name")
        if type not in MAIN_FIELDS:
            raise RuleViolation("type", "group_type", f"type must be mobile or email, not {type!r}")
        if isinstance(fields, str) or not fields:
            raise RuleViolation("fields", "required", "fields must be a non-empty list of names")
        names = [_field_name(f"fields[{i}]", f) for i, f in enumerate(fields)]
        if len(set(names)) != len(names):
            raise RuleViolation("fields", "unique", "each field may appear only once")
        main = MAIN_FIELDS[type]
        if main not in names:
            raise RuleViolation(
                "fields", "main_field", f"a {type} group must have a {main!r} field"
            )
        result = self._call(
            "creategroup",
            {"name": name, "type": type, "fields": ",".join(names)},
            changes_state=True,
        )
        group_id = _id_in(result, "idgroup")
        if group_id is None:
            raise _invalid("creategroup answered without an idgroup", result)
        return group_id

    def get_columns(self, group_id: str) -> list[str]:
        """The group's field names, in Afilnet's order."""
        result = self._call(
            "getgroupcolumns", {"idgroup": _id("group_id", group_id)}, changes_state=False
        )
        if isinstance(result, str):
            return [name for name in result.split(",") if name]
        if not isinstance(result, list):
            raise _invalid("getgroupcolumns answered without a list", result)
        return [str(name) for name in result]

    def add_column(self, group_id: str, field: str) -> None:
        """Add a field to the group."""
        self._call(
            "addcolumntogroup",
            {"idgroup": _id("group_id", group_id), "field": _field_name("field", field)},
            changes_state=True,
        )

    def delete_column(self, group_id: str, field: str) -> None:
        """Remove a field, and its values, from the group."""
        self._call(
            "deletecolumnfromgroup",
            {"idgroup": _id("group_id", group_id), "field": _field_name("field", field)},
            changes_state=True,
        )

    def delete_group(self, group_id: str) -> None:
        """Delete the group and its contacts."""
        self._call("deletegroup", {"idgroup": _id("group_id", group_id)}, changes_state=True)

    def assign_country(self, group_id: str, iso3: str) -> None:
        """Set the group's country (ISO 3166-1 alpha-3, any case; sent upper-case)."""
        if not isinstance(iso3, str) or not (len(iso3) == 3 and iso3.isascii() and iso3.isalpha()):
            raise RuleViolation("iso3", "iso3166_alpha3", f"{iso3!r} is not three letters")
        self._call(
            "assigncountrytogroup",
            {"idgroup": _id("group_id", group_id), "countryiso3": iso3.upper()},
            changes_state=True,
        )

    def get_contacts(self, group_id: str) -> list[Contact]:
        """Every contact of the group, in one call (no paging is documented)."""
        result = self._call(
            "getcontacts", {"idgroup": _id("group_id", group_id)}, changes_state=False
        )
        if result is None:
            return []
        if not isinstance(result, list):
            raise _invalid("getcontacts answered without a list", result)
        return [_contact(item) for item in result]

    def get_contact(self, group_id: str, contact_id: str) -> Contact:
        """One contact of the group."""
        result = self._call(
            "getcontact",
            {"idgroup": _id("group_id", group_id), "idcontact": _id("contact_id", contact_id)},
            changes_state=False,
        )
        return _contact(result)

    def add_contact(self, group_id: str, fields: Mapping[str, str]) -> str | None:
        """Add one contact; return its ``idcontact`` when the answer carries one.

        Afilnet refuses a second contact with the same main-field value (CONTACT_EXISTS).
        """
        contact = _pairs(fields)
        result = self._call(
            "addcontact",
            {"idgroup": _id("group_id", group_id), "contact": contact},
            changes_state=True,
        )
        return _id_in(result, CONTACT_ID_KEY)

    def add_contacts(self, group_id: str, contacts: Sequence[Mapping[str, str]]) -> int:
        """Add many contacts with ``addcontactlist``, ``batch_size`` per call; return how many
        were sent.

        Every contact is checked before the first call. Afilnet reports nothing per contact;
        the sandbox skips contacts whose main value is already in the group, so sending the
        same list again after a failure part-way does not duplicate anyone (unconfirmed for
        Afilnet). A failing call's error carries a note of how many contacts went before it.
        """
        idgroup = _id("group_id", group_id)
        if isinstance(contacts, Mapping | str):
            raise RuleViolation("contacts", "required", "contacts must be a list of mappings")
        entries = [_checked_fields(f"contacts[{i}]", c) for i, c in enumerate(contacts)]
        sent = 0
        for start in range(0, len(entries), self.batch_size):
            batch = entries[start : start + self.batch_size]
            payload = json.dumps(batch, ensure_ascii=False, separators=(",", ":"))
            try:
                self._call(
                    "addcontactlist", {"idgroup": idgroup, "contacts": payload}, changes_state=True
                )
            except ProviderError as exc:
                exc.add_note(f"{sent} of {len(entries)} contacts were sent in earlier batches")
                raise
            sent += len(batch)
        return sent

    def modify_contact(self, group_id: str, contact_id: str, fields: Mapping[str, str]) -> None:
        """Change the given fields of a contact; the others keep their values."""
        contact = _pairs(fields)
        self._call(
            "modifycontact",
            {
                "idgroup": _id("group_id", group_id),
                "idcontact": _id("contact_id", contact_id),
                "contact": contact,
            },
            changes_state=True,
        )

    def delete_contact(self, group_id: str, contact_id: str) -> None:
        """Remove a contact from the group."""
        self._call(
            "deletecontact",
            {"idgroup": _id("group_id", group_id), "idcontact": _id("contact_id", contact_id)},
            changes_state=True,
        )


def _id(label: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation(label, "required", f"{label} must be a non-empty id")
    return value.strip()


def _field_name(label: str, name: object) -> str:
    if not isinstance(name, str) or _FIELD_NAME.fullmatch(name) is None:
        raise RuleViolation(
            label,
            "field_name",
            f"{name!r} is not a field name (letters, digits, _; not starting with a digit; ≤ 64)",
        )
    if name == CONTACT_ID_KEY:
        raise RuleViolation(label, "field_name", f"{CONTACT_ID_KEY!r} names the contact id")
    return name


def _checked_fields(label: str, fields: object) -> dict[str, str]:
    if not isinstance(fields, Mapping) or not fields:
        raise RuleViolation(label, "required", "a contact needs at least one field")
    checked: dict[str, str] = {}
    for name, value in fields.items():
        key = _field_name(f"{label}.{name}", name)
        if not isinstance(value, str):
            raise RuleViolation(f"{label}.{key}", "text", "field values must be strings")
        checked[key] = value
    return checked


def _pairs(fields: Mapping[str, str]) -> str:
    """``{"mobile": "1", "name": "x"}`` -> ``mobile:1,name:x``, refusing what it cannot carry."""
    checked = _checked_fields("fields", fields)
    for name, value in checked.items():
        bad = [sep for sep in _PAIR_SEPARATORS if sep in value]
        if bad:
            raise RuleViolation(
                f"fields.{name}",
                "pair_format",
                f"a value cannot hold {' or '.join(repr(b) for b in bad)}: Afilnet's "
                "field:value,field:value contact format has no escape for them "
                "(use add_contacts, which sends JSON, to add such a contact)",
            )
    return ",".join(f"{name}:{value}" for name, value in checked.items())


def _id_in(result: Any, key: str) -> str | None:
    """An id from ``{key: id}`` or a bare id; None when the answer has none."""
    if isinstance(result, Mapping):
        result = result.get(key)
    if isinstance(result, bool) or result is None or result == "":
        return None
    if isinstance(result, str | int):
        return str(result)
    return None


def _contact(item: Any) -> Contact:
    if not isinstance(item, Mapping):
        raise _invalid("a contact is not an object", item)
    contact_id = _id_in(item, CONTACT_ID_KEY)
    if contact_id is None:
        raise _invalid("a contact has no idcontact", item)
    fields = {
        str(name): "" if value is None else str(value)
        for name, value in item.items()
        if name != CONTACT_ID_KEY
    }
    return Contact(id=contact_id, fields=MappingProxyType(fields))


def _invalid(message: str, result: Any) -> PermanentError:
    """An answer this module cannot read: permanent, as ``api.py`` treats a non-JSON answer."""
    return PermanentError(message, provider=NAME, code="INVALID_ANSWER", raw={"result": result})
