"""The global rate limit of each provider account, shared by every worker through Redis.

docs/ARCHITECTURE.md ("Decisions, and why"): rate limits are global per provider account, kept
in Redis, in one Lua script that reads Redis ``TIME``; Celery's ``rate_limit`` is per worker and
is not used. This module is that script: GCRA (the generic cell rate algorithm), which keeps one
number per account, the theoretical arrival time (TAT) of the next request.

With ``rate`` requests per second the emission interval is ``T = 1 / rate``; a request of
``cost`` tokens is admitted when ``max(TAT, now) + cost*T - burst*T <= now``, which lets
``burst`` requests through at once after an idle spell and then one every ``T``. Over any
interval of length ``t`` at most ``burst + rate*t`` tokens are admitted.

- Time is the server's (``TIME``), so workers on hosts with skewed clocks share one limit.
- ``T`` is rounded up to a whole microsecond: the enforced rate is never above the configured.
- A refused request writes nothing; an admitted one sets the key with ``PX`` equal to how long
  its TAT lies in the future, so an idle account leaves no key behind.
- Replication: the script calls ``TIME`` and then writes. Redis >= 5 replicates scripts by their
  effects by default (and 7.x always does), so no ``redis.replicate_commands()`` is needed.
- No account e-mail or secret appears in a key: :func:`limiter_key` hashes the account id.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from typing import Final

import redis

__all__ = ["DEFAULT_PREFIX", "RateLimiter", "limiter_key"]

DEFAULT_PREFIX: Final = "postier:rl"

_PROVIDER_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")

# KEYS[1]: the account's TAT key. ARGV: emission interval (µs), burst, tokens wanted, tokens of
# the burst kept in reserve (left for higher-priority callers), partial (1: take as many of the
# wanted as fit now; 0: all or nothing).
# Returns {tokens taken, microseconds until the next (or the wanted) token would fit}; a call
# that takes nothing writes nothing.
# Numbers are formatted by hand: Redis turns a Lua number argument into "%.14g", which would
# round a microsecond timestamp (16 digits).
_GCRA_LUA: Final = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local partial = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local room = burst - reserve
local fit = math.floor((now - tat) / interval) + room
local take = want
if fit < want then
  if partial == 1 and fit >= 1 then
    take = fit
  else
    local need = want
    if partial == 1 then
      need = 1
    end
    return {0, string.format('%.0f', tat + (need - room) * interval - now)}
  end
end
local new_tat = tat + take * interval
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%d', ttl_ms))
return {take, '0'}
"""


def limiter_key(provider: str, account: str) -> str:
    """The limiter key of one provider account, without the account id in clear.

    Account ids are e-mails (Afilnet ``user``) or logins (Octopush ``user_login``): they are
    personal data, and Redis keys show in monitoring tools, so only a digest goes in the key.
    """
    if not _PROVIDER_NAME.match(provider):
        raise ValueError(f"provider name must match {_PROVIDER_NAME.pattern}: {provider!r}")
    digest = hashlib.blake2b(
        account.encode("utf-8"), digest_size=12, person=b"postier-rl-acct"
    ).hexdigest()
    return f"{provider}:{digest}"


class RateLimiter:
    """GCRA rate limiter whose state lives in Redis and is shared by every process using it.

    The Lua script is registered once per instance (``register_script``: ``EVALSHA`` with a
    reload on ``NOSCRIPT``), so create one limiter per Redis client and keep it.
    """

    def __init__(self, redis: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA_LUA)

    @property
    def prefix(self) -> str:
        """The prefix of every key this limiter writes (``<prefix>:<key>``)."""
        return self._prefix

    def redis_key(self, key: str) -> str:
        """The Redis key holding ``key``'s state."""
        return f"{self._prefix}:{key}"

    def _run(
        self, key: str, rate: float, burst: int, want: int, reserve: int, *, partial: bool
    ) -> tuple[int, float]:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        if not 0 <= reserve < burst:
            raise ValueError(
                f"reserve must be between 0 and burst - 1 ({burst - 1}), got {reserve!r}"
            )
        interval_us = math.ceil(1_000_000 / rate)
        taken, wait_us = self._script(
            keys=[self.redis_key(key)],
            args=[interval_us, burst, want, reserve, 1 if partial else 0],
        )
        return int(taken), max(0, int(wait_us)) / 1_000_000

    def acquire(
        self, key: str, rate: float, burst: int, cost: int = 1, *, reserve: int = 0
    ) -> float:
        """Take ``cost`` tokens of ``key`` if they are available now.

        Returns 0.0 when taken, else the seconds until they would be (and takes nothing).
        ``rate`` is tokens per second, ``burst`` the most that may go at once; ``reserve``
        tokens of the burst are left untouched for callers with a smaller reserve (the
        transactional lane takes with none, bulk with some: ``postier.dispatch.lanes``).
        """
        if not 1 <= cost <= burst - reserve:
            raise ValueError(
                f"cost must be between 1 and burst - reserve ({burst - reserve}), got {cost!r}"
            )
        taken, wait = self._run(key, rate, burst, cost, reserve, partial=False)
        return 0.0 if taken else max(wait, 1e-6)

    def take(
        self, key: str, rate: float, burst: int, want: int, *, reserve: int = 0
    ) -> tuple[int, float]:
        """Take as many of ``want`` tokens of ``key`` as are available now, in one call.

        Returns ``(taken, wait)``: ``taken`` tokens were taken (0 to ``want``); when none could
        be, ``wait`` is the seconds until one could. A chunk of messages asks once for all of
        its requests instead of once per message.
        """
        if want < 1:
            raise ValueError(f"want must be at least 1, got {want!r}")
        taken, wait = self._run(key, rate, burst, want, reserve, partial=True)
        return taken, (0.0 if taken else max(wait, 1e-6))

    def wait(
        self, key: str, rate: float, burst: int, *, max_block: float = 1.0, reserve: int = 0
    ) -> float:
        """Take one token of ``key``, sleeping for it when the wait is at most ``max_block``.

        Returns 0.0 once a token is taken. Returns the wait, without taking anything, when it is
        longer than ``max_block`` — the worker then re-queues the send for later instead of
        holding its slot (and without spending a retry). Under contention another worker may
        win the token a sleep was waiting for; sleeping stops after ``max_block`` seconds in all,
        and the last wait is returned (positive, possibly ≤ ``max_block``).
        """
        deadline = time.monotonic() + max_block
        while True:
            delay = self.acquire(key, rate, burst, reserve=reserve)
            if delay == 0.0:
                return 0.0
            if delay > max_block or time.monotonic() + delay > deadline:
                return delay
            time.sleep(delay)
