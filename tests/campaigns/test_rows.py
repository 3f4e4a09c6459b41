"""A campaign message's id: an HMAC of the number under the campaign's salt."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from postier.campaigns.rows import LedgerRowFactory, message_id


@given(st.text(min_size=1, max_size=80), st.lists(st.text(max_size=20), max_size=5))
def test_message_id_is_the_hmac_of_the_number_under_the_salt(salt: str, numbers: list[str]) -> None:
    """The keyed HMAC is reused across recipients: each id must be the one computed afresh
    (salts past SHA-256's 64-byte block too, which HMAC hashes first)."""
    for number in [*numbers, *numbers]:
        expected = hmac.new(salt.encode(), number.encode(), hashlib.sha256).hexdigest()[:32]
        assert message_id(salt, number) == expected


def test_two_salts_give_two_ids() -> None:
    assert message_id("a", "+33612345678") != message_id("b", "+33612345678")


_NUMBERS = ["0612345678", "+33 7 12 34 56 78", "0612345679", "061234", "+262692123456"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_NUMBERS),
            st.sampled_from(["Soldes", "Votre œuvre", ""]),
            st.sampled_from([None, "Postier", "no"]),
            st.sampled_from(["notification", "marketing"]),
        ),
        max_size=10,
    )
)
def test_a_batch_builds_the_rows_of_single_calls(
    calls: list[tuple[str, str, str | None, str]],
) -> None:
    """A chunk's factory reuses one request per text, sender and category (``batch``): each
    contact still gets its own number, and every row or refusal is a lone call's."""
    from datetime import UTC, datetime

    from postier.config import Settings
    from postier.dispatch.rows import RowBuilder
    from postier.rules.errors import RuleViolation

    at = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    builder = RowBuilder(Settings(_env_file=None), clock=lambda: at)
    batch = LedgerRowFactory(builder).batch()

    def outcome(factory: LedgerRowFactory, call: tuple[str, str, str | None, str]) -> object:
        to, text, sender, category = call
        try:
            row = factory.sms(to, text, sender=sender, category=category, provider="octopush")
        except RuleViolation as exc:
            return (exc.field, exc.rule)
        return {key: value for key, value in row.items() if key != "id"}

    for call in calls:
        assert outcome(batch, call) == outcome(LedgerRowFactory(builder), call)
