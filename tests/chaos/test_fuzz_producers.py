"""Bad input at the producers API: arbitrary numbers, texts, senders, URLs, keys, options.

Property: every call either raises ``RuleViolation`` (a clear error naming field and rule)
and stores nothing, or stores exactly what it returns; never another exception, never a
half-stored batch or campaign. The ledger is a SQLite file; tasks go to the test Redis
database (nothing consumes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postier.config import Settings
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import MessageStatus, campaigns_table, messages_table
from postier.rules.errors import RuleViolation
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from producers.campaigns import CampaignProducer
from producers.messages import Producer, SmsRequest

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: numbers as people type them, valid or not
phone_like = st.one_of(
    st.text(max_size=24),
    st.from_regex(r"\A[+0]?[0-9 ().-]{0,18}\Z"),
    st.sampled_from(
        ["0612345678", "+33612345678", "06 12 34 56 78", "+32470123456", "0033612345678", "+1"]
    ),
)
texts = st.one_of(
    st.text(max_size=700),
    st.sampled_from(["", " ", "Bonjour", "é" * 200, "€[]{}", "😀" * 80, "STOP au 36111", "\x00"]),
)
offsets = st.one_of(
    st.none(), st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
)
instants = st.one_of(
    st.none(),
    st.builds(
        lambda when, tz: when.replace(tzinfo=tz),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        offsets,
    ),
)
keys = st.one_of(st.none(), st.text(max_size=260))
providers = st.sampled_from([None, "primotexto", "octopush", "afilnet", "", "nope"])
categories = st.sampled_from(["notification", "marketing", "", "promo"])
senders = st.one_of(st.none(), st.text(max_size=14), st.sampled_from(["Postier", "12345", "A"]))
urls = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "https://example.com/a.pdf",
            "http://example.com/x.jpg",
            "ftp://example.com/a.pdf",
            "https://[::1/x.png",
            "https://example.com/noext",
            "javascript:alert(1)",
            "https://exa mple.com/a.png",
        ]
    ),
    st.builds(lambda path: f"https://example.com/{path}", st.text(max_size=30)),
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    ledger = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/ledger.db")
    upgrade(ledger)
    yield ledger
    ledger.dispose()


@pytest.fixture(scope="module")
def fuzz_settings(redis_test_url: str) -> Iterator[Settings]:
    base = Settings(_env_file=None, redis_url=redis_test_url)
    yield base.pointed_at_sandbox("http://127.0.0.1:9")
    client = redis.Redis.from_url(redis_test_url)
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def producer(fuzz_settings: Settings, engine: Engine) -> Producer:
    return Producer(fuzz_settings, engine=engine)


def count_rows(engine: Engine, table: Any = messages_table) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def stored(engine: Engine, message_id: str) -> dict[str, Any]:
    with session_scope(engine) as session:
        row = session.execute(select(messages_table).where(messages_table.c.id == message_id)).one()
    return dict(row._mapping)


@FUZZ
@given(
    to=phone_like,
    text=texts,
    sender=senders,
    category=categories,
    provider=providers,
    send_at=instants,
    key=keys,
)
def test_send_sms_refuses_clearly_or_stores_what_it_returns(
    producer: Producer,
    engine: Engine,
    to: str,
    text: str,
    sender: str | None,
    category: Any,
    provider: str | None,
    send_at: datetime | None,
    key: str | None,
) -> None:
    before = count_rows(engine)
    try:
        handle = producer.send_sms(
            to,
            text,
            sender=sender,
            category=category,
            send_at=send_at,
            idempotency_key=key,
            provider=provider,
        )
    except RuleViolation as exc:
        assert exc.field and exc.rule, exc
        assert count_rows(engine) == before
        return
    row = stored(engine, handle.id)
    assert count_rows(engine) == before + (0 if handle.duplicate else 1)
    assert str(row["recipient"]).startswith("+") and str(row["recipient"])[1:].isdigit()
    if not handle.duplicate:
        assert row["status"] in (MessageStatus.QUEUED, MessageStatus.SCHEDULED)
        if (row["payload"] or {}).get("text_policy"):
            # the route's text policy changed it (Primotexto transliterates by default): the
            # change is recorded on the message, and the body is in the route's alphabet
            policy = row["payload"]["text_policy"]
            assert policy["changes"], row["payload"]
            written = policy["original"]
            assert written.startswith(text.rstrip()) or text in written
        else:
            assert row["body"].startswith(text.rstrip()) or text in row["body"]
        assert row["provider"] in ("primotexto", "octopush", "afilnet")


@FUZZ
@given(
    batch=st.lists(
        st.builds(
            SmsRequest,
            to=phone_like,
            text=texts,
            sender=senders,
            category=categories,
            send_at=instants,
            idempotency_key=keys,
            provider=providers,
        ),
        max_size=12,
    )
)
def test_send_many_stores_exactly_the_accepted(
    producer: Producer, engine: Engine, batch: list[SmsRequest]
) -> None:
    before = count_rows(engine)
    result = producer.send_many(batch)
    positions = [index for index, _ in result.rejected]
    assert len(result.accepted) + len(result.rejected) == len(batch)
    assert len(set(positions)) == len(positions)
    assert all(0 <= index < len(batch) for index in positions)
    assert all(isinstance(exc, RuleViolation) and exc.rule for _, exc in result.rejected)
    new = {handle.id for handle in result.accepted if not handle.duplicate}
    assert count_rows(engine) == before + len(new)
    for handle in result.accepted:
        assert stored(engine, handle.id)["id"] == handle.id


@FUZZ
@given(
    to=phone_like,
    url=urls,
    file_type=st.sampled_from([None, "image", "video", "document", "audio", ""]),
    caption=st.one_of(st.none(), texts),
    thumb=st.one_of(st.none(), urls),
)
def test_whatsapp_file_refuses_clearly_or_stores(
    producer: Producer,
    engine: Engine,
    to: str,
    url: str,
    file_type: str | None,
    caption: str | None,
    thumb: str | None,
) -> None:
    before = count_rows(engine)
    try:
        handle = producer.send_whatsapp_file(
            to, url, file_type=file_type, caption=caption, thumb_url=thumb
        )
    except RuleViolation as exc:
        assert exc.rule
        assert count_rows(engine) == before
        return
    row = stored(engine, handle.id)
    assert row["payload"]["file_url"] == url
    assert row["payload"]["platform_id"] == SANDBOX_ACCOUNTS.afilnet_platform_id


header_values = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["file", "latitude", "longitude", "name", "address", "x"]),
        st.one_of(st.text(max_size=20), st.floats(allow_nan=True), st.integers()),
        max_size=5,
    ),
    st.builds(lambda url: {"file": url}, urls),
)


@FUZZ
@given(
    to=phone_like,
    template=st.one_of(st.text(max_size=10), st.sampled_from(["1", "42"])),
    params=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4),
    header=header_values,
)
def test_whatsapp_template_refuses_clearly_or_stores(
    producer: Producer,
    engine: Engine,
    to: str,
    template: str,
    params: dict[str, str],
    header: dict[str, Any] | None,
) -> None:
    before = count_rows(engine)
    try:
        handle = producer.send_whatsapp_template(to, template, params=params, header=header)
    except RuleViolation as exc:
        assert exc.rule
        assert count_rows(engine) == before
        return
    assert stored(engine, handle.id)["payload"]["template_id"] == template


csv_cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@FUZZ
@given(
    name=st.text(max_size=40),
    text=texts,
    rows=st.lists(st.lists(csv_cells, min_size=1, max_size=3), max_size=6),
    columns=st.dictionaries(st.sampled_from(["mobile", "prenom", "x"]), csv_cells, max_size=2),
    provider=providers,
    notification=st.booleans(),
)
def test_campaign_create_refuses_clearly_or_stores_one_campaign(
    fuzz_settings: Settings,
    engine: Engine,
    name: str,
    text: str,
    rows: list[list[str]],
    columns: dict[str, str],
    provider: str | None,
    notification: bool,
) -> None:
    producer = CampaignProducer(fuzz_settings, engine=engine)
    csv = "\n".join(",".join(row) for row in rows)
    before = count_rows(engine, campaigns_table)
    try:
        handle = producer.create(
            name,
            text=text,
            csv=csv,
            csv_columns=columns,
            provider=provider,
            category="notification" if notification else "marketing",
        )
    except RuleViolation as exc:
        assert exc.rule
        assert count_rows(engine, campaigns_table) == before
        return
    assert count_rows(engine, campaigns_table) == before + 1
    assert handle.id


def test_a_naive_send_at_is_a_clear_error(producer: Producer) -> None:
    later = datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(RuleViolation) as caught:
        producer.send_sms("0612345678", "Bonjour", send_at=later.replace(tzinfo=None))
    assert caught.value.rule == "send_at.timezone"
    assert producer.send_sms("0612345678", "Bonjour", send_at=later).status == "scheduled"
