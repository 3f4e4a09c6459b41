"""The Afilnet contacts client against the sandbox over real HTTP.

The wire shapes: docs/PROVIDERS.md, "Afilnet, class=group".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from postier.config import Settings
from postier.providers.afilnet import AfilnetApi, AfilnetGroups, Contact
from postier.providers.afilnet import groups as groups_module
from postier.providers.afilnet.groups import CONTACT_LIST_BATCH
from postier.providers.errors import (
    AmbiguousError,
    ContentRejectedError,
    NotFoundError,
    PermanentError,
)
from postier.rules.errors import RuleViolation
from postier.sandbox import Sandbox
from tests.http_pool import RecordingPool


@pytest.fixture
def api(settings: Settings, http_pool: RecordingPool) -> AfilnetApi:
    return AfilnetApi(settings.afilnet, settings.http, http_pool)


@pytest.fixture
def groups(api: AfilnetApi) -> AfilnetGroups:
    return AfilnetGroups(api)


class Requests:
    """Counts the Afilnet requests the sandbox has seen since it was made."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.start = self.now()

    def now(self) -> int:
        return self.sandbox.core.request_counts.get("afilnet", 0)

    @property
    def made(self) -> int:
        return self.now() - self.start


@pytest.fixture
def requests(sandbox: Sandbox) -> Iterator[Requests]:
    yield Requests(sandbox)


def _group(groups: AfilnetGroups, *fields: str) -> str:
    return groups.create_group("clients", "mobile", fields or ("mobile", "name", "city"))


# --- groups and their fields -------------------------------------------------------------


def test_create_group_returns_the_id_the_columns_come_back_from(
    groups: AfilnetGroups, sandbox: Sandbox
) -> None:
    group_id = groups.create_group("Clients Lyon", "mobile", ["mobile", "name", "address"])
    assert group_id in sandbox.afilnet.state.groups
    assert sandbox.afilnet.state.groups[group_id].name == "Clients Lyon"
    assert groups.get_columns(group_id) == ["mobile", "name", "address"]


def test_create_group_of_type_email(groups: AfilnetGroups, sandbox: Sandbox) -> None:
    group_id = groups.create_group("News", "email", ("name", "email"))
    assert sandbox.afilnet.state.groups[group_id].type == "email"
    assert groups.add_contact(group_id, {"email": "ana@example.org", "name": "Ana"})


def test_add_and_delete_columns(groups: AfilnetGroups) -> None:
    group_id = _group(groups, "mobile", "name")
    groups.add_column(group_id, "city")
    assert groups.get_columns(group_id) == ["mobile", "name", "city"]
    groups.delete_column(group_id, "name")
    assert groups.get_columns(group_id) == ["mobile", "city"]


def test_deleting_the_main_column_is_refused_by_afilnet(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    with pytest.raises(ContentRejectedError) as caught:
        groups.delete_column(group_id, "mobile")
    assert caught.value.code == "MISSING_MAIN_FIELD"


def test_delete_group(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    groups.delete_group(group_id)
    with pytest.raises(NotFoundError) as caught:
        groups.get_columns(group_id)
    assert caught.value.code == "NOT_ACCESS_TO_GROUP"


def test_assign_country_sends_iso3_upper_case(groups: AfilnetGroups, sandbox: Sandbox) -> None:
    group_id = _group(groups)
    groups.assign_country(group_id, "esp")
    assert sandbox.afilnet.state.groups[group_id].countryiso3 == "ESP"


def test_an_unknown_country_is_content_rejected(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    with pytest.raises(ContentRejectedError) as caught:
        groups.assign_country(group_id, "XYZ")
    assert caught.value.code == "COUNTRY_NOT_FOUND"
    assert caught.value.provider == "afilnet"


@pytest.mark.parametrize(
    "call",
    [
        lambda g, gid: g.get_columns(gid),
        lambda g, gid: g.add_column(gid, "x"),
        lambda g, gid: g.delete_column(gid, "x"),
        lambda g, gid: g.delete_group(gid),
        lambda g, gid: g.assign_country(gid, "FRA"),
        lambda g, gid: g.get_contacts(gid),
        lambda g, gid: g.get_contact(gid, "1"),
        lambda g, gid: g.add_contact(gid, {"mobile": "1"}),
        lambda g, gid: g.add_contacts(gid, [{"mobile": "1"}]),
        lambda g, gid: g.modify_contact(gid, "1", {"name": "x"}),
        lambda g, gid: g.delete_contact(gid, "1"),
    ],
)
def test_an_unknown_group_is_not_found(groups: AfilnetGroups, call: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        call(groups, "999999")
    assert caught.value.code == "NOT_ACCESS_TO_GROUP"


# --- contacts ----------------------------------------------------------------------------


def test_add_then_get_contact(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    contact_id = groups.add_contact(group_id, {"mobile": "33612345678", "name": "Ana"})
    assert contact_id is not None
    contact = groups.get_contact(group_id, contact_id)
    assert contact == Contact(
        id=contact_id, fields={"mobile": "33612345678", "name": "Ana", "city": ""}
    )
    assert groups.get_contacts(group_id) == [contact]


def test_contact_fields_cannot_be_changed_in_place(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    contact_id = groups.add_contact(group_id, {"mobile": "1"})
    assert contact_id is not None
    contact = groups.get_contact(group_id, contact_id)
    with pytest.raises(TypeError):
        contact.fields["mobile"] = "2"  # type: ignore[index]


def test_get_contacts_in_the_order_they_were_added(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    assert groups.get_contacts(group_id) == []
    ids = [groups.add_contact(group_id, {"mobile": str(n), "name": f"n{n}"}) for n in range(5)]
    contacts = groups.get_contacts(group_id)
    assert [c.id for c in contacts] == ids
    assert [c.fields["name"] for c in contacts] == [f"n{n}" for n in range(5)]


def test_a_second_contact_with_the_same_main_value_is_refused(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    groups.add_contact(group_id, {"mobile": "33612345678", "name": "Ana"})
    with pytest.raises(PermanentError) as caught:
        groups.add_contact(group_id, {"mobile": "33612345678", "name": "Bob"})
    assert caught.value.code == "CONTACT_EXISTS"
    assert [c.fields["name"] for c in groups.get_contacts(group_id)] == ["Ana"]


def test_a_contact_without_its_main_field_is_content_rejected(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    with pytest.raises(ContentRejectedError) as caught:
        groups.add_contact(group_id, {"name": "Ana"})
    assert caught.value.code == "MISSING_MAIN_FIELD"


def test_an_unknown_contact_is_not_found(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    for call in (
        lambda: groups.get_contact(group_id, "999999"),
        lambda: groups.modify_contact(group_id, "999999", {"name": "x"}),
        lambda: groups.delete_contact(group_id, "999999"),
    ):
        with pytest.raises(NotFoundError) as caught:
            call()
        assert caught.value.code == "NOT_ACCESS_TO_CONTACT"


def test_modify_contact_changes_the_given_fields(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    contact_id = groups.add_contact(group_id, {"mobile": "1", "name": "Ana", "city": "Lyon"})
    assert contact_id is not None
    groups.modify_contact(group_id, contact_id, {"city": "Nice", "name": ""})
    assert groups.get_contact(group_id, contact_id).fields == {
        "mobile": "1",
        "name": "",
        "city": "Nice",
    }


def test_delete_contact(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    gone = groups.add_contact(group_id, {"mobile": "1"})
    kept = groups.add_contact(group_id, {"mobile": "2"})
    assert gone is not None
    groups.delete_contact(group_id, gone)
    assert [c.id for c in groups.get_contacts(group_id)] == [kept]


# --- many contacts at once ---------------------------------------------------------------


def test_add_contacts_carries_commas_and_colons_in_json(groups: AfilnetGroups) -> None:
    group_id = _group(groups)
    sent = groups.add_contacts(
        group_id,
        [
            {"mobile": "34600000000", "name": "Doe, John: CEO"},
            {"mobile": "34600000001", "city": "a:b,c"},
        ],
    )
    assert sent == 2
    assert [dict(c.fields) for c in groups.get_contacts(group_id)] == [
        {"mobile": "34600000000", "name": "Doe, John: CEO", "city": ""},
        {"mobile": "34600000001", "name": "", "city": "a:b,c"},
    ]


def test_add_contacts_splits_large_lists_into_batches(api: AfilnetApi, requests: Requests) -> None:
    groups = AfilnetGroups(api, batch_size=3)
    group_id = _group(groups)
    before = requests.now()
    contacts = [{"mobile": f"3360000000{n}", "name": f"n{n}"} for n in range(7)]
    assert groups.add_contacts(group_id, contacts) == 7
    assert requests.now() - before == 3
    assert [c.fields["mobile"] for c in groups.get_contacts(group_id)] == [
        c["mobile"] for c in contacts
    ]


def test_the_default_batch_is_the_documented_constant(groups: AfilnetGroups) -> None:
    assert groups.batch_size == CONTACT_LIST_BATCH == 500


def test_add_contacts_of_nothing_sends_nothing(groups: AfilnetGroups, requests: Requests) -> None:
    assert groups.add_contacts("1", []) == 0
    assert requests.made == 0


def test_a_failed_batch_says_how_far_it_got_and_a_resend_does_not_duplicate(
    api: AfilnetApi, sandbox: Sandbox
) -> None:
    groups = AfilnetGroups(api, batch_size=3)
    group_id = _group(groups)
    contacts = [{"mobile": f"3360000000{n}"} for n in range(7)]
    sandbox.set_faults("afilnet", script=["ok", "ok", "500"])
    with pytest.raises(AmbiguousError) as caught:
        groups.add_contacts(group_id, contacts)
    assert "6 of 7 contacts were sent in earlier batches" in caught.value.__notes__
    assert len(groups.get_contacts(group_id)) == 6
    assert groups.add_contacts(group_id, contacts) == 7
    assert [c.fields["mobile"] for c in groups.get_contacts(group_id)] == [
        c["mobile"] for c in contacts
    ]


# --- error codes not reachable through the typed methods ---------------------------------


@pytest.mark.parametrize(
    ("params", "code", "error_class"),
    [
        ({"name": "g", "type": "sms", "fields": "mobile"}, "INCORRECT_TYPE", ContentRejectedError),
        (
            {"name": "g", "type": "email", "fields": "mobile"},
            "MISSING_MAIN_FIELD",
            ContentRejectedError,
        ),
        ({"name": "g", "type": "mobile"}, "MISSING_COMPULSORY_PARAM", PermanentError),
    ],
)
def test_afilnet_codes_map_to_typed_errors(
    api: AfilnetApi, params: Mapping[str, str], code: str, error_class: type[Exception]
) -> None:
    """The client refuses these inputs itself; the raw call shows Afilnet's answer is typed."""
    with pytest.raises(error_class) as caught:
        api.call("group", "creategroup", params, changes_state=True)
    assert isinstance(caught.value, PermanentError)
    assert getattr(caught.value, "code", None) == code
    assert not isinstance(caught.value, NotFoundError)


def test_basic_auth_works_for_group_calls(settings: Settings, http_pool: RecordingPool) -> None:
    basic = settings.afilnet.model_copy(update={"auth": "basic"})
    groups = AfilnetGroups(AfilnetApi(basic, settings.http, http_pool))
    group_id = _group(groups)
    assert groups.get_columns(group_id) == ["mobile", "name", "city"]


# --- answers in forms the sandbox does not give (the real ones are undocumented) ----------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"idgroup": "12"}, "12"),
        ({"idgroup": 12}, "12"),
        ("12", "12"),
        (12, "12"),
        (None, None),
        ({}, None),
        (True, None),
        ("", None),
        ([12], None),
    ],
)
def test_ids_are_read_from_an_object_or_bare(result: Any, expected: str | None) -> None:
    assert groups_module._id_in(result, "idgroup") == expected


def test_contacts_with_numbers_and_nulls_become_text() -> None:
    contact = groups_module._contact({"idcontact": 7, "mobile": 33612345678, "name": None})
    assert contact == Contact(id="7", fields={"mobile": "33612345678", "name": ""})


@pytest.mark.parametrize("item", [["7"], {"mobile": "1"}, {"idcontact": None}])
def test_an_unreadable_contact_is_a_permanent_invalid_answer(item: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        groups_module._contact(item)
    assert caught.value.code == "INVALID_ANSWER"


# --- input rules: refused before any request ---------------------------------------------

REFUSED: list[tuple[str, str, Any]] = [
    ("name", "required", lambda g: g.create_group(" ", "mobile", ["mobile"])),
    ("type", "group_type", lambda g: g.create_group("g", "sms", ["mobile"])),
    ("fields", "required", lambda g: g.create_group("g", "mobile", [])),
    ("fields", "required", lambda g: g.create_group("g", "mobile", "mobile")),
    ("fields", "unique", lambda g: g.create_group("g", "mobile", ["mobile", "name", "name"])),
    ("fields", "main_field", lambda g: g.create_group("g", "mobile", ["email", "name"])),
    ("fields", "main_field", lambda g: g.create_group("g", "email", ["mobile", "name"])),
    ("fields[1]", "field_name", lambda g: g.create_group("g", "mobile", ["mobile", "a,b"])),
    ("fields[1]", "field_name", lambda g: g.create_group("g", "mobile", ["mobile", ""])),
    ("fields[0]", "field_name", lambda g: g.create_group("g", "mobile", ["1st", "mobile"])),
    ("fields[1]", "field_name", lambda g: g.create_group("g", "mobile", ["mobile", "idcontact"])),
    ("fields[1]", "field_name", lambda g: g.create_group("g", "mobile", ["mobile", "a" * 65])),
    ("field", "field_name", lambda g: g.add_column("1", "first name")),
    ("field", "field_name", lambda g: g.delete_column("1", "x:y")),
    ("group_id", "required", lambda g: g.get_columns("")),
    ("group_id", "required", lambda g: g.delete_group("  ")),
    ("contact_id", "required", lambda g: g.get_contact("1", "")),
    ("contact_id", "required", lambda g: g.delete_contact("1", "")),
    ("iso3", "iso3166_alpha3", lambda g: g.assign_country("1", "ES")),
    ("iso3", "iso3166_alpha3", lambda g: g.assign_country("1", "ESPA")),
    ("iso3", "iso3166_alpha3", lambda g: g.assign_country("1", "E5P")),
    ("iso3", "iso3166_alpha3", lambda g: g.assign_country("1", "ÉSP")),
    ("fields", "required", lambda g: g.add_contact("1", {})),
    ("fields.name", "pair_format", lambda g: g.add_contact("1", {"mobile": "1", "name": "a,b"})),
    ("fields.name", "pair_format", lambda g: g.add_contact("1", {"mobile": "1", "name": "a:b"})),
    ("fields.mobile", "pair_format", lambda g: g.modify_contact("1", "2", {"mobile": "1,2"})),
    ("fields.first name", "field_name", lambda g: g.add_contact("1", {"first name": "x"})),
    ("fields.idcontact", "field_name", lambda g: g.modify_contact("1", "2", {"idcontact": "3"})),
    ("fields.mobile", "text", lambda g: g.add_contact("1", {"mobile": 33612345678})),
    ("contacts", "required", lambda g: g.add_contacts("1", {"mobile": "1"})),
    ("contacts[1]", "required", lambda g: g.add_contacts("1", [{"mobile": "1"}, {}])),
    ("contacts[0].a-b", "field_name", lambda g: g.add_contacts("1", [{"a-b": "1"}])),
    ("contacts[0].name", "text", lambda g: g.add_contacts("1", [{"mobile": "1", "name": None}])),
]


@pytest.mark.parametrize(("field", "rule", "call"), REFUSED)
def test_bad_input_is_refused_before_any_request(
    groups: AfilnetGroups, requests: Requests, field: str, rule: str, call: Any
) -> None:
    with pytest.raises(RuleViolation) as caught:
        call(groups)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert requests.made == 0


def test_the_refusal_names_the_separator_and_the_way_around_it(
    groups: AfilnetGroups, requests: Requests
) -> None:
    with pytest.raises(RuleViolation, match=r"cannot hold ','.*add_contacts"):
        groups.add_contact("1", {"mobile": "1", "name": "Doe, John"})
    with pytest.raises(RuleViolation, match="':'"):
        groups.modify_contact("1", "2", {"name": "10:30"})
    assert requests.made == 0


def test_a_bad_contact_late_in_a_list_stops_the_whole_list(
    api: AfilnetApi, requests: Requests
) -> None:
    groups = AfilnetGroups(api, batch_size=2)
    contacts: list[dict[str, Any]] = [{"mobile": str(n)} for n in range(5)]
    contacts.append({"mobile": "9", "bad name": "x"})
    with pytest.raises(RuleViolation):
        groups.add_contacts("1", contacts)
    assert requests.made == 0


def test_batch_size_must_be_positive(api: AfilnetApi) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        AfilnetGroups(api, batch_size=0)


# --- any value: exact round trip, or refused before sending ------------------------------

_VALUE = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]), st.sampled_from(",:;= \t\r\n%&+\"'\\")
    ),
    max_size=20,
)


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    mobile=_VALUE.filter(bool),
    name=_VALUE,
    city=_VALUE,
)
def test_any_contact_value_round_trips_or_is_refused_before_sending(
    groups: AfilnetGroups, sandbox: Sandbox, mobile: str, name: str, city: str
) -> None:
    group_id = _group(groups)
    fields = {"mobile": mobile, "name": name, "city": city}
    before = sandbox.core.request_counts.get("afilnet", 0)
    try:
        contact_id = groups.add_contact(group_id, fields)
    except RuleViolation as refused:
        event("refused before sending")
        assert refused.rule == "pair_format"
        assert any(sep in value for value in fields.values() for sep in ",:")
        assert sandbox.core.request_counts.get("afilnet", 0) == before
        assert groups.get_contacts(group_id) == []
        return
    event("round trip")
    assert not any(sep in value for value in fields.values() for sep in ",:")
    assert contact_id is not None
    assert groups.get_contact(group_id, contact_id) == Contact(id=contact_id, fields=fields)


# --- reads are safe to repeat, mutations are not -----------------------------------------

READS: list[Any] = [
    lambda g, gid, cid: g.get_columns(gid),
    lambda g, gid, cid: g.get_contacts(gid),
    lambda g, gid, cid: g.get_contact(gid, cid),
]
MUTATIONS: list[Any] = [
    lambda g, gid, cid: g.create_group("g", "mobile", ["mobile"]),
    lambda g, gid, cid: g.add_column(gid, "x"),
    lambda g, gid, cid: g.delete_column(gid, "city"),
    lambda g, gid, cid: g.delete_group(gid),
    lambda g, gid, cid: g.assign_country(gid, "FRA"),
    lambda g, gid, cid: g.add_contact(gid, {"mobile": "2"}),
    lambda g, gid, cid: g.add_contacts(gid, [{"mobile": "2"}]),
    lambda g, gid, cid: g.modify_contact(gid, cid, {"name": "x"}),
    lambda g, gid, cid: g.delete_contact(gid, cid),
]


@pytest.mark.parametrize("call", READS)
def test_a_read_that_met_a_server_error_is_retried(
    groups: AfilnetGroups, sandbox: Sandbox, requests: Requests, call: Any
) -> None:
    group_id = _group(groups)
    contact_id = groups.add_contact(group_id, {"mobile": "1"})
    sandbox.set_faults("afilnet", script=["500"])
    before = requests.now()
    call(groups, group_id, contact_id)
    assert requests.now() - before == 2


@pytest.mark.parametrize("call", MUTATIONS)
def test_a_mutation_that_met_a_server_error_is_ambiguous(
    groups: AfilnetGroups, sandbox: Sandbox, requests: Requests, call: Any
) -> None:
    group_id = _group(groups)
    contact_id = groups.add_contact(group_id, {"mobile": "1"})
    sandbox.set_faults("afilnet", script=["500"])
    before = requests.now()
    with pytest.raises(AmbiguousError):
        call(groups, group_id, contact_id)
    assert requests.now() - before == 1
