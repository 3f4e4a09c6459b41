"""Simulated Afilnet ``class=group``: groups, their fields (columns) and their contacts.

The twelve methods and their error codes are those of the Afilnet contacts API docs
(docs/PROVIDERS.md, "Afilnet, class=group"). The docs say every method answers with no result; that
table is copied from page to page (it says so for the getters too), so where a result is needed the
sandbox chooses one:

- ``creategroup`` -> ``{"idgroup": "<id>"}``; ``addcontact`` -> ``{"idcontact": "<id>"}``.
- ``getgroupcolumns`` -> the field names in order, ``["mobile", "name"]``.
- ``getcontacts`` -> every contact of the group, in insertion order, each an object keyed by
  the group's fields plus ``idcontact``; a field the contact has no value for is ``""``.
  No paging: the docs document no paging parameter, and a client relying on one would loop
  on a service that ignores it. ``getcontact`` -> one such object.
- the other methods -> no result.

Behaviour the docs leave open, chosen here (assumed, unconfirmed):

- ``type`` and ``countryiso3`` are compared case-insensitively (the docs' example is ``esp``);
  ``countryiso3`` must be an ISO 3166-1 alpha-3 code, else COUNTRY_NOT_FOUND.
- ``contact`` is split on ``,`` into pairs and each pair on its first ``:``; a piece without
  ``:`` is dropped, and so are fields the group does not have (a group's columns are fixed
  until ``addcolumntogroup``). Values are kept exactly, without trimming. This is why the
  client refuses values holding ``,`` or ``:``: the wire format cannot carry them.
- Field names are stripped of surrounding blanks everywhere; values never are.
- The main field (``mobile`` or ``email``, by group type) must have a non-empty value in
  ``addcontact`` (else MISSING_MAIN_FIELD) and be unique within the group (else
  CONTACT_EXISTS, also for ``modifycontact`` moving onto another contact's value).
- ``addcontactlist`` (JSON list of objects) skips entries without a main value or whose main
  value is already in the group, rather than failing the whole list (no CONTACT_EXISTS is
  documented for it); a ``contacts`` value that is not such a list is MISSING_COMPULSORY_PARAM.
- ``addcolumntogroup`` of an existing field and ``deletecolumnfromgroup`` of an absent one
  succeed without change; deleting the main field is MISSING_MAIN_FIELD.
- An unknown ``idcontact`` is NOT_ACCESS_TO_CONTACT for every contact method (the docs list
  it for ``getcontact`` only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from postier.sandbox.afilnet import Handler, require
from postier.sandbox.afilnet.state import AfilnetFault, AfilnetState, Group

#: the main field of each group type (Afilnet contacts API docs, creategroup)
MAIN_FIELDS: dict[str, str] = {"mobile": "mobile", "email": "email"}

#: every officially assigned ISO 3166-1 alpha-3 code (249; user-assigned codes such as XKX are
#: not included). Written out because no installed package carries them: ``holidays`` uses
#: non-ISO aliases for some countries (BAH for Bahrain, BLG for Bulgaria).
_ISO3166_ALPHA3_TEXT = """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE
    BDI BEL BEN BES BFA BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA
    CAF CAN CCK CHE CHL CHN CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE
    DEU DJI DMA DNK DOM DZA
    ECU EGY ERI ESH ESP EST ETH
    FIN FJI FLK FRA FRO FSM
    GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY
    HKG HMD HND HRV HTI HUN
    IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA
    JAM JEY JOR JPN
    KAZ KEN KGZ KHM KIR KNA KOR KWT
    LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA
    MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI
    MYS MYT
    NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL
    OMN
    PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF
    QAT
    REU ROU RUS RWA
    SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM
    SYC SYR
    TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA
    UGA UKR UMI URY USA UZB
    VAT VCT VEN VGB VIR VNM VUT
    WLF WSM
    YEM
    ZAF ZMB ZWE
"""
ISO3166_ALPHA3: frozenset[str] = frozenset(_ISO3166_ALPHA3_TEXT.split())

Params = Mapping[str, str]
ContactView = dict[str, str]


def _group(state: AfilnetState, idgroup: str) -> Group:
    group = state.groups.get(idgroup)
    if group is None:
        raise AfilnetFault("NOT_ACCESS_TO_GROUP")
    return group


def _contact(group: Group, idcontact: str) -> dict[str, str]:
    values = group.contacts.get(idcontact)
    if values is None:
        raise AfilnetFault("NOT_ACCESS_TO_CONTACT")
    return values


def _main_field(group: Group) -> str:
    return MAIN_FIELDS[group.type]


def _view(group: Group, idcontact: str, values: Mapping[str, str]) -> ContactView:
    view = {"idcontact": idcontact}
    view.update({name: values.get(name, "") for name in group.fields})
    return view


def _parse_pairs(contact: str, group: Group) -> dict[str, str]:
    """``mobile:123,name:x`` -> the values of the group's fields (see the module docstring)."""
    values: dict[str, str] = {}
    for piece in contact.split(","):
        name, sep, value = piece.partition(":")
        name = name.strip()
        if sep and name in group.fields:
            values[name] = value
    return values


def _holder_of(group: Group, main_value: str) -> str | None:
    main = _main_field(group)
    for idcontact, values in group.contacts.items():
        if values.get(main) == main_value:
            return idcontact
    return None


def _insert(state: AfilnetState, group: Group, values: dict[str, str]) -> str:
    idcontact = state.core.next_id()
    group.contacts[idcontact] = values
    return idcontact


def creategroup(state: AfilnetState, params: Params) -> dict[str, str]:
    name, type_, fields = require(params, "name", "type", "fields")
    type_ = type_.lower()
    if type_ not in MAIN_FIELDS:
        raise AfilnetFault("INCORRECT_TYPE")
    names = list(dict.fromkeys(n for n in (f.strip() for f in fields.split(",")) if n))
    if MAIN_FIELDS[type_] not in names:
        raise AfilnetFault("MISSING_MAIN_FIELD")
    idgroup = state.core.next_id()
    state.groups[idgroup] = Group(idgroup=idgroup, name=name, type=type_, fields=names)
    return {"idgroup": idgroup}


def getgroupcolumns(state: AfilnetState, params: Params) -> list[str]:
    (idgroup,) = require(params, "idgroup")
    return list(_group(state, idgroup).fields)


def addcolumntogroup(state: AfilnetState, params: Params) -> None:
    idgroup, field = require(params, "idgroup", "field")
    group = _group(state, idgroup)
    field = field.strip()
    if field and field not in group.fields:
        group.fields.append(field)


def deletecolumnfromgroup(state: AfilnetState, params: Params) -> None:
    idgroup, field = require(params, "idgroup", "field")
    group = _group(state, idgroup)
    field = field.strip()
    if field == _main_field(group):
        raise AfilnetFault("MISSING_MAIN_FIELD")
    if field in group.fields:
        group.fields.remove(field)
        for values in group.contacts.values():
            values.pop(field, None)


def deletegroup(state: AfilnetState, params: Params) -> None:
    (idgroup,) = require(params, "idgroup")
    del state.groups[_group(state, idgroup).idgroup]


def assigncountrytogroup(state: AfilnetState, params: Params) -> None:
    idgroup, iso3 = require(params, "idgroup", "countryiso3")
    group = _group(state, idgroup)
    iso3 = iso3.strip().upper()
    if iso3 not in ISO3166_ALPHA3:
        raise AfilnetFault("COUNTRY_NOT_FOUND")
    group.countryiso3 = iso3


def getcontacts(state: AfilnetState, params: Params) -> list[ContactView]:
    (idgroup,) = require(params, "idgroup")
    group = _group(state, idgroup)
    return [_view(group, idcontact, values) for idcontact, values in group.contacts.items()]


def getcontact(state: AfilnetState, params: Params) -> ContactView:
    idgroup, idcontact = require(params, "idgroup", "idcontact")
    group = _group(state, idgroup)
    return _view(group, idcontact, _contact(group, idcontact))


def addcontact(state: AfilnetState, params: Params) -> dict[str, str]:
    idgroup, contact = require(params, "idgroup", "contact")
    group = _group(state, idgroup)
    values = _parse_pairs(contact, group)
    main_value = values.get(_main_field(group), "")
    if main_value == "":
        raise AfilnetFault("MISSING_MAIN_FIELD")
    if _holder_of(group, main_value) is not None:
        raise AfilnetFault("CONTACT_EXISTS")
    return {"idcontact": _insert(state, group, values)}


def addcontactlist(state: AfilnetState, params: Params) -> None:
    idgroup, contacts = require(params, "idgroup", "contacts")
    group = _group(state, idgroup)
    try:
        entries = json.loads(contacts)
    except ValueError as exc:
        raise AfilnetFault("MISSING_COMPULSORY_PARAM") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise AfilnetFault("MISSING_COMPULSORY_PARAM")
    main = _main_field(group)
    for entry in entries:
        values = {
            name.strip(): "" if value is None else str(value)
            for name, value in entry.items()
            if name.strip() in group.fields
        }
        main_value = values.get(main, "")
        if main_value == "" or _holder_of(group, main_value) is not None:
            continue
        _insert(state, group, values)


def modifycontact(state: AfilnetState, params: Params) -> None:
    idgroup, idcontact, contact = require(params, "idgroup", "idcontact", "contact")
    group = _group(state, idgroup)
    values = _contact(group, idcontact)
    changes = _parse_pairs(contact, group)
    main = _main_field(group)
    if main in changes:
        if changes[main] == "":
            raise AfilnetFault("MISSING_MAIN_FIELD")
        if _holder_of(group, changes[main]) not in (None, idcontact):
            raise AfilnetFault("CONTACT_EXISTS")
    values.update(changes)


def deletecontact(state: AfilnetState, params: Params) -> None:
    idgroup, idcontact = require(params, "idgroup", "idcontact")
    group = _group(state, idgroup)
    _contact(group, idcontact)
    del group.contacts[idcontact]


METHODS: dict[str, Handler] = {
    "creategroup": creategroup,
    "getgroupcolumns": getgroupcolumns,
    "addcolumntogroup": addcolumntogroup,
    "deletecolumnfromgroup": deletecolumnfromgroup,
    "deletegroup": deletegroup,
    "assigncountrytogroup": assigncountrytogroup,
    "getcontacts": getcontacts,
    "getcontact": getcontact,
    "addcontact": addcontact,
    "addcontactlist": addcontactlist,
    "modifycontact": modifycontact,
    "deletecontact": deletecontact,
}
