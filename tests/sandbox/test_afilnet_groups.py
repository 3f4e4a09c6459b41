"""The simulated Afilnet ``class=group`` over raw HTTP form POSTs: the wire shapes.

See docs/PROVIDERS.md, "Afilnet, class=group".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.afilnet.groups import ISO3166_ALPHA3, METHODS


class Wire:
    """Posts ``class=group`` calls as the real clients do and returns the decoded JSON body."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.url = f"{base_url.rstrip('/')}/api/http/"

    def __call__(self, method: str, **params: str) -> dict[str, Any]:
        data = {
            "class": "group",
            "method": method,
            "user": SANDBOX_ACCOUNTS.afilnet_user,
            "password": SANDBOX_ACCOUNTS.afilnet_password,
            **params,
        }
        response = self.client.post(self.url, data=data)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def ok(self, method: str, **params: str) -> Any:
        body = self(method, **params)
        assert body["status"] == "success", body
        return body.get("result")

    def error(self, method: str, **params: str) -> str:
        body = self(method, **params)
        assert body["status"] == "error", body
        code: str = body["error"]
        return code

    def group(self, fields: str = "mobile,name,city", type: str = "mobile") -> str:
        result = self.ok("creategroup", name="clients", type=type, fields=fields)
        idgroup: str = result["idgroup"]
        return idgroup


@pytest.fixture
def wire(sandbox: Sandbox, sandbox_server: SandboxServer) -> Any:
    with httpx.Client(timeout=5.0) as client:
        yield Wire(client, sandbox_server.url)


def test_the_twelve_documented_methods_are_served() -> None:
    assert set(METHODS) == {
        "creategroup",
        "getgroupcolumns",
        "addcolumntogroup",
        "deletecolumnfromgroup",
        "deletegroup",
        "assigncountrytogroup",
        "getcontacts",
        "getcontact",
        "addcontact",
        "addcontactlist",
        "modifycontact",
        "deletecontact",
    }


def test_creategroup_answers_the_new_idgroup_and_keeps_the_fields_in_order(
    wire: Wire, sandbox: Sandbox
) -> None:
    body = wire("creategroup", name="test name", type="mobile", fields="mobile,name,address")
    assert body["status"] == "success"
    assert set(body["result"]) == {"idgroup"}
    idgroup = body["result"]["idgroup"]
    assert isinstance(idgroup, str) and idgroup
    assert wire.ok("getgroupcolumns", idgroup=idgroup) == ["mobile", "name", "address"]
    stored = sandbox.afilnet.state.groups[idgroup]
    assert (stored.name, stored.type) == ("test name", "mobile")


def test_creategroup_gives_each_group_its_own_id(wire: Wire) -> None:
    assert wire.group() != wire.group()


def test_creategroup_type_is_case_insensitive_and_field_names_are_stripped(wire: Wire) -> None:
    idgroup = wire.group(fields=" email , name,,name", type="EMAIL")
    assert wire.ok("getgroupcolumns", idgroup=idgroup) == ["email", "name"]


def test_creategroup_refuses_an_unknown_type(wire: Wire) -> None:
    assert wire.error("creategroup", name="g", type="sms", fields="mobile") == "INCORRECT_TYPE"


@pytest.mark.parametrize(
    ("type_", "fields"),
    [("mobile", "name,email"), ("email", "mobile,name"), ("mobile", "Mobile")],
)
def test_creategroup_requires_the_main_field_of_its_type(
    wire: Wire, type_: str, fields: str
) -> None:
    assert wire.error("creategroup", name="g", type=type_, fields=fields) == "MISSING_MAIN_FIELD"


#: every method with its compulsory parameters (Afilnet contacts API docs) and valid values for them
COMPULSORY: dict[str, dict[str, str]] = {
    "creategroup": {"name": "g", "type": "mobile", "fields": "mobile"},
    "getgroupcolumns": {"idgroup": "{g}"},
    "addcolumntogroup": {"idgroup": "{g}", "field": "extra"},
    "deletecolumnfromgroup": {"idgroup": "{g}", "field": "name"},
    "deletegroup": {"idgroup": "{g}"},
    "assigncountrytogroup": {"idgroup": "{g}", "countryiso3": "FRA"},
    "getcontacts": {"idgroup": "{g}"},
    "getcontact": {"idgroup": "{g}", "idcontact": "{c}"},
    "addcontact": {"idgroup": "{g}", "contact": "mobile:33600000009"},
    "addcontactlist": {"idgroup": "{g}", "contacts": '[{"mobile": "33600000009"}]'},
    "modifycontact": {"idgroup": "{g}", "idcontact": "{c}", "contact": "name:x"},
    "deletecontact": {"idgroup": "{g}", "idcontact": "{c}"},
}


def _fill(params: dict[str, str], idgroup: str, idcontact: str) -> dict[str, str]:
    return {k: v.replace("{g}", idgroup).replace("{c}", idcontact) for k, v in params.items()}


@pytest.mark.parametrize(
    ("method", "missing"),
    [(method, name) for method, params in COMPULSORY.items() for name in params],
)
def test_a_missing_or_empty_compulsory_param_is_refused(
    wire: Wire, method: str, missing: str
) -> None:
    idgroup = wire.group()
    idcontact = wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001")["idcontact"]
    params = _fill(COMPULSORY[method], idgroup, idcontact)
    without = {k: v for k, v in params.items() if k != missing}
    assert wire.error(method, **without) == "MISSING_COMPULSORY_PARAM"
    assert wire.error(method, **{**params, missing: ""}) == "MISSING_COMPULSORY_PARAM"
    assert wire.ok("getgroupcolumns", idgroup=idgroup) == ["mobile", "name", "city"]
    assert len(wire.ok("getcontacts", idgroup=idgroup)) == 1


@pytest.mark.parametrize("method", [m for m in COMPULSORY if m != "creategroup"])
def test_an_unknown_group_is_not_access_to_group(wire: Wire, method: str) -> None:
    idgroup = wire.group()
    idcontact = wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001")["idcontact"]
    params = _fill(COMPULSORY[method], "999999", idcontact)
    assert wire.error(method, **params) == "NOT_ACCESS_TO_GROUP"


@pytest.mark.parametrize("method", ["getcontact", "modifycontact", "deletecontact"])
def test_an_unknown_contact_is_not_access_to_contact(wire: Wire, method: str) -> None:
    idgroup = wire.group()
    other = wire.group()
    idcontact = wire.ok("addcontact", idgroup=other, contact="mobile:33600000001")["idcontact"]
    for contact_id in ("999999", idcontact):  # unknown, and another group's contact
        params = _fill(COMPULSORY[method], idgroup, contact_id)
        assert wire.error(method, **params) == "NOT_ACCESS_TO_CONTACT"


def test_mutations_answer_success_without_a_result(wire: Wire) -> None:
    idgroup = wire.group()
    idcontact = wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001")["idcontact"]
    for method in (
        "addcolumntogroup",
        "deletecolumnfromgroup",
        "assigncountrytogroup",
        "addcontactlist",
        "modifycontact",
        "deletecontact",
        "deletegroup",
    ):
        body = wire(method, **_fill(COMPULSORY[method], idgroup, idcontact))
        assert body == {"status": "success"}, method


def test_addcolumntogroup_appends_a_field_that_existing_contacts_have_empty(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001,name:Ana")
    wire.ok("addcolumntogroup", idgroup=idgroup, field="city")
    wire.ok("addcolumntogroup", idgroup=idgroup, field="city")
    assert wire.ok("getgroupcolumns", idgroup=idgroup) == ["mobile", "name", "city"]
    [contact] = wire.ok("getcontacts", idgroup=idgroup)
    assert contact["city"] == ""


def test_deletecolumnfromgroup_drops_the_field_and_its_values(wire: Wire) -> None:
    idgroup = wire.group("mobile,name,city")
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001,name:Ana,city:Lyon")
    wire.ok("deletecolumnfromgroup", idgroup=idgroup, field="city")
    wire.ok("deletecolumnfromgroup", idgroup=idgroup, field="absent")
    assert wire.ok("getgroupcolumns", idgroup=idgroup) == ["mobile", "name"]
    [contact] = wire.ok("getcontacts", idgroup=idgroup)
    assert set(contact) == {"idcontact", "mobile", "name"}
    wire.ok("addcolumntogroup", idgroup=idgroup, field="city")
    [contact] = wire.ok("getcontacts", idgroup=idgroup)
    assert contact["city"] == ""


def test_deletecolumnfromgroup_keeps_the_main_field(wire: Wire) -> None:
    idgroup = wire.group()
    assert (
        wire.error("deletecolumnfromgroup", idgroup=idgroup, field="mobile") == "MISSING_MAIN_FIELD"
    )
    assert "mobile" in wire.ok("getgroupcolumns", idgroup=idgroup)


def test_deletegroup_removes_the_group_and_its_contacts(wire: Wire, sandbox: Sandbox) -> None:
    idgroup = wire.group()
    keep = wire.group()
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001")
    wire.ok("deletegroup", idgroup=idgroup)
    assert wire.error("getcontacts", idgroup=idgroup) == "NOT_ACCESS_TO_GROUP"
    assert wire.error("deletegroup", idgroup=idgroup) == "NOT_ACCESS_TO_GROUP"
    assert set(sandbox.afilnet.state.groups) == {keep}


def test_assigncountrytogroup_takes_iso3_in_any_case(wire: Wire, sandbox: Sandbox) -> None:
    idgroup = wire.group()
    wire.ok("assigncountrytogroup", idgroup=idgroup, countryiso3="esp")  # the docs' example
    assert sandbox.afilnet.state.groups[idgroup].countryiso3 == "ESP"
    wire.ok("assigncountrytogroup", idgroup=idgroup, countryiso3="BHR")
    assert sandbox.afilnet.state.groups[idgroup].countryiso3 == "BHR"


@pytest.mark.parametrize("code", ["XYZ", "FR", "FRAN", "BAH", "BLG", "XKX", "123"])
def test_assigncountrytogroup_refuses_what_is_not_an_iso3_country(wire: Wire, code: str) -> None:
    idgroup = wire.group()
    assert wire.error("assigncountrytogroup", idgroup=idgroup, countryiso3=code) == (
        "COUNTRY_NOT_FOUND"
    )


def test_the_iso3_list_is_iso_3166_1() -> None:
    assert len(ISO3166_ALPHA3) == 249
    assert {"FRA", "ESP", "DEU", "GBR", "USA", "BGR", "BHR", "SWZ", "GUF", "REU"} <= ISO3166_ALPHA3
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in ISO3166_ALPHA3)


def test_getcontacts_lists_objects_keyed_by_field_with_idcontact(wire: Wire) -> None:
    idgroup = wire.group("mobile,name,city")
    assert wire.ok("getcontacts", idgroup=idgroup) == []
    first = wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001,name:Ana")
    second = wire.ok("addcontact", idgroup=idgroup, contact="city:Lyon,mobile:33600000002")
    assert wire.ok("getcontacts", idgroup=idgroup) == [
        {"idcontact": first["idcontact"], "mobile": "33600000001", "name": "Ana", "city": ""},
        {"idcontact": second["idcontact"], "mobile": "33600000002", "name": "", "city": "Lyon"},
    ]
    assert wire.ok("getcontact", idgroup=idgroup, idcontact=second["idcontact"]) == {
        "idcontact": second["idcontact"],
        "mobile": "33600000002",
        "name": "",
        "city": "Lyon",
    }


def test_addcontact_parses_the_docs_example(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    result = wire.ok("addcontact", idgroup=idgroup, contact="mobile:123456789,name:testname")
    assert set(result) == {"idcontact"}
    contact = wire.ok("getcontact", idgroup=idgroup, idcontact=result["idcontact"])
    assert contact == {"idcontact": result["idcontact"], "mobile": "123456789", "name": "testname"}


def test_addcontact_pair_format_cannot_carry_a_comma(wire: Wire) -> None:
    """Why the client refuses ``,`` in values: the service reads another contact."""
    idgroup = wire.group("mobile,name")
    result = wire.ok("addcontact", idgroup=idgroup, contact="mobile:1,name:Doe, John")
    contact = wire.ok("getcontact", idgroup=idgroup, idcontact=result["idcontact"])
    assert contact["name"] == "Doe"


def test_addcontact_drops_unknown_fields_and_keeps_values_unstripped(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    result = wire.ok("addcontact", idgroup=idgroup, contact="mobile:1,name: Ana ,age:40,junk")
    contact = wire.ok("getcontact", idgroup=idgroup, idcontact=result["idcontact"])
    assert contact == {"idcontact": result["idcontact"], "mobile": "1", "name": " Ana "}


def test_addcontact_needs_a_main_value(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    assert wire.error("addcontact", idgroup=idgroup, contact="name:Ana") == "MISSING_MAIN_FIELD"
    assert wire.error("addcontact", idgroup=idgroup, contact="mobile:,name:A") == (
        "MISSING_MAIN_FIELD"
    )
    assert wire.ok("getcontacts", idgroup=idgroup) == []


def test_addcontact_refuses_a_main_value_already_in_the_group(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    other = wire.group("mobile,name")
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:33600000001,name:A")
    assert wire.error("addcontact", idgroup=idgroup, contact="mobile:33600000001,name:B") == (
        "CONTACT_EXISTS"
    )
    wire.ok("addcontact", idgroup=other, contact="mobile:33600000001,name:B")
    [contact] = wire.ok("getcontacts", idgroup=idgroup)
    assert contact["name"] == "A"


def test_email_groups_key_contacts_on_email(wire: Wire) -> None:
    idgroup = wire.group("email,name", type="email")
    wire.ok("addcontact", idgroup=idgroup, contact="email:ana@example.org,name:Ana")
    assert wire.error("addcontact", idgroup=idgroup, contact="email:ana@example.org") == (
        "CONTACT_EXISTS"
    )
    assert wire.error("addcontact", idgroup=idgroup, contact="name:Bob") == "MISSING_MAIN_FIELD"


def test_addcontactlist_adds_the_docs_example(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    contacts = '[{"name":"Test","mobile":"34600000000"},{"name":"Test","mobile":"34600000001"}]'
    body = wire("addcontactlist", idgroup=idgroup, contacts=contacts)
    assert body == {"status": "success"}
    listed = wire.ok("getcontacts", idgroup=idgroup)
    assert [(c["mobile"], c["name"]) for c in listed] == [
        ("34600000000", "Test"),
        ("34600000001", "Test"),
    ]
    assert len({c["idcontact"] for c in listed}) == 2


def test_addcontactlist_carries_any_text_and_skips_duplicates(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:1,name:first")
    contacts = (
        '[{"mobile": "1", "name": "again"}, {"mobile": "2", "name": "Doe, John: CEO"},'
        ' {"mobile": "2", "name": "twice"}, {"name": "no main"}, {"mobile": 3, "name": null,'
        ' "age": "40"}]'
    )
    wire.ok("addcontactlist", idgroup=idgroup, contacts=contacts)
    listed = wire.ok("getcontacts", idgroup=idgroup)
    assert [(c["mobile"], c["name"]) for c in listed] == [
        ("1", "first"),
        ("2", "Doe, John: CEO"),
        ("3", ""),
    ]
    assert all("age" not in c for c in listed)


@pytest.mark.parametrize("contacts", ["not json", "{}", '{"mobile": "1"}', '["1"]', "[[]]"])
def test_addcontactlist_refuses_what_is_not_a_list_of_objects(wire: Wire, contacts: str) -> None:
    idgroup = wire.group()
    assert wire.error("addcontactlist", idgroup=idgroup, contacts=contacts) == (
        "MISSING_COMPULSORY_PARAM"
    )


def test_modifycontact_changes_only_the_given_fields(wire: Wire) -> None:
    idgroup = wire.group("mobile,name,city")
    idcontact = wire.ok("addcontact", idgroup=idgroup, contact="mobile:1,name:Ana,city:Lyon")[
        "idcontact"
    ]
    wire.ok("modifycontact", idgroup=idgroup, idcontact=idcontact, contact="city:Nice,age:3")
    assert wire.ok("getcontact", idgroup=idgroup, idcontact=idcontact) == {
        "idcontact": idcontact,
        "mobile": "1",
        "name": "Ana",
        "city": "Nice",
    }
    wire.ok("modifycontact", idgroup=idgroup, idcontact=idcontact, contact="mobile:1,name:")
    assert wire.ok("getcontact", idgroup=idgroup, idcontact=idcontact)["name"] == ""


def test_modifycontact_keeps_main_values_unique_and_present(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:1")
    idcontact = wire.ok("addcontact", idgroup=idgroup, contact="mobile:2")["idcontact"]
    params = {"idgroup": idgroup, "idcontact": idcontact}
    assert wire.error("modifycontact", **params, contact="mobile:1") == "CONTACT_EXISTS"
    assert wire.error("modifycontact", **params, contact="mobile:") == "MISSING_MAIN_FIELD"
    wire.ok("modifycontact", **params, contact="mobile:3")
    assert wire.ok("getcontact", **params)["mobile"] == "3"


def test_deletecontact_removes_only_that_contact(wire: Wire) -> None:
    idgroup = wire.group("mobile,name")
    gone = wire.ok("addcontact", idgroup=idgroup, contact="mobile:1")["idcontact"]
    kept = wire.ok("addcontact", idgroup=idgroup, contact="mobile:2")["idcontact"]
    wire.ok("deletecontact", idgroup=idgroup, idcontact=gone)
    assert [c["idcontact"] for c in wire.ok("getcontacts", idgroup=idgroup)] == [kept]
    assert wire.error("getcontact", idgroup=idgroup, idcontact=gone) == "NOT_ACCESS_TO_CONTACT"
    assert wire.error("deletecontact", idgroup=idgroup, idcontact=gone) == "NOT_ACCESS_TO_CONTACT"
    wire.ok("addcontact", idgroup=idgroup, contact="mobile:1")


def test_group_calls_need_the_account_credentials(wire: Wire) -> None:
    response = wire.client.post(
        wire.url,
        data={"class": "group", "method": "creategroup", "user": "x", "password": "y"},
    )
    assert response.json() == {"status": "error", "error": "INCORRECT_USER_PASSWORD"}
