"""Filling an Afilnet group from a CSV (addcontactlist), line by line."""

from __future__ import annotations

import pytest

from postier.campaigns.contacts import import_csv
from postier.config import Settings
from postier.providers.afilnet.api import AfilnetApi
from postier.providers.afilnet.groups import AfilnetGroups
from postier.rules.errors import RuleViolation
from tests.http_pool import RecordingPool


@pytest.fixture
def groups(settings: Settings, http_pool: RecordingPool) -> AfilnetGroups:
    return AfilnetGroups(AfilnetApi(settings.afilnet, settings.http, http_pool), batch_size=2)


def test_a_csv_is_imported_with_bad_lines_reported(groups: AfilnetGroups) -> None:
    group = groups.create_group("clients", "mobile", ["mobile", "name"])
    csv = (
        "Tel;Nom;Age\n"
        "06 12 34 56 01;Ana;31\n"
        "06;Bo;40\n"  # line 3: not a number
        "+33612345603;Cy;22\n"
        "0612345604;Di\n"  # line 5: a value missing
        "0612345605;Ed;50\n"
    )
    report = import_csv(groups, group, csv, {"mobile": "Tel", "name": "Nom"})
    assert report.sent == 3  # in two addcontactlist calls of at most 2
    assert [(r.line, r.field, r.rule) for r in report.rejections] == [
        (3, "mobile", "e164.impossible"),
        (5, "csv", "csv.shape"),
    ]
    assert report.ignored_columns == ["Age"]
    stored = sorted((c.fields["mobile"], c.fields["name"]) for c in groups.get_contacts(group))
    assert stored == [("33612345601", "Ana"), ("33612345603", "Cy"), ("33612345605", "Ed")]


def test_an_email_group_cannot_take_phone_contacts(groups: AfilnetGroups) -> None:
    group = groups.create_group("newsletter", "email", ["email"])
    with pytest.raises(RuleViolation) as caught:
        import_csv(groups, group, "mobile\n0612345678\n")
    assert caught.value.rule == "group.phone_column"
