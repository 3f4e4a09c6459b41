"""``{{field}}`` placeholders: filled from the contact, a missing field is that contact's error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.campaigns.personalise import (
    check_template,
    lookup,
    placeholders,
    render,
    render_params,
)
from postier.rules.errors import RuleViolation


def test_placeholders_in_order_of_first_use_spaces_allowed() -> None:
    text = "Bonjour {{ prenom }}, votre commande {{orderid}} ({{prenom}}) {{code-postal}}"
    assert placeholders(text) == ["prenom", "orderid", "code-postal"]
    assert check_template(text) == ["prenom", "orderid", "code-postal"]
    assert placeholders("Pas de champ") == []


def test_render_fills_every_placeholder_in_one_pass() -> None:
    fields = {"prenom": "Jeanne", "orderid": "{{prenom}}"}
    assert render("Bonjour {{ prenom }}, n°{{orderid}}", fields) == "Bonjour Jeanne, n°{{prenom}}"


def test_names_match_exactly_then_ignoring_case() -> None:
    fields = {"Prénom": "Zoé", "prénom": "exact"}
    assert lookup(fields, "prénom") == "exact"
    assert lookup({"Prénom": "Zoé"}, "PRÉNOM") == "Zoé"
    assert render("Salut {{PRÉNOM}}", {"Prénom": "Zoé"}) == "Salut Zoé"
    assert lookup({}, "x") is None


@pytest.mark.parametrize("fields", [{}, {"prenom": ""}, {"prenom": "   "}, {"nom": "Durand"}])
def test_a_missing_or_blank_field_is_an_error_naming_it(fields: dict[str, str]) -> None:
    with pytest.raises(RuleViolation) as caught:
        render("Bonjour {{prenom}} !", fields)
    assert caught.value.field == "prenom"
    assert caught.value.rule == "placeholder.missing"
    assert "{{prenom}}" in str(caught.value)


@pytest.mark.parametrize(
    "text", ["Bonjour {{prenom", "Bonjour prenom}}", "Bonjour {{ }}", "{{a b}}", "{{x}}}}"]
)
def test_braces_that_are_not_a_placeholder_are_refused(text: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_template(text, field="params.name")
    assert caught.value.field == "params.name"
    assert caught.value.rule == "placeholder.syntax"


def test_template_parameters_are_personalised_each() -> None:
    params = {"name": "{{prenom}}", "orderid": "CMD-{{ id }}", "fixed": "x"}
    assert render_params(params, {"prenom": "Léa", "id": "42"}) == {
        "name": "Léa",
        "orderid": "CMD-42",
        "fixed": "x",
    }


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
values = st.text(
    alphabet=st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]), min_size=1
).filter(lambda v: v.strip() != "")


@given(st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=["Cs"])))
def test_a_text_without_placeholders_is_left_alone(text: str) -> None:
    assert check_template(text) == []
    assert render(text, {}) == text


@given(st.dictionaries(names, values, min_size=1, max_size=5), st.data())
def test_every_placeholder_is_replaced_by_its_value(
    fields: dict[str, str], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=6))
    template = " / ".join(f"<{{{{{name}}}}}>" for name in chosen)
    assert render(template, fields) == " / ".join(f"<{fields[name]}>" for name in chosen)
