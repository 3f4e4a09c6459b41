"""The Octopush client against the sandbox over real HTTP: both APIs, both answer formats."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from postier.config import Settings
from postier.providers.base import OutgoingSms, SmsProvider
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    ContentRejectedError,
    InsufficientCreditError,
    PermanentError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
    UnsupportedFeatureError,
)
from postier.providers.octopush import (
    CODES,
    SIGNED_FIELDS,
    SIGNED_LETTERS,
    CongestedError,
    OctopushClient,
    from_octopush_timestamp,
    is_already_accepted,
    parse_inbound,
    parse_receipt,
    receipts_from_callback,
    request_sha1,
    sign_form,
    to_octopush_timestamp,
)
from postier.providers.octopush.codes import error_for
from postier.providers.octopush.legacy import (
    LegacyApi,
    build_send_form,
    parse_json_answer,
    parse_xml_answer,
    receipt_from_answer,
)
from postier.providers.results import DeliveryState, Provider
from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.octopush.legacy import D_READINGS
from postier.sandbox.octopush.legacy import signature_of as sandbox_signature
from tests.http_pool import RecordingPool

PARIS = ZoneInfo("Europe/Paris")
FR_A, FR_B, FR_BOUNCE = "+33601020304", "+33712345678", "+33600009999"
TRANSPORTS = {
    "legacy-xml": {"transport": "legacy", "answer_format": "xml"},
    "legacy-json": {"transport": "legacy", "answer_format": "json"},
    "v1": {"transport": "v1"},
}
LEGACY = {k: v for k, v in TRANSPORTS.items() if v["transport"] == "legacy"}

Make = Callable[..., OctopushClient]


@pytest.fixture
def seen(http_pool: RecordingPool) -> list[httpx.Request]:
    """Every request the shared connection pool sends (observed, not altered)."""
    return http_pool.requests


@pytest.fixture
def wire() -> Iterator[httpx.Client]:
    """A plain client for forms posted as they are, outside any provider client."""
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def make(settings: Settings, http_pool: RecordingPool) -> Make:
    def factory(**overrides: Any) -> OctopushClient:
        if "api_key" in overrides:
            overrides["api_key"] = SecretStr(overrides["api_key"])
        octopush = settings.octopush.model_copy(update=overrides)
        return OctopushClient(octopush, settings.http, http_pool)

    return factory


@pytest.fixture(params=list(TRANSPORTS), ids=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> dict[str, str]:
    return TRANSPORTS[request.param]


@pytest.fixture
def admin(sandbox: Sandbox, sandbox_server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=f"{sandbox_server.url}/_sandbox/octopush", timeout=5.0)


def sms(*recipients: str, **fields: Any) -> OutgoingSms:
    fields.setdefault("text", "Votre code est 1234")
    return OutgoingSms(recipients=recipients or (FR_A,), **fields)


# --- sending --------------------------------------------------------------------------------


def test_client_is_an_sms_provider(make: Make) -> None:
    client = make()
    assert isinstance(client, SmsProvider)
    assert client.provider is Provider.OCTOPUSH


def test_instant_send_to_many(make: Make, sandbox: Sandbox, transport: dict[str, str]) -> None:
    receipt = make(**transport).send_sms(sms(FR_A, FR_B, request_id="m-1"))
    assert receipt.provider is Provider.OCTOPUSH
    assert receipt.message_id
    assert receipt.cost == Decimal("0.11")
    # the docs' XML success has no sms_needed: the parts are not stated there
    assert receipt.parts == (None if transport.get("answer_format") == "xml" else 1)
    assert [(r.recipient, r.accepted) for r in receipt.recipients] == [(FR_A, True), (FR_B, True)]
    assert not is_already_accepted(receipt)
    recs = sandbox.records("octopush")
    assert [(r["recipient"], r["batch_id"]) for r in recs] == [
        (FR_A, receipt.message_id),
        (FR_B, receipt.message_id),
    ]
    assert all(r["send_at"] == r["accepted_at"] for r in recs)


@pytest.mark.parametrize("name", list(LEGACY))
def test_legacy_reports_each_recipient(make: Make, name: str) -> None:
    receipt = make(**LEGACY[name]).send_sms(sms(FR_A, "+3361234", "+32470123456", "0033712345678"))
    assert [(r.recipient, r.accepted, r.error_code) for r in receipt.recipients] == [
        (FR_A, True, None),
        ("+3361234", False, "117"),
        ("+32470123456", False, "151"),
        ("0033712345678", True, None),
    ]
    accepted = [r for r in receipt.recipients if r.accepted]
    assert [(r.cost, r.country_code) for r in accepted] == [(Decimal("0.055"), "FR")] * 2
    assert receipt.cost == Decimal("0.11")


def test_v1_refuses_a_request_with_a_bad_number(make: Make, sandbox: Sandbox) -> None:
    with pytest.raises(RecipientRejectedError) as caught:
        make(transport="v1").send_sms(sms(FR_A, "+3361234"))
    assert caught.value.code == "117"
    assert "+3361234" in caught.value.message
    assert sandbox.records("octopush") == []


def next_year() -> int:
    return datetime.now(UTC).year + 1


@pytest.mark.parametrize(
    ("month", "paris_offset_hours"), [(1, 1), (7, 2)], ids=["winter", "summer"]
)
def test_deferred_send_lands_at_the_right_utc(
    make: Make,
    sandbox: Sandbox,
    transport: dict[str, str],
    month: int,
    paris_offset_hours: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)  # "sent" lasts long enough to see
    year = next_year()
    send_at = datetime(year, month, 14, 10, 0, tzinfo=PARIS)
    assert send_at.utcoffset() == timedelta(hours=paris_offset_hours)
    expected_utc = datetime(year, month, 14, 10 - paris_offset_hours, tzinfo=UTC)
    receipt = make(**transport).send_sms(sms(FR_A, send_at=send_at))
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == expected_utc.timestamp()
    assert rec["state"] == "scheduled"
    if transport["transport"] == "legacy":
        # GMT+1 wall time read as if UTC: 10:00 in winter, 09:00 in summer
        gmt1_wall = datetime(year, month, 14, 11 - paris_offset_hours, tzinfo=UTC)
        assert int(receipt.raw["sending_date"]) == int(gmt1_wall.timestamp())
    sandbox.core.clock.advance(expected_utc.timestamp() - sandbox.core.clock.now() + 0.1)
    assert sandbox.records("octopush")[0]["state"] == "sent"


def test_past_send_at_sends_now(
    make: Make, sandbox: Sandbox, seen: list[httpx.Request], transport: dict[str, str]
) -> None:
    make(**transport).send_sms(sms(send_at=datetime.now(UTC) - timedelta(minutes=5)))
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == rec["accepted_at"]
    body = seen[-1].content
    assert b"sending_date" not in body and b"send_at" not in body


def test_naive_send_at_and_too_many_recipients_fail_before_any_request(
    make: Make, seen: list[httpx.Request]
) -> None:
    client = make()
    with pytest.raises(ContentRejectedError) as naive:
        client.send_sms(sms(send_at=datetime(2030, 1, 1, 10)))
    assert naive.value.code == "naive_send_at"
    numbers = tuple(f"+336{i:08d}" for i in range(501))
    with pytest.raises(ContentRejectedError) as many:
        client.send_sms(sms(*numbers))
    assert many.value.code == "too_many_recipients"
    assert seen == []


def test_five_hundred_recipients_go_in_one_request(
    make: Make, sandbox: Sandbox, seen: list[httpx.Request]
) -> None:
    numbers = tuple(f"+336{i:08d}" for i in range(500))
    receipt = make(transport="v1").send_sms(sms(*numbers))
    assert len(seen) == 1
    assert len(receipt.recipients) == 500
    assert len({r["batch_id"] for r in sandbox.records("octopush")}) == 1


def test_sender_and_type_come_from_settings(make: Make, sandbox: Sandbox) -> None:
    make(sms_type="XXX", sender="Ignored").send_sms(sms())
    make(sms_type="WWW", sender="Boutique").send_sms(sms("+32470123456"))
    make(transport="v1", sender="Boutique").send_sms(sms(sender="Override"))
    extras = [r.extra for r in sandbox.core.records]
    assert [(e["sms_type"], e["sender"]) for e in extras] == [
        ("XXX", None),
        ("WWW", "Boutique"),
        ("sms_premium", "Override"),
    ]


# --- errors -----------------------------------------------------------------------------------


NATURAL_ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], type[ProviderError], str]] = [
    ("legacy-xml", {"login": ""}, {}, AuthenticationError, "108"),
    ("legacy-json", {"api_key": ""}, {}, AuthenticationError, "109"),
    ("legacy-json", {"api_key": "wrong"}, {}, AuthenticationError, "101"),
    ("v1", {"login": ""}, {}, AuthenticationError, "108"),
    ("v1", {"api_key": ""}, {}, AuthenticationError, "109"),
    ("v1", {"api_key": "wrong"}, {}, AuthenticationError, "101"),
    ("legacy-xml", {}, {"recipients": ()}, RecipientRejectedError, "103"),
    ("v1", {}, {"recipients": ()}, RecipientRejectedError, "103"),
    ("legacy-json", {}, {"text": ""}, ContentRejectedError, "107"),
    ("v1", {}, {"text": ""}, ContentRejectedError, "107"),
    ("legacy-xml", {}, {"text": "x" * 460}, ContentRejectedError, "102"),
    ("v1", {}, {"text": "x" * 1225}, ContentRejectedError, "102"),
    ("legacy-json", {"sender": "ab"}, {}, ContentRejectedError, "106"),
    ("v1", {}, {"sender": "Post-ier"}, ContentRejectedError, "106"),
    ("legacy-xml", {}, {"category": "marketing"}, ContentRejectedError, "121"),
    ("v1", {}, {"category": "marketing"}, ContentRejectedError, "121"),
    ("legacy-json", {}, {"recipients": ("+3361",)}, RecipientRejectedError, "117"),
    ("legacy-json", {}, {"recipients": ("+999123456789",)}, RecipientRejectedError, "150"),
    ("v1", {}, {"recipients": ("+999123456789",)}, RecipientRejectedError, "150"),
    ("legacy-xml", {}, {"recipients": ("+32470123456",)}, RecipientRejectedError, "151"),
    (
        "legacy-json",
        {"sms_type": "XXX"},
        {"recipients": ("+32470123456",)},
        ContentRejectedError,
        "152",
    ),
    ("v1", {"sms_type": "XXX"}, {"recipients": ("+32470123456",)}, ContentRejectedError, "152"),
]


@pytest.mark.parametrize(
    ("name", "overrides", "fields", "error", "code"),
    NATURAL_ERRORS,
    ids=[f"{n}-{c}" for n, *_, c in NATURAL_ERRORS],
)
def test_errors_the_sandbox_reaches_naturally(
    make: Make,
    sandbox: Sandbox,
    name: str,
    overrides: dict[str, Any],
    fields: dict[str, Any],
    error: type[ProviderError],
    code: str,
) -> None:
    fields = {"recipients": (FR_A,), "text": "Votre code est 1234", **fields}
    with pytest.raises(error) as caught:
        make(**TRANSPORTS[name], **overrides).send_sms(OutgoingSms(**fields))
    assert type(caught.value) is error
    assert (caught.value.provider, caught.value.code) == ("octopush", code)
    assert sandbox.records("octopush") == []


def test_marketing_with_stop_mention_is_accepted(make: Make, transport: dict[str, str]) -> None:
    receipt = make(**transport).send_sms(
        sms(text="Soldes -20% ce week-end\nSTOP au 36111", category="marketing")
    )
    assert receipt.message_id


def test_no_credit(make: Make, admin: httpx.Client, transport: dict[str, str]) -> None:
    admin.post("/balance", json={"amount": "0.05"})
    with pytest.raises(InsufficientCreditError) as caught:
        make(**transport).send_sms(sms())
    assert caught.value.code == "104"


#: every code, played by the sandbox's next-errors route, and the type it must raise
SCRIPTED = [code for code in CODES if code not in ("120", "153", "501")]


@pytest.mark.parametrize("code", SCRIPTED)
@pytest.mark.parametrize("name", list(TRANSPORTS))
def test_every_code_maps_to_its_error_type(
    make: Make, admin: httpx.Client, sandbox: Sandbox, name: str, code: str
) -> None:
    admin.post("/next-errors", json={"codes": [code]})
    expected = CODES[code].error
    assert expected is not None
    with pytest.raises(ProviderError) as caught:
        make(**TRANSPORTS[name]).send_sms(sms())
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert sandbox.records("octopush") == []


def test_the_error_table_decides_what_the_caller_does() -> None:
    kinds = {code: entry.error for code, entry in CODES.items()}
    assert kinds["120"] is None
    assert {c for c, k in kinds.items() if k is not None and issubclass(k, RetryableError)} == {
        "153",
        "501",
    }
    assert {c for c, k in kinds.items() if k is AmbiguousError} == {"500"}
    assert {c for c, k in kinds.items() if k is AuthenticationError} == {"101", "108", "109"}
    assert kinds["104"] is InsufficientCreditError
    listed = "100 101 102 103 104 106 107 108 109 112 117 120 121 123 124 125 150 151 152 153"
    assert set(kinds) == {*listed.split(), "500", "501"}
    unknown = error_for("999", {"error_code": "999"})
    assert type(unknown) is PermanentError


@pytest.mark.parametrize("code", ["501", "153"])
def test_retryable_codes_exhaust_into_a_retryable_error(
    make: Make, admin: httpx.Client, sandbox: Sandbox, transport: dict[str, str], code: str
) -> None:
    admin.post("/next-errors", json={"codes": [code] * 3})
    with pytest.raises(CongestedError) as caught:
        make(**transport).send_sms(sms())
    assert isinstance(caught.value, RetryableError)
    assert caught.value.code == code
    assert sandbox.core.request_counts["octopush"] == 3
    assert sandbox.records("octopush") == []


def test_congestion_153_is_retried(make: Make, sandbox: Sandbox, transport: dict[str, str]) -> None:
    sandbox.set_faults("octopush", script=["congestion", "ok"])
    receipt = make(**transport).send_sms(sms(request_id="cong-1"))
    assert receipt.message_id
    assert sandbox.core.request_counts["octopush"] == 2
    assert len(sandbox.records("octopush")) == 1


def test_balance_read_retries_congestion(make: Make, sandbox: Sandbox) -> None:
    sandbox.set_faults("octopush", script=["congestion", "ok"])
    assert set(make().balance()) == {"FR", "XXX"}
    assert sandbox.core.request_counts["octopush"] == 2


# --- exactly once -------------------------------------------------------------------------------


def test_duplicate_request_id_is_already_accepted(
    make: Make, sandbox: Sandbox, transport: dict[str, str]
) -> None:
    client = make(**transport)
    first = client.send_sms(sms(FR_A, FR_B, request_id="once-1"))
    balance = sandbox.octopush.account.wallet
    again = client.send_sms(sms(FR_A, FR_B, request_id="once-1"))
    assert is_already_accepted(again)
    assert again.message_id is None
    assert again.raw["request_id"] == "once-1"
    assert first.message_id and not is_already_accepted(first)
    assert len(sandbox.records("octopush")) == 2
    assert sandbox.octopush.account.wallet == balance


def test_lost_answer_is_resolved_by_resending_the_same_request_id(
    make: Make, sandbox: Sandbox, transport: dict[str, str]
) -> None:
    sandbox.set_faults("octopush", script=["drop_after"])
    client = make(**transport)
    with pytest.raises(AmbiguousError):
        client.send_sms(sms(request_id="lost-1"))
    assert len(sandbox.records("octopush")) == 1  # it did go out
    assert is_already_accepted(client.send_sms(sms(request_id="lost-1")))
    assert len(sandbox.records("octopush")) == 1
    # a refused send does not consume its request_id
    with pytest.raises(ContentRejectedError):
        client.send_sms(sms(text="", request_id="lost-2"))
    assert not is_already_accepted(client.send_sms(sms(request_id="lost-2")))


def test_scripted_500_is_ambiguous(make: Make, admin: httpx.Client) -> None:
    admin.post("/next-errors", json={"codes": ["500"]})
    with pytest.raises(AmbiguousError) as caught:
        make().send_sms(sms(request_id="amb-1"))
    assert caught.value.code == "500"


# --- signing ------------------------------------------------------------------------------------


def test_requests_are_signed(make: Make, seen: list[httpx.Request], sandbox: Sandbox) -> None:
    make(sign_requests=True).send_sms(sms(FR_A, FR_B, request_id="sig-1"))
    sent = dict(httpx.QueryParams(seen[-1].content.decode()))
    assert sent["request_keys"] == "TRMYSNQ"
    concatenated = "".join(sent[SIGNED_FIELDS[letter]] for letter in sent["request_keys"])
    assert sent["request_sha1"] == hashlib.sha1(concatenated.encode()).hexdigest()  # noqa: S324
    assert len(sandbox.records("octopush")) == 2


def test_deferred_requests_do_not_sign_the_date(
    make: Make, seen: list[httpx.Request], sandbox: Sandbox
) -> None:
    """Which field D names is unsettled (sending_date, or an sms_date no request carries):
    signing D could fail with 124 in production, so Postier leaves it out."""
    make(sign_requests=True).send_sms(sms(send_at=datetime.now(UTC) + timedelta(hours=1)))
    sent = dict(httpx.QueryParams(seen[-1].content.decode()))
    assert sent["request_keys"] == "TRMYSN"
    assert (sent["sms_mode"], "sending_date" in sent) == ("2", True)
    assert sandbox.records("octopush")[0]["state"] == "scheduled"


def test_a_deferred_signature_holds_under_either_reading_of_d(
    settings: Settings, wire: httpx.Client
) -> None:
    form = build_send_form(
        settings.octopush, sms(send_at=datetime.now(UTC) + timedelta(hours=2), request_id="d-1")
    )
    keys = form["request_keys"]
    readings = {sandbox_signature(form, keys, d_field=d) for d in D_READINGS}
    assert readings == {form["request_sha1"]}
    # and a form carrying a stray sms_date is still accepted
    url = settings.octopush.base_url + "sms/json"
    answer = parse_json_answer(wire.post(url, data={**form, "sms_date": "1"}).text)
    assert answer["error_code"] == "000"


def test_unsigned_requests(make: Make, seen: list[httpx.Request]) -> None:
    assert make(sign_requests=False).send_sms(sms()).message_id
    sent = dict(httpx.QueryParams(seen[-1].content.decode()))
    assert "request_keys" not in sent and "request_sha1" not in sent


def test_a_tampered_signed_form_is_refused(
    settings: Settings, wire: httpx.Client, make: Make
) -> None:
    form = build_send_form(settings.octopush, sms(request_id="tamper"))
    form["sms_text"] = "Un autre texte"
    url = settings.octopush.base_url + "sms/json"
    answer = parse_json_answer(wire.post(url, data=form).text)
    with pytest.raises(PermanentError) as caught:
        receipt_from_answer(answer, sms())
    assert caught.value.code == "124"


def test_unknown_request_key_letter() -> None:
    with pytest.raises(ValueError, match="unknown letter"):
        request_sha1({"sms_text": "x"}, "TX")


form_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


SIGNED_BY_POSTIER = {letter: SIGNED_FIELDS[letter] for letter in SIGNED_LETTERS}


def test_postier_signs_every_certain_letter_and_not_d() -> None:
    assert SIGNED_LETTERS == "TRMYSabcdeWNQ"
    assert set(SIGNED_FIELDS) == set(SIGNED_LETTERS) | {"D"}


@given(
    values=st.dictionaries(st.sampled_from(sorted(SIGNED_BY_POSTIER.values())), form_values),
    noise=st.dictionaries(
        st.sampled_from(["user_login", "api_key", "sending_date", "request_mode"]), form_values
    ),
)
def test_signature_covers_exactly_the_signed_fields(
    values: dict[str, str], noise: dict[str, str]
) -> None:
    signed = sign_form({**values, **noise})
    keys = signed["request_keys"]
    assert sorted(keys) == sorted(k for k, name in SIGNED_BY_POSTIER.items() if name in values)
    assert signed["request_sha1"] == request_sha1(values, keys)
    assert len(signed["request_sha1"]) == 40
    assert request_sha1({**values, **noise, "user_login": "other"}, keys) == signed["request_sha1"]
    for name in values:
        changed = {**values, name: values[name] + "!"}
        assert request_sha1(changed, keys) != signed["request_sha1"]


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=459),
    sender=st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,10}", fullmatch=True),
    recipients=st.lists(st.from_regex(r"\+33[67][0-9]{8}", fullmatch=True), min_size=1, max_size=4),
    deferred=st.booleans(),
)
def test_the_sandbox_accepts_what_the_client_signs(
    settings: Settings,
    wire: httpx.Client,
    text: str,
    sender: str,
    recipients: list[str],
    deferred: bool,
) -> None:
    message = OutgoingSms(
        recipients=tuple(recipients),
        text=text,
        sender=sender,
        request_id=uuid.uuid4().hex,
        send_at=datetime.now(UTC) + timedelta(hours=3) if deferred else None,
    )
    form = build_send_form(settings.octopush, message)
    url = settings.octopush.base_url + "sms/json"
    assert parse_json_answer(wire.post(url, data=form).text)["error_code"] == "000"
    tampered = {**form, "sms_sender": sender + "x", "request_id": uuid.uuid4().hex}
    assert parse_json_answer(wire.post(url, data=tampered).text)["error_code"] == "124"


# --- GMT+1 timestamps -----------------------------------------------------------------------------

aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
)


@given(dt=aware)
def test_octopush_timestamp_is_unix_time_plus_one_hour(dt: datetime) -> None:
    ts = to_octopush_timestamp(dt)
    assert ts == math.floor(dt.timestamp()) + 3600
    gmt1_wall = dt.astimezone(timezone(timedelta(hours=1))).replace(tzinfo=UTC)
    assert ts == math.floor(gmt1_wall.timestamp())
    assert ts == to_octopush_timestamp(dt.astimezone(PARIS))
    assert from_octopush_timestamp(ts) == dt.astimezone(UTC).replace(microsecond=0)


@given(
    wall=st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 1, 1)).filter(
        lambda w: w.replace(tzinfo=PARIS).utcoffset() == w.replace(tzinfo=PARIS, fold=1).utcoffset()
    )
)
def test_paris_summer_time_is_one_hour_off_paris_wall_time(wall: datetime) -> None:
    """GMT+1 equals Paris wall time in winter only; in summer it is an hour behind."""
    paris = wall.replace(tzinfo=PARIS, microsecond=0)
    wall_as_utc = int(wall.replace(tzinfo=UTC, microsecond=0).timestamp())
    summer = paris.utcoffset() == timedelta(hours=2)
    assert to_octopush_timestamp(paris) == wall_as_utc - (3600 if summer else 0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_octopush_timestamp(datetime(2027, 1, 14, 10))


# --- balance --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LEGACY))
def test_legacy_balance_decreases(make: Make, name: str) -> None:
    client = make(**LEGACY[name])
    before = client.balance()
    assert set(before) == {"FR", "XXX"}
    client.send_sms(sms(FR_A, FR_B))
    after = client.balance()
    assert after["FR"] == before["FR"] - 2
    assert after["XXX"] < before["XXX"]


def test_v1_balance_decreases(make: Make) -> None:
    client = make(transport="v1")
    before = client.balance()
    client.send_sms(sms(FR_A, FR_B))
    assert client.balance() == {"euro": before["euro"] - Decimal("0.11")}


def test_balance_with_bad_credentials(make: Make, transport: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError):
        make(**transport, api_key="wrong").balance()


def test_credit_is_the_account_credit_in_euros(
    make: Make, transport: dict[str, str], seen: list[httpx.Request]
) -> None:
    client = make(**transport)
    before = client.credit()
    assert before == Decimal(str(SANDBOX_ACCOUNTS.octopush_balance))
    client.send_sms(sms(FR_A, FR_B))
    assert client.credit() == before - Decimal("0.11")
    if transport["transport"] == "legacy":
        assert seen[-1].url.path.rstrip("/").removesuffix("/json").endswith("/api/credit")
    with pytest.raises(AuthenticationError):
        make(**transport, api_key="wrong").credit()


# --- simulation mode ------------------------------------------------------------------------------


def test_simulation_mode_validates_without_sending_or_charging(
    make: Make, sandbox: Sandbox, transport: dict[str, str], seen: list[httpx.Request]
) -> None:
    client = make(**transport, simulation_mode=True)
    before = client.credit()
    receipt = client.send_sms(sms(FR_A, FR_B, request_id="simu-1"))
    assert receipt.simulated
    assert receipt.cost == Decimal("0.11")
    assert sandbox.records("octopush") == []
    assert client.credit() == before
    if transport["transport"] == "legacy":
        assert dict(httpx.QueryParams(seen[-2].content.decode()))["request_mode"] == "simu"
    # validated like a real send: a refusal is still a refusal
    with pytest.raises(ContentRejectedError):
        client.send_sms(sms(text="", request_id="simu-2"))
    # the request_id is not used up: the real send goes out
    real = make(**transport).send_sms(sms(FR_A, FR_B, request_id="simu-1"))
    assert not real.simulated and not is_already_accepted(real)
    assert len(sandbox.records("octopush")) == 2


# --- credentials --------------------------------------------------------------------------------


def test_credentials_never_in_a_url(
    make: Make, settings: Settings, seen: list[httpx.Request], transport: dict[str, str]
) -> None:
    client = make(**transport)
    client.send_sms(sms(FR_A, FR_B, request_id="cred-1"))
    client.balance()
    login = settings.octopush.login
    key = settings.octopush.api_key.get_secret_value()
    assert len(seen) == 2
    for request in seen:
        url = str(request.url)
        assert login not in url and key not in url
        assert quote(login, safe="") not in url and quote(key, safe="") not in url
        assert request.url.query == b""
    if transport["transport"] == "v1":
        assert seen[0].headers["api-key"] == key
        assert key.encode() not in seen[0].content
    else:
        assert dict(httpx.QueryParams(seen[0].content.decode()))["api_key"] == key


# --- receipts and inbound -----------------------------------------------------------------------


def test_delivery_status_is_not_pulled(make: Make, transport: dict[str, str]) -> None:
    with pytest.raises(UnsupportedFeatureError):
        make(**transport).delivery_status("api110000000001")


def test_receipts_from_the_sandbox_parse_to_states(
    make: Make,
    admin: httpx.Client,
    sandbox: Sandbox,
    transport: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)  # "sent" lasts long enough to see
    client = make(**transport)
    receipt = client.send_sms(sms(FR_A, FR_BOUNCE))
    bodies = admin.get("/receipts", params={"ticket": receipt.message_id}).json()
    reports = [client.parse_receipt(body) for body in bodies]
    assert [r.state for r in reports] == [DeliveryState.SENT] * 2
    assert [r.provider_status for r in reports] == ["ACK"] * 2
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 1)
    bodies = admin.get("/receipts", params={"ticket": receipt.message_id}).json()
    reports = [client.receipts_from_callback(body) for body in bodies]
    assert [(r.message_id, r.state) for r in reports] == [
        (f"{receipt.message_id}:{FR_A}", DeliveryState.DELIVERED),
        (f"{receipt.message_id}:{FR_BOUNCE}", DeliveryState.UNDELIVERED),
    ]
    at = reports[0].at
    assert at is not None and at.tzinfo is not None
    assert at.timestamp() == pytest.approx(sandbox.core.records[0].final_at(30.0), abs=1)
    assert reports[0].raw == bodies[0]


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("ACK", DeliveryState.SENT),
        ("DELIVERED", DeliveryState.DELIVERED),
        ("NOT_DELIVERED", DeliveryState.UNDELIVERED),
        ("BAD_DESTINATION", DeliveryState.UNDELIVERED),
        ("BLACKLISTED_NUMBER", DeliveryState.UNDELIVERED),
        ("NOT_ALLOWED", DeliveryState.UNDELIVERED),
        ("UNKNOWN_DELIVERY", DeliveryState.UNKNOWN),
        ("UNDEFINED", DeliveryState.UNKNOWN),
        ("SOMETHING_NEW", DeliveryState.UNKNOWN),
        ("delivered", DeliveryState.DELIVERED),
    ],
)
def test_receipt_statuses(status: str, state: DeliveryState) -> None:
    report = parse_receipt({"message_id": "m1", "number": FR_A, "status": status})
    assert (report.state, report.provider_status, report.at) == (state, status, None)
    assert receipts_from_callback is parse_receipt


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-07-14T08:00:00+00:00", datetime(2027, 7, 14, 8, tzinfo=UTC)),
        ("2027-07-14T10:00:00+02:00", datetime(2027, 7, 14, 8, tzinfo=UTC)),
        ("2027-07-14T08:00:00Z", datetime(2027, 7, 14, 8, tzinfo=UTC)),
        ("2027-07-14 08:00:00", datetime(2027, 7, 14, 8, tzinfo=UTC)),
        ("1815897600", datetime(2027, 7, 18, 8, tzinfo=UTC)),
        ("not a date", None),
    ],
)
def test_receipt_dates(value: str, expected: datetime | None) -> None:
    report = parse_receipt({"message_id": "m", "status": "DELIVERED", "delivery_date": value})
    assert report.at == expected


def test_malformed_callbacks_are_refused() -> None:
    with pytest.raises(ValueError, match="message_id"):
        parse_receipt({"number": FR_A, "status": "ACK"})
    with pytest.raises(ValueError, match="number"):
        parse_inbound({"message_id": "x", "text": "hi"})


def test_inbound_from_the_sandbox(make: Make, admin: httpx.Client) -> None:
    body = admin.post("/inbound", json={"number": FR_A, "text": "Oui, merci"}).json()
    message = make().parse_inbound(body)
    assert (message.provider, message.sender, message.text) == (
        Provider.OCTOPUSH,
        FR_A,
        "Oui, merci",
    )
    assert message.message_id == body["message_id"]
    assert message.channel == "sms"
    assert message.received_at is not None and message.received_at.tzinfo is not None


# --- answer quirks ------------------------------------------------------------------------------

DOCS_JSON = (
    '{"error_code":"000","cost":0.055,"balance":6.93,"ticket":"api110000000021",'
    '"sending_date":1501503703,"number_of_sendings":1,"currency_code":"\\u20ac","failures":[],'
    '"successs":{"recipient":33601010101,"country_code":"FR","cost":0.550,"sms_needed":1}}'
)
DOCS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<octopush>
<error_code>000</error_code>
<cost>0.55</cost>
<balance>6.93</balance>
<ticket>api110000000021</ticket>
<sending_date>1455975613</sending_date>
<number_of_sendings>1</number_of_sendings>
<currency_code>€</currency_code>
<successs>
<success>
<recipient>+33601010101</recipient>
<country_code>FR</country_code>
<cost>0.055</cost>
</success>
</successs>
<failures/>
</octopush>"""


def test_docs_json_answer_with_a_single_successs_object() -> None:
    answer = parse_json_answer(DOCS_JSON)
    receipt = receipt_from_answer(answer, sms("+33601010101"))
    assert receipt.message_id == "api110000000021"
    (result,) = receipt.recipients
    assert (result.accepted, result.cost, result.parts, result.country_code) == (
        True,
        Decimal("0.55"),
        1,
        "FR",
    )
    assert answer["currency_code"] == "€"


def test_docs_xml_answer() -> None:
    answer = parse_xml_answer(DOCS_XML)
    receipt = receipt_from_answer(answer, sms("0033601010101"))
    assert receipt.message_id == "api110000000021"
    assert receipt.cost == Decimal("0.55")
    assert receipt.recipients[0].cost == Decimal("0.055")
    assert answer["sending_date"] == "1455975613"


@pytest.mark.parametrize("prefix", ["\n", "  \r\n\t", "\ufeff", "\ufeff\n "])
def test_xml_answer_with_whitespace_before_the_declaration(prefix: str) -> None:
    answer = parse_xml_answer(prefix + DOCS_XML)
    assert answer["ticket"] == "api110000000021"


def test_legacy_api_reads_an_xml_answer_led_by_whitespace(make: Make) -> None:
    api = make(**LEGACY["legacy-xml"]).api
    assert isinstance(api, LegacyApi)
    answer = api._parse(httpx.Response(200, text="\r\n  " + DOCS_XML), changes_state=True)
    assert answer["error_code"] == "000"


def test_xml_with_a_dtd_is_refused() -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><octopush>&a;</octopush>'
    with pytest.raises(ValueError, match="DTD"):
        parse_xml_answer(evil)


def test_wrong_endpoint_is_permanent(make: Make) -> None:
    client = make(base_url=make().settings.base_url + "nowhere/")
    with pytest.raises(PermanentError) as caught:
        client.send_sms(sms())
    assert caught.value.code == "404"


@pytest.mark.parametrize("name", list(LEGACY))
def test_unreadable_answer_is_ambiguous_for_a_send_retryable_for_a_read(
    make: Make, name: str
) -> None:
    api = make(**LEGACY[name]).api
    assert isinstance(api, LegacyApi)
    garbage = httpx.Response(200, text="<html>maintenance</html>")
    with pytest.raises(AmbiguousError):
        api._parse(garbage, changes_state=True)
    with pytest.raises(RetryableError):
        api._parse(garbage, changes_state=False)
