"""Lanes: which lane a message takes, and that every publish puts it on its lane's queue."""

from __future__ import annotations

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.config import Settings
from postier.dispatch.batching import send_chunk
from postier.dispatch.lanes import lane_for, queue_for, reserve_for
from postier.dispatch.polling import release_due_messages, republish_unpublished
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ledger.models import Lane, MessageStatus
from postier.rules.errors import RuleViolation
from postier.sandbox import Sandbox
from producers.messages import Producer, SmsRequest
from tests.dispatch.conftest import Ledger, ago, queued_tasks

T, B = Lane.TRANSACTIONAL, Lane.BULK


@pytest.mark.parametrize(
    ("category", "count", "priority", "expected"),
    [
        ("notification", 1, None, T),
        ("notification", 20, None, T),
        ("notification", 21, None, B),
        ("marketing", 1, None, B),
        ("marketing", 1, "transactional", T),
        ("notification", 1, "bulk", B),
        ("notification", 10_000, "transactional", T),
    ],
)
def test_lane_for_follows_category_size_and_priority(
    category: str, count: int, priority: str | None, expected: Lane
) -> None:
    assert lane_for(category, count=count, threshold=20, priority=priority) is expected


def test_an_unknown_priority_is_refused_naming_the_field() -> None:
    with pytest.raises(RuleViolation) as caught:
        lane_for("notification", threshold=20, priority="urgent")
    assert caught.value.field == "priority" and caught.value.rule == "priority.value"


def test_each_lane_has_its_own_queue() -> None:
    assert queue_for(T) == tasknames.QUEUE_SEND
    assert queue_for(B) == tasknames.QUEUE_BULK
    assert set(tasknames.TRANSACTIONAL_QUEUES).isdisjoint(tasknames.BULK_QUEUES)


@given(burst=st.integers(1, 10_000), share=st.floats(0.0, 0.9))
def test_bulk_always_leaves_at_least_one_token_and_never_the_whole_burst(
    burst: int, share: float
) -> None:
    reserve = reserve_for(B, burst, share)
    assert reserve_for(T, burst, share) == 0
    if burst == 1:
        assert reserve == 0  # nothing to share: bulk and codes take turns
    else:
        assert 1 <= reserve <= burst - 1


def test_producer_single_calls_are_transactional_and_marketing_is_bulk(
    dispatch_settings: Settings, engine: Engine
) -> None:
    producer = Producer(dispatch_settings, engine=engine)
    assert producer.build_sms(SmsRequest("0612345678", "Code 1"))["lane"] is T
    assert producer.build_sms(SmsRequest("0612345678", "Soldes", category="marketing"))["lane"] is B
    assert producer.build_sms(SmsRequest("0612345678", "Code", priority="bulk"))["lane"] is B


def test_send_many_above_the_threshold_goes_bulk_except_rows_that_chose(
    dispatch_settings: Settings, engine: Engine, celery_app: object, redis_client: redis.Redis
) -> None:
    producer = Producer(dispatch_settings, engine=engine, celery_app=celery_app)  # type: ignore[arg-type]
    threshold = dispatch_settings.dispatch.bulk_threshold
    small = producer.send_many(
        [SmsRequest(f"06123400{i:02d}", f"Code {i}") for i in range(threshold)]
    )
    assert len(queued_tasks(redis_client, tasknames.QUEUE_SEND)) == threshold
    assert queued_tasks(redis_client, tasknames.QUEUE_BULK) == []
    redis_client.flushdb()

    requests = [SmsRequest(f"06123500{i:02d}", f"Texte {i}") for i in range(threshold + 1)]
    requests.append(SmsRequest("0612360000", "Votre code : 1", priority="transactional"))
    big = producer.send_many(requests)
    bulk_ids = {i for t in queued_tasks(redis_client, tasknames.QUEUE_BULK) for i in _ids(t.args)}
    code_ids = {i for t in queued_tasks(redis_client, tasknames.QUEUE_SEND) for i in _ids(t.args)}
    assert bulk_ids == {h.id for h in big.accepted[:-1]}
    assert code_ids == {big.accepted[-1].id}
    assert len(small.accepted) == threshold


def _ids(args: list[object]) -> list[str]:
    first = args[0]
    return [str(i) for i in first] if isinstance(first, list) else [str(first)]


def test_republish_and_release_put_each_row_back_on_its_own_lane(
    publisher: Publisher,
    dispatcher: Dispatcher,
    ledger: Ledger,
    redis_client: redis.Redis,
) -> None:
    code = ledger.add_sms("0612345601", lane=T, updated_at=ago(600))
    bulk = ledger.add_sms("0612345602", lane=B, updated_at=ago(600))
    assert republish_unpublished(dispatcher, publisher) == 2
    assert [t.args for t in queued_tasks(redis_client, tasknames.QUEUE_SEND)] == [[code]]
    assert [_ids(t.args) for t in queued_tasks(redis_client, tasknames.QUEUE_BULK)] == [[bulk]]
    redis_client.flushdb()

    later_code = ledger.add_sms(
        "0612345603", lane=T, status=MessageStatus.SCHEDULED, send_at=ago(1)
    )
    later_bulk = ledger.add_sms(
        "0612345604", lane=B, status=MessageStatus.SCHEDULED, send_at=ago(1)
    )
    assert release_due_messages(dispatcher, publisher) == 2
    sent_on = {
        queue: {i for t in queued_tasks(redis_client, queue) for i in _ids(t.args)}
        for queue in (tasknames.QUEUE_SEND, tasknames.QUEUE_BULK)
    }
    assert sent_on == {tasknames.QUEUE_SEND: {later_code}, tasknames.QUEUE_BULK: {later_bulk}}


def test_a_failover_goes_back_on_the_lane_it_came_from(
    dispatcher: Dispatcher,
    publisher: Publisher,
    ledger: Ledger,
    sandbox: Sandbox,
    redis_client: redis.Redis,
) -> None:
    """Primotexto down on the last attempt: the bulk row fails over, republished on bulk."""
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    last = dispatcher.settings.dispatch.max_attempts - 1
    message_id = ledger.add_sms("0612345605", provider="primotexto", lane=B, attempts=last)
    result = send_chunk(dispatcher, [message_id])
    assert result.republish == [message_id]
    publisher.publish(result.republish)
    assert queued_tasks(redis_client, tasknames.QUEUE_SEND) == []
    assert [_ids(t.args) for t in queued_tasks(redis_client, tasknames.QUEUE_BULK)] == [
        [message_id]
    ]
    assert ledger.get(message_id).provider != "primotexto"
