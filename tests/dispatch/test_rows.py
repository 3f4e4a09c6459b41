"""Row building: a single marketing SMS keeps out of the French quiet hours like a campaign."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.config import Settings
from postier.dispatch.rows import RowBuilder, RowMemo, SmsRequest
from postier.ledger.models import MessageStatus
from postier.rules.errors import RuleViolation

PARIS = ZoneInfo("Europe/Paris")


def builder(at: datetime) -> RowBuilder:
    return RowBuilder(Settings(_env_file=None), clock=lambda: at)


def marketing(b: RowBuilder, send_at: datetime | None = None) -> dict[str, object]:
    return b.sms(SmsRequest("0612345678", "Soldes", category="marketing", send_at=send_at))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Tuesday 17 Nov 2026: 21:00 waits for Wednesday 08:00
        (datetime(2026, 11, 17, 21, 0, tzinfo=PARIS), datetime(2026, 11, 18, 8, 0, tzinfo=PARIS)),
        # 07:59 waits one minute; 19:59 goes at once
        (datetime(2026, 11, 17, 7, 59, tzinfo=PARIS), datetime(2026, 11, 17, 8, 0, tzinfo=PARIS)),
        (datetime(2026, 11, 17, 19, 59, tzinfo=PARIS), None),
        # Saturday 20:30 skips Sunday to Monday 08:00
        (datetime(2026, 11, 21, 20, 30, tzinfo=PARIS), datetime(2026, 11, 23, 8, 0, tzinfo=PARIS)),
        # Christmas Eve evening: 25 December is a holiday, the 26th is a Saturday
        (datetime(2026, 12, 24, 22, 0, tzinfo=PARIS), datetime(2026, 12, 26, 8, 0, tzinfo=PARIS)),
        # the night the clocks go back (25 Oct 2026): 08:00 local is 07:00 UTC
        (datetime(2026, 10, 26, 3, 0, tzinfo=PARIS), datetime(2026, 10, 26, 8, 0, tzinfo=PARIS)),
    ],
)
def test_marketing_in_quiet_hours_is_scheduled_for_the_next_allowed_instant(
    now: datetime, expected: datetime | None
) -> None:
    row = marketing(builder(now))
    if expected is None:
        assert row["status"] == MessageStatus.QUEUED and row["send_at"] is None
    else:
        assert row["status"] == MessageStatus.SCHEDULED
        assert row["send_at"] == expected


def test_a_requested_time_in_quiet_hours_moves_too() -> None:
    now = datetime(2026, 11, 17, 10, 0, tzinfo=PARIS)
    row = marketing(builder(now), send_at=datetime(2026, 11, 17, 23, 0, tzinfo=PARIS))
    assert row["send_at"] == datetime(2026, 11, 18, 8, 0, tzinfo=PARIS)


def test_notifications_ignore_quiet_hours() -> None:
    at_night = builder(datetime(2026, 11, 22, 3, 0, tzinfo=PARIS))  # a Sunday night
    row = at_night.sms(SmsRequest("0612345678", "Votre code : 1234"))
    assert row["status"] == MessageStatus.QUEUED


def test_a_naive_send_at_is_refused() -> None:
    with pytest.raises(RuleViolation) as err:
        marketing(builder(datetime.now(PARIS)), send_at=datetime(2026, 11, 17, 10, 0))
    assert err.value.field == "send_at"


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31)))
def test_a_marketing_row_never_goes_out_in_quiet_hours(naive: datetime) -> None:
    now = naive.replace(tzinfo=PARIS)
    b = builder(now)
    row = marketing(b)
    due = row["send_at"] if row["send_at"] is not None else now
    assert isinstance(due, datetime)
    assert b.quiet_hours.is_allowed(due)
    assert due - now < timedelta(days=5)


# -- the text policy of the route ------------------------------------------------------------

FRENCH = "Votre œuvre est prête à l’heure : « merci »"


def with_policy(provider: str, policy: str) -> RowBuilder:
    base = Settings(_env_file=None)
    name = "sms_text_policy" if provider == "afilnet" else "text_policy"
    section = getattr(base, provider).model_copy(update={name: policy})
    return RowBuilder(base.model_copy(update={provider: section}))


def test_french_text_goes_on_the_default_route_transliterated_and_recorded() -> None:
    row = builder(datetime.now(PARIS)).sms(SmsRequest("0612345678", FRENCH))
    assert row["provider"] == "primotexto"
    assert row["body"] == 'Votre oeuvre est prete à l\'heure : " merci "'
    assert row["parts"] == 1
    record = row["payload"]["text_policy"]
    assert record["policy"] == "transliterate"
    assert record["original"] == FRENCH
    assert {(c["from"], c["to"]) for c in record["changes"]} == {
        ("œ", "oe"),
        ("ê", "e"),
        ("’", "'"),
        ("«", '"'),
        ("»", '"'),
    }


def test_a_text_the_route_takes_as_written_records_nothing() -> None:
    row = builder(datetime.now(PARIS)).sms(SmsRequest("0612345678", "Votre RDV à 14h"))
    assert row["body"] == "Votre RDV à 14h" and "text_policy" not in row["payload"]


def test_the_refuse_policy_refuses_as_before() -> None:
    with pytest.raises(RuleViolation) as caught:
        with_policy("primotexto", "refuse").sms(SmsRequest("0612345678", FRENCH))
    assert (caught.value.field, caught.value.rule) == ("text", "text.charset")


def test_primotexto_cannot_be_set_to_unicode() -> None:
    with pytest.raises(ValueError, match="text_policy"):
        Settings(_env_file=None, primotexto={"text_policy": "unicode"})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("policy", "body", "parts"),
    [
        ("unicode", FRENCH, 1),
        ("transliterate", 'Votre oeuvre est prete à l\'heure : " merci "', 1),
    ],
)
def test_octopush_follows_its_own_policy(policy: str, body: str, parts: int) -> None:
    b = with_policy("octopush", policy)
    row = b.sms(SmsRequest("0612345678", FRENCH, provider="octopush"))
    assert (row["body"], row["parts"]) == (body, parts)
    assert ("text_policy" in row["payload"]) is (policy == "transliterate")


def test_octopush_defaults_to_unicode_and_counts_ucs2_parts() -> None:
    text = "é" + "ê" * 70  # 71 characters, one needs UCS-2: two parts of 67
    row = builder(datetime.now(PARIS)).sms(SmsRequest("0612345678", text, provider="octopush"))
    assert (row["body"], row["parts"]) == (text, 2)


def test_rows_carry_the_keyed_hash_of_their_number_when_a_key_is_set() -> None:
    from pydantic import SecretStr

    from postier.config import RetentionSettings
    from postier.rules.phones import number_hash

    at = datetime(2026, 11, 17, 10, 0, tzinfo=PARIS)
    keyed = Settings(_env_file=None, retention=RetentionSettings(hash_key=SecretStr("k" * 16)))
    row = RowBuilder(keyed, clock=lambda: at).sms(SmsRequest("06 12 34 56 78", "Bonjour"))
    assert row["recipient"] == "+33612345678"
    assert row["recipient_hash"] == number_hash("+33612345678", "k" * 16)
    plain = builder(at).sms(SmsRequest("06 12 34 56 78", "Bonjour"))
    assert plain["recipient_hash"] is None


# -- one memo for the rows of a call ---------------------------------------------------------

_TEXTS = ["Soldes d'hiver", "Café à 2 €", "Code 123456", "", "Ünïcødé ✓", "x" * 2000]


def _outcome(b: RowBuilder, request: SmsRequest, memo: RowMemo | None) -> object:
    try:
        row = b.sms(request, memo)
    except RuleViolation as exc:
        return (exc.field, exc.rule)
    return {key: value for key, value in row.items() if key not in ("id",)}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_TEXTS),
            st.sampled_from(["notification", "marketing", "promo"]),
            st.sampled_from([None, "octopush", "primotexto", "afilnet", "nobody"]),
            st.sampled_from([None, "Postier", "no", "Shop 2"]),
        ),
        max_size=12,
    )
)
def test_rows_built_with_one_memo_are_the_rows_built_alone(
    requests: list[tuple[str, str, str | None, str | None]],
) -> None:
    """A memo shared by a call's rows answers a text (and a sender) checked before with what
    checking it again would give; a refusal is given again to every row that has it."""
    now = datetime(2026, 11, 17, 10, 0, tzinfo=PARIS)
    b = builder(now)
    memo = b.memo()
    for text, category, provider, sender in requests:
        request = SmsRequest(
            "0612345678",
            text,
            sender=sender,
            category=category,  # type: ignore[arg-type]
            provider=provider,
        )
        assert _outcome(b, request, memo) == _outcome(b, request, None)


def test_one_memo_stamps_every_row_with_one_instant() -> None:
    ticks = iter(datetime(2026, 11, 17, 10, 0, second, tzinfo=PARIS) for second in range(60))
    b = RowBuilder(Settings(_env_file=None), clock=lambda: next(ticks))
    memo = b.memo()
    rows = [b.sms(SmsRequest(f"06123456{n:02d}", "Bonjour"), memo) for n in range(3)]
    assert {row["created_at"] for row in rows} == {memo.now}
    assert len({row["id"] for row in rows}) == 3


def test_a_text_of_the_wrong_type_is_refused_with_a_memo_too() -> None:
    b = builder(datetime(2026, 11, 17, 10, 0, tzinfo=PARIS))
    memo = b.memo()
    for _ in range(2):
        with pytest.raises(RuleViolation) as caught:
            b.sms(SmsRequest("0612345678", ["not", "text"]), memo)  # type: ignore[arg-type]
        assert (caught.value.field, caught.value.rule) == ("text", "text.type")


_KEYED = Settings(
    _env_file=None,
    retention={"hash_key": "k" * 16},
)


_SHAPES = st.tuples(
    st.sampled_from(["Soldes d'hiver", "Votre œuvre", ""]),
    st.sampled_from(["notification", "marketing"]),
    st.sampled_from([None, "Postier", "no"]),
    st.sampled_from([None, "camp-1", "c" * 40]),
    st.sampled_from([None, "bulk", "transactional", "urgent"]),
    st.sampled_from([None, "https://app.example/hook", "ftp://app.example/hook"]),
)
_NUMBERS = ["0612345678", "+33 7 12 34 56 78", "0033612345679", "+262692123456", "061234", "x"]


@given(
    st.lists(_SHAPES, min_size=1, max_size=3),
    st.lists(st.tuples(st.sampled_from(_NUMBERS), st.integers(0, 2)), max_size=12),
    st.booleans(),
)
def test_rows_remembered_whole_are_the_rows_built_alone(
    shapes: list[tuple[str, str, str | None, str | None, str | None, str | None]],
    picks: list[tuple[str, int]],
    evening: bool,
) -> None:
    """A row remembered for everything but its number (``RowMemo.rows``) gives, with another
    number, the row every check would build: same columns, keyed hash of its own number,
    a fresh id, and a refusal of each bad number or value with its field and rule."""
    # 21:00 on a Tuesday: marketing waits for the morning, so its rows are scheduled
    now = datetime(2026, 11, 17, 21 if evening else 10, 0, tzinfo=PARIS)
    b = RowBuilder(_KEYED, clock=lambda: now)
    memo = b.memo()
    ids: set[str] = set()
    for to, pick in picks:
        text, category, sender, campaign_id, priority, callback_url = shapes[pick % len(shapes)]
        request = SmsRequest(
            to,
            text,
            sender=sender,
            category=category,  # type: ignore[arg-type]
            campaign_id=campaign_id,
            priority=priority,  # type: ignore[arg-type]
            callback_url=callback_url,
        )
        assert _outcome(b, request, memo) == _outcome(b, request, None)
        try:
            ids.add(b.sms(request, memo)["id"])
        except RuleViolation:
            continue
    assert len(memo.rows) <= len(shapes)
    assert all(len(id_) == 32 for id_ in ids)


def test_rows_from_one_remembered_row_own_their_payload() -> None:
    b = builder(datetime(2026, 11, 17, 10, 0, tzinfo=PARIS))
    memo = b.memo()
    first, second = (
        b.sms(SmsRequest(f"061234567{n}", "Votre œuvre", sender="Postier"), memo) for n in range(2)
    )
    assert first["payload"] == second["payload"] != {}
    for row in (first, second):
        row["payload"]["sender"] = "changed"
        row["payload"]["text_policy"]["changes"] = []
    third = b.sms(SmsRequest("0612345679", "Votre œuvre", sender="Postier"), memo)
    assert third["payload"]["sender"] == "Postier"
    assert third["payload"]["text_policy"]["changes"] != []
    assert len({first["id"], second["id"], third["id"]}) == 3


class _Text(str):
    """A ``str`` subclass: equal to, and hashed as, its plain value."""

    __slots__ = ()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0612345678", "+33612345679", "06 12 34 56 70", "0512345678"]),
            st.sampled_from(["Bonjour", "Votre œuvre"]),
            st.sampled_from([None, "Postier"]),
            st.sampled_from([None, "bulk"]),
            st.integers(0, 15),
        ),
        max_size=12,
    )
)
def test_a_value_of_another_type_is_never_answered_from_the_memo(
    picks: list[tuple[str, str, str | None, str | None, int]],
) -> None:
    """A memo's key is equal for a ``str`` subclass of the same value: such a request (or
    number) is checked alone, and the memo answers plain requests as before it."""
    b = RowBuilder(_KEYED, clock=lambda: datetime(2026, 11, 17, 10, 0, tzinfo=PARIS))
    memo = b.memo()
    for to, text, sender, priority, odd in picks:
        values: list[object] = [to, text, sender, priority]
        for position in range(4):
            if odd >> position & 1 and values[position] is not None:
                values[position] = _Text(values[position])
        request = SmsRequest(
            values[0],  # type: ignore[arg-type]
            values[1],  # type: ignore[arg-type]
            sender=values[2],  # type: ignore[arg-type]
            priority=values[3],  # type: ignore[arg-type]
        )
        assert _outcome(b, request, memo) == _outcome(b, request, None)
