"""Beat's heartbeat: when beat last handed a periodic task to the broker, kept in Redis.

Beat only sends; the workers run what it sends. If beat stops (its process died, its host is
gone, two replicas fought and both lost), nothing is released, polled or reaped, and nothing
else says so: the workers stay healthy and idle. Beat's process records the time of its last
publish in one Redis key (``after_task_publish``, at most once per ``min_interval``); every
worker's ``/metrics`` serves it (``postier_beat_last_publish_timestamp_seconds``), and an
alert fires when it is older than a few periods of the fastest pass (``release_interval``).
"""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger(__name__)

#: unix time of beat's last publish
BEAT_KEY = "postier:beat:last_publish"


class BeatHeartbeat:
    """Records beat's publishes in Redis, at most once per ``min_interval`` seconds.

    A Redis error is logged and forgotten: the heartbeat must never stop beat from sending.
    """

    def __init__(self, client: redis.Redis, min_interval: float = 1.0) -> None:
        self.client = client
        self.min_interval = min_interval
        self._last = float("-inf")
        self._lock = threading.Lock()

    def beat(self, now: float | None = None) -> bool:
        """Note a publish at ``now`` (unix time); True when it was written to Redis."""
        now = time.time() if now is None else now
        with self._lock:
            if now - self._last < self.min_interval:
                return False
            self._last = now
        try:
            self.client.set(BEAT_KEY, f"{now:.3f}")
        except (redis.RedisError, OSError) as exc:
            log.warning("beat heartbeat not written", extra={"error": str(exc)})
            return False
        return True


def last_publish(client: redis.Redis) -> float | None:
    """Unix time of beat's last recorded publish; None when beat never wrote one."""
    value = client.get(BEAT_KEY)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


__all__ = ["BEAT_KEY", "BeatHeartbeat", "last_publish"]
