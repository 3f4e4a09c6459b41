"""Beat's heartbeat in Redis: written at most once per interval, never raising."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from postier.dispatch.heartbeat import BEAT_KEY, BeatHeartbeat, last_publish


def test_publishes_are_recorded_at_most_once_per_interval(redis_client: redis.Redis) -> None:
    assert last_publish(redis_client) is None
    heartbeat = BeatHeartbeat(redis_client, min_interval=1.0)
    assert heartbeat.beat(now=1000.0)
    assert last_publish(redis_client) == 1000.0
    assert not heartbeat.beat(now=1000.5)  # within the interval: no write
    assert last_publish(redis_client) == 1000.0
    assert heartbeat.beat(now=1001.0)
    assert last_publish(redis_client) == 1001.0


def test_a_redis_that_does_not_answer_never_stops_beat() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    assert not BeatHeartbeat(dead).beat(now=5.0)


def test_an_unreadable_value_is_no_heartbeat(redis_client: redis.Redis) -> None:
    redis_client.set(BEAT_KEY, "soon")
    assert last_publish(redis_client) is None
