"""A campaign message's id: an HMAC of the number under the campaign's salt."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from postier.campaigns.rows import message_id


@given(st.text(min_size=1, max_size=40), st.lists(st.text(max_size=20), max_size=5))
def test_message_id_is_the_hmac_of_the_number_under_the_salt(salt: str, numbers: list[str]) -> None:
    """The keyed HMAC is reused across recipients: each id must be the one computed afresh."""
    for number in [*numbers, *numbers]:
        expected = hmac.new(salt.encode(), number.encode(), hashlib.sha256).hexdigest()[:32]
        assert message_id(salt, number) == expected


def test_two_salts_give_two_ids() -> None:
    assert message_id("a", "+33612345678") != message_id("b", "+33612345678")
