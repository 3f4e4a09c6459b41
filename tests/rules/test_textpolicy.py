"""The text policy of a route: refuse, transliterate to the provider's alphabet, or UCS-2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import (
    GSM7_CHARS,
    PRIMOTEXTO_ALLOWED_CHARS,
    RuleViolation,
    TextChange,
    apply_text_policy,
    check_text,
    is_gsm7,
    transliterate,
)
from postier.sandbox.primotexto import PrimotextoFault, message_parts

NBSP, NNBSP = "\u00a0", "\u202f"


# -- the French texts on the default route (Primotexto) ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Votre commande est prête", "Votre commande est prete"),
        ("Une œuvre d’art", "Une oeuvre d'art"),
        ("RDV à l’heure", "RDV à l'heure"),
        (f"«{NBSP}guillemets{NBSP}»", '" guillemets "'),
        (f"Total{NNBSP}: 12{NBSP}€", "Total : 12 EUR"),
        ("ÇA ÉTÉ Noël, ça ira", "CA ETE Noel, ca ira"),
        ("île, dîner, goût, naïf, Noël, château", "ile, diner, gout, naif, Noel, chateau"),
        ("Œuvre – tiret — long… fin", "OEuvre - tiret - long... fin"),
        ("[lien] `code`\tfin\r\nligne", "(lien) 'code' fin\nligne"),
        ("“Bonjour” ‘toi’", "\"Bonjour\" 'toi'"),
    ],
)
def test_french_text_is_transliterated_for_primotexto(text: str, expected: str) -> None:
    with pytest.raises(RuleViolation):
        check_text("primotexto", text)
    outcome = apply_text_policy("primotexto", text, "transliterate")
    assert outcome.text == expected
    assert outcome.changed
    check_text("primotexto", outcome.text)


def test_characters_primotexto_allows_are_kept() -> None:
    text = "àéèùìò ÑñÅåÜü £¤ @_!$\"#%&()*:+;,<-=.>/?|^{}~\\' une fète.\n"
    outcome = apply_text_policy("primotexto", text, "transliterate")
    assert not outcome.changed
    assert outcome.changes == ()


def test_the_change_is_described_character_by_character() -> None:
    outcome = apply_text_policy("primotexto", "prête, fête, l’été", "transliterate")
    assert outcome.text == "prete, fete, l'été"
    assert outcome.changes == (TextChange("ê", "e", 2), TextChange("’", "'", 1))
    assert outcome.describe() == "transliterated for primotexto: 'ê'→'e' ×2, '’'→\"'\" ×1"
    assert outcome.to_payload() == {
        "policy": "transliterate",
        "original": "prête, fête, l’été",
        "changes": [
            {"from": "ê", "to": "e", "count": 2},
            {"from": "’", "to": "'", "count": 1},
        ],
    }


def test_refuse_keeps_todays_refusal() -> None:
    with pytest.raises(RuleViolation) as caught:
        apply_text_policy("primotexto", "prête", "refuse", field="message")
    assert (caught.value.field, caught.value.rule) == ("message", "text.charset")
    assert "'ê'" in caught.value.message


def test_primotexto_takes_no_unicode() -> None:
    with pytest.raises(RuleViolation) as caught:
        apply_text_policy("primotexto", "prête", "unicode")
    assert caught.value.rule == "text.policy"
    assert "transliterate" in caught.value.message


# -- the GSM 03.38 providers --------------------------------------------------------------------


def test_octopush_unicode_sends_the_text_as_written() -> None:
    outcome = apply_text_policy("octopush", "Zoé 😀 « prête »", "unicode")
    assert (outcome.text, outcome.changed) == ("Zoé 😀 « prête »", False)


def test_octopush_transliterates_to_gsm_and_keeps_what_gsm_has() -> None:
    outcome = apply_text_policy("octopush", "Ça coûte 5€ [promo] « prête » Ølü", "transliterate")
    assert outcome.text == 'Ça coute 5€ [promo] " prete " Ølü'
    assert is_gsm7(outcome.text)


def test_octopush_refuse_refuses_what_needs_ucs2() -> None:
    apply_text_policy("afilnet", "Ça coûte", "unicode")
    with pytest.raises(RuleViolation) as caught:
        apply_text_policy("octopush", "Ça coûte", "refuse")
    assert caught.value.rule == "text.charset"


def test_whatsapp_has_no_text_policy() -> None:
    outcome = apply_text_policy(
        "afilnet", "Bonjour 👋 « toi »", "transliterate", transport="whatsapp"
    )
    assert not outcome.changed


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(RuleViolation) as caught:
        apply_text_policy("primotexto", "x", "ignore")  # type: ignore[arg-type]
    assert caught.value.rule == "text.policy"


# -- properties -----------------------------------------------------------------------------


@given(text=st.text(max_size=400))
def test_every_text_the_policy_accepts_passes_the_sandbox_charset_check(text: str) -> None:
    """What Postier lets through on the default route is what Primotexto's check accepts."""
    outcome = apply_text_policy("primotexto", text, "transliterate")
    try:
        info = check_text("primotexto", outcome.text)
    except RuleViolation as refused:
        assert refused.rule in ("text.empty", "text.parts")
        return
    try:
        parts = message_parts(outcome.text)
    except PrimotextoFault as fault:
        pytest.fail(f"the sandbox refused {outcome.text!r} with code {fault.code}")
    assert parts == info.parts


@given(text=st.text(max_size=200))
def test_transliteration_lands_in_the_alphabet_and_is_stable(text: str) -> None:
    for alphabet in (PRIMOTEXTO_ALLOWED_CHARS, GSM7_CHARS):
        once, _ = transliterate(text, alphabet)
        assert set(once) <= alphabet
        assert transliterate(once, alphabet) == (once, ())


@given(text=st.text(alphabet=sorted(PRIMOTEXTO_ALLOWED_CHARS), max_size=200))
def test_text_already_in_the_alphabet_is_untouched(text: str) -> None:
    assert transliterate(text, PRIMOTEXTO_ALLOWED_CHARS) == (text, ())
