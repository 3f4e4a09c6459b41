"""Parts and cost before sending, built as the fan-out builds."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from postier.campaigns.audience import parse_csv, parse_list
from postier.campaigns.estimate import estimate
from postier.campaigns.rows import LedgerRowFactory
from postier.campaigns.spec import CampaignRequest, resolve_spec
from postier.config import Settings
from postier.ledger.db import make_engine
from postier.rules import TextChange
from producers.messages import Producer


@pytest.fixture
def factory(settings: Settings, tmp_path: Path) -> LedgerRowFactory:
    return LedgerRowFactory(
        Producer(settings, engine=make_engine(f"sqlite:///{tmp_path}/e.db")).rows
    )


def nobody(numbers: Iterable[str]) -> set[str]:
    return set()


def test_parts_follow_each_personalised_text(settings: Settings, factory: LedgerRowFactory) -> None:
    spec = resolve_spec(
        settings,
        CampaignRequest(
            text="Bonjour {{nom}}, " + "x" * 130, category="notification", provider="octopush"
        ),
    )
    csv = (
        "mobile,nom\n"
        "0612345601,Al\n"  # 141 characters: 1 part
        f"0612345602,{'B' * 30}\n"  # 169: 2 parts
        "0612345603,Zoé😀\n"  # UCS-2: 3 parts
        "0612345601,Al\n"  # repeated number
        "0612345604,\n"  # no value for {{nom}}
        "12,Cy\n"  # not a number
    )
    result = estimate(settings, spec, parse_csv(csv), factory, nobody)
    assert result.messages == 3
    assert result.duplicates == 1
    assert result.invalid == 2
    assert [(r.line, r.field, r.rule) for r in result.rejections] == [
        (6, "nom", "placeholder.missing"),
        (7, "mobile", "e164.impossible"),
    ]
    assert result.parts_histogram == {1: 1, 2: 1, 3: 1}
    assert result.parts == 6
    assert result.encodings == {"gsm7": 2, "ucs2": 1}
    assert result.requests == 3  # personalised: one request per message
    assert result.price_per_part == Decimal("0.055")
    assert result.cost == Decimal("0.33")


def test_batched_octopush_counts_requests_and_the_stop_mention(
    settings: Settings, factory: LedgerRowFactory
) -> None:
    cheap = settings.model_copy(
        update={"campaigns": settings.campaigns.model_copy(update={"batch_size": 100})}
    )
    spec = resolve_spec(cheap, CampaignRequest(text="x" * 150))
    # 150 characters + "\nSTOP au 36111" (14) = 164: two parts each
    audience = parse_list([f"0612{n:06d}" for n in range(250)])
    opted = {"+33612000007", "+33612000008"}
    result = estimate(cheap, spec, audience, factory, lambda numbers: opted & set(numbers))
    assert result.messages == 248 and result.opted_out == 2
    assert result.parts == 496
    assert result.requests == 3
    assert result.cost == Decimal("27.28")  # 496 × 0.055


def test_whatsapp_templates_count_messages_not_parts(
    settings: Settings, factory: LedgerRowFactory
) -> None:
    spec = resolve_spec(
        settings,
        CampaignRequest(template_id="3", params={"name": "{{prenom}}"}, category="notification"),
    )
    audience = parse_list([{"mobile": "0612345601", "prenom": "Ana"}, {"mobile": "0612345602"}])
    result = estimate(settings, spec, audience, factory, nobody)
    assert result.messages == 1 and result.invalid == 1
    assert result.parts == 0 and result.cost is None and result.encodings == {}


# the fixtures are read-only here, so sharing them between examples is harmless
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30), st.sampled_from(["national", "e164", "spaced"])
        ),
        max_size=60,
    )
)
def test_each_number_is_counted_once_whatever_its_written_form(
    settings: Settings, factory: LedgerRowFactory, picks: list[tuple[int, str]]
) -> None:
    forms = {
        "national": "0612{:06d}",
        "e164": "+33612{:06d}",
        "spaced": "06 12 {:02d} {:02d} {:02d}",
    }

    def written(n: int, form: str) -> str:
        if form == "spaced":
            return forms[form].format(n // 10000, n // 100 % 100, n % 100)
        return forms[form].format(n)

    spec = resolve_spec(settings, CampaignRequest(text="Bonjour", category="notification"))
    audience = parse_list([written(n, form) for n, form in picks])
    result = estimate(settings, spec, audience, factory, nobody)
    distinct = len({n for n, _ in picks})
    assert result.messages == distinct
    assert result.duplicates == len(picks) - distinct
    assert result.invalid == 0


def test_the_dry_run_shows_the_text_changes_and_the_parts_they_cost(
    settings: Settings, factory: LedgerRowFactory
) -> None:
    text = "Bonjour {{nom}}, votre commande est prête à l’heure. " + "x" * 60
    spec = resolve_spec(
        settings, CampaignRequest(text=text, category="notification", provider="primotexto")
    )
    csv = "mobile,nom\n0612345601,Zoé\n0612345602,Léa\n0612345603,Ève\n"
    result = estimate(settings, spec, parse_csv(csv), factory, nobody)
    assert result.text_policy == "transliterate"
    assert result.changed_messages == 3
    assert result.text_changes == [
        TextChange("ê", "e", 3),
        TextChange("’", "'", 3),
        TextChange("È", "E", 1),
    ]
    # transliterated, each is 1 GSM part; as written (UCS-2) each would need 2
    assert result.parts == 3
    assert result.parts_as_written == 6
    assert result.encodings == {"gsm7": 3}
    before, after = result.sample_change or ("", "")
    assert before.startswith("Bonjour Zoé, votre commande est prête à l’heure.")
    assert after.startswith("Bonjour Zoé, votre commande est prete à l'heure.")


def test_an_estimate_without_changes_says_so(settings: Settings, factory: LedgerRowFactory) -> None:
    spec = resolve_spec(
        settings, CampaignRequest(text="Rappel", category="notification", provider="primotexto")
    )
    result = estimate(settings, spec, parse_list(["0612345601"]), factory, nobody)
    assert (result.changed_messages, result.text_changes, result.sample_change) == (0, [], None)
    assert result.parts_as_written == result.parts == 1
