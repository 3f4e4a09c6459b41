"""Reading audiences: CSV (delimiters, mapping, line numbers, bad rows), lists, Afilnet groups."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from postier.campaigns.audience import (
    Contact,
    Rejection,
    afilnet_number,
    check_columns,
    csv_header,
    decode_list,
    encode_list,
    group_audience,
    parse_csv,
    parse_list,
    slices,
)
from postier.config import Settings
from postier.providers.afilnet.api import AfilnetApi
from postier.providers.afilnet.groups import AfilnetGroups
from postier.providers.errors import NotFoundError
from postier.rules.errors import RuleViolation
from tests.http_pool import RecordingPool


def test_semicolon_csv_with_bom_mapping_and_line_numbers() -> None:
    text = (
        "\ufeffTéléphone;Prénom;Ville\n"
        "06 12 34 56 78;Jeanne;Paris\n"
        "\n"
        '0612345679;"Jean\nPierre";Lyon\n'
        "0612345680;Zoé;Nice\n"
    )
    audience = parse_csv(text, {"mobile": "Téléphone", "prenom": "Prénom"})
    assert audience.rejections == []
    assert [c.line for c in audience.contacts] == [2, 4, 6]
    assert audience.contacts[0].fields == {
        "mobile": "06 12 34 56 78",
        "prenom": "Jeanne",
        "Ville": "Paris",
    }
    assert audience.contacts[1].fields["prenom"] == "Jean\nPierre"


def test_rows_with_the_wrong_number_of_values_are_reported_by_line() -> None:
    text = "mobile,name\n0612345678,Ana\n0612345679\n0612345680,Bo,extra\n0612345681,Cy\n"
    audience = parse_csv(text)
    assert [c.line for c in audience.contacts] == [2, 5]
    assert audience.rejections == [
        Rejection(3, "csv", "csv.shape", "1 values for 2 columns"),
        Rejection(4, "csv", "csv.shape", "3 values for 2 columns"),
    ]
    assert str(audience.rejections[0]) == "line 3: csv: 1 values for 2 columns (rule: csv.shape)"


def test_header_and_mapping_refusals_name_the_field_and_rule() -> None:
    with pytest.raises(RuleViolation) as caught:
        csv_header("")
    assert (caught.value.field, caught.value.rule) == ("csv", "csv.header")
    with pytest.raises(RuleViolation) as caught:
        csv_header("mobile,nom,nom\n")
    assert caught.value.rule == "csv.header_duplicate" and "nom" in caught.value.message
    with pytest.raises(RuleViolation) as caught:
        check_columns(["tel", "nom"], {"mobile": "Phone"})
    assert (caught.value.field, caught.value.rule) == ("csv_columns", "csv.column_missing")
    assert "'Phone'" in caught.value.message and "tel, nom" in caught.value.message
    with pytest.raises(RuleViolation) as caught:
        check_columns(["tel", "nom"], {})
    assert caught.value.rule == "csv.phone_column"
    check_columns(["tel", "nom"], {"mobile": "tel"})
    check_columns(["numero"], {}, phone_field="numero")


def test_lists_of_numbers_and_of_field_mappings() -> None:
    entries: list[str | dict[str, str]] = [
        "0612345678",
        {"mobile": "+33612345679", "prenom": "Léa"},
    ]
    stored = encode_list(entries)
    assert decode_list(stored) == entries
    audience = parse_list(decode_list(stored))
    assert audience.contacts == [
        Contact(1, {"mobile": "0612345678"}),
        Contact(2, {"mobile": "+33612345679", "prenom": "Léa"}),
    ]
    with pytest.raises(RuleViolation) as caught:
        encode_list(["0612345678", 612345678])  # type: ignore[list-item]
    assert (caught.value.field, caught.value.rule) == ("recipients[1]", "recipients.entry")
    with pytest.raises(RuleViolation):
        encode_list("0612345678")


def test_slices_cover_every_contact_once() -> None:
    contacts = [Contact(i, {}) for i in range(7)]
    assert list(slices(contacts, 3)) == [(0, 3), (3, 6), (6, 7)]
    assert list(slices([], 3)) == []


def test_afilnet_numbers_get_their_plus_back() -> None:
    assert afilnet_number("33612345678") == "+33612345678"
    assert afilnet_number(" 0612345678 ") == "0612345678"
    assert afilnet_number("+33612345678") == "+33612345678"


@pytest.fixture
def groups(settings: Settings, http_pool: RecordingPool) -> AfilnetGroups:
    return AfilnetGroups(AfilnetApi(settings.afilnet, settings.http, http_pool))


def test_a_group_is_read_with_getcontacts(groups: AfilnetGroups) -> None:
    group = groups.create_group("clients", "mobile", ["mobile", "name"])
    groups.add_contacts(group, [{"mobile": "33612345678", "name": "Ana"}, {"mobile": "0612345679"}])
    audience = group_audience(groups, group, used=["name"])
    assert [c.fields for c in audience.contacts] == [
        {"mobile": "+33612345678", "name": "Ana"},
        {"mobile": "0612345679", "name": ""},
    ]
    assert [c.line for c in audience.contacts] == [1, 2]
    with pytest.raises(RuleViolation) as caught:
        group_audience(groups, group, used=["prenom"])
    assert caught.value.rule == "placeholder.unknown_column"
    emails = groups.create_group("newsletter", "email", ["email"])
    with pytest.raises(RuleViolation) as caught:
        group_audience(groups, emails)
    assert caught.value.rule == "group.phone_column"
    with pytest.raises(NotFoundError):
        group_audience(groups, "999999")


# -- properties --------------------------------------------------------------------------

cell = st.text(
    alphabet=st.characters(
        blacklist_categories=["Cs", "Cc"], blacklist_characters="\ufeff", whitelist_characters="\n"
    ),
    max_size=8,
).filter(lambda v: v == v.strip())


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([",", ";"]),
    st.lists(st.tuples(st.booleans(), st.lists(cell, min_size=3, max_size=3)), max_size=25),
)
def test_csv_rows_come_back_with_their_lines_and_bad_rows_are_reported(
    delimiter: str, rows: list[tuple[bool, list[str]]]
) -> None:
    """Written by the csv module (quotes, delimiters and newlines inside values included)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["mobile", "prenom", "ville"])
    expected_good: list[tuple[int, list[str]]] = []
    expected_bad: list[int] = []
    line = 2
    for good, values in rows:
        written = values if good else [*values, "extra"]
        if not any(v.strip() for v in written):
            written = [*written[:-1], "x"]  # a blank row is skipped, not a contact
        writer.writerow(written)
        if good:
            expected_good.append((line, written))
        else:
            expected_bad.append(line)
        line += 1 + sum(v.count("\n") for v in written)
    audience = parse_csv(buffer.getvalue())
    got = [
        (c.line, [c.fields["mobile"], c.fields["prenom"], c.fields["ville"]])
        for c in audience.contacts
    ]
    assert got == expected_good
    assert [r.line for r in audience.rejections] == expected_bad
    assert {r.rule for r in audience.rejections} <= {"csv.shape"}
