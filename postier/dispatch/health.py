"""Provider health routing: an outage costs seconds once, not every message.

Each provider account has a health state shared by every worker and beat through Redis:

- ``closed`` (healthy): messages go to their provider. Retryable failures (5xx, timeouts, 429,
  connection refused: ``RetryableError`` and ``AmbiguousError``) and successes are counted in
  one-second buckets over a sliding window of ``health.window`` seconds; when the failures
  reach ``health.min_failures`` and ``health.failure_ratio`` of the outcomes, it opens.
- ``open``: nothing is sent to the provider for ``health.cool_down`` seconds. An account error
  (credentials refused, no credit) opens it at once, for ``health.account_cool_down``.
- ``half_open``: after the cool-down, ``health.probes`` sends go to the provider; a success
  closes it, a failure opens it again. A probe that never reports (its worker died) is given
  up after one cool-down and another is let through.

While a provider is not closed, a message for it is *rerouted* to the routing's fallback
(``routing.health_fallback_for``) without spending an attempt: two ledger transitions in one
transaction (``queued → scheduled → queued``, provider changed, attempts reset) whose event
says ``reroute <provider> -> <fallback>``, and a log line. A message the fallback cannot take
(WhatsApp has none; marketing is not moved onto the notification route; the fallback is
unhealthy too) *waits* as ``scheduled`` until the provider may be probed again. Health
reroutes do not add to ``tried_providers``: the provider is skipped for a while, not given up.

The state is served in the workers' metrics (``postier_provider_health``), in
``postier health`` and in a log line at each change. Time is Redis's (``TIME``), as for the
rate limiter, unless a clock is injected (tests).

Hook points (marked ``# health``; short, so they can be carried onto another send path):

- ``Dispatcher.__init__``: the ``health=`` argument, kept as ``self.health`` (built in
  ``worker/context.py``; None, as in most tests, turns health routing off);
- ``Dispatcher.send``, after the row is read ``queued`` and before the rate-limit token:
  ``provider = route_before_send(self, message)`` — the provider to take a token for and send
  with (its own, or the fallback it was just rerouted to), or the status the row was put in
  instead (returned as the outcome);
- ``Dispatcher._record_sent``: ``note_success(self, message.provider)``;
- ``Dispatcher._after_retryable``: ``unhealthy = note_failure(self, message.provider, exc)``
  first, then ``delay = 0.0 if unhealthy else exc.retry_after`` (an unhealthy provider's retry
  is released at once and rerouted by ``route_before_send``);
- ``Dispatcher._after_ambiguous`` and ``_after_permanent``: ``note_failure(...)`` first
  (account errors open the provider for the longer cool-down);
- ``batching.send_chunk``, after the chunk's SELECT: ``rows, unhealthy = split_unhealthy(...)``
  and the ``unhealthy`` ids sent one by one through ``Dispatcher.send``;
- ``batching._send_group``: ``note_success`` after the receipt, ``note_failure`` in the
  retryable, account-error and twice-lost-answer branches.

With the chunk path sending a chunk at once: call ``route_before_send`` per row before the
chunk's claim (or ``split_unhealthy`` and send those rows alone), ``note_success`` /
``note_failure`` per provider answer.

``Dispatcher._give_up`` needs no hook: a message failed over to an unhealthy fallback is held
by ``route_before_send`` on its next send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import redis
from sqlalchemy import Row, update

from postier import metrics
from postier.config import Settings
from postier.dispatch.routing import account_id, health_fallback_for
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus, messages_table
from postier.ledger.states import transition
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    InsufficientCreditError,
    ProviderError,
    RetryableError,
)
from postier.ratelimit import limiter_key

if TYPE_CHECKING:
    from postier.dispatch.sending import Dispatcher

log = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "postier:health"
#: a message held while its provider is half-open and out of probes looks again this soon
HALF_OPEN_RECHECK: Final = 1.0


class HealthState(StrEnum):
    """A provider account's health."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Decision(StrEnum):
    """What ``ProviderHealth.route`` tells a send to do."""

    #: send to the provider (closed)
    SEND = "send"
    #: send to the provider as one of the half-open state's probes
    PROBE = "probe"
    #: send to ``Route.provider``, the fallback, instead
    REROUTE = "reroute"
    #: hold the message until ``Route.retry_at``
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Route:
    """A routing decision: where to send now (or until when to wait), and why."""

    decision: Decision
    provider: str
    #: the state of the message's own provider
    state: HealthState
    #: with ``WAIT``: when the provider may be probed again (Unix seconds)
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class HealthChange:
    """What recording an outcome did to a provider's state (``before == after``: nothing)."""

    provider: str
    before: HealthState
    after: HealthState
    #: with ``after == OPEN``: until when (Unix seconds)
    until: float | None = None

    @property
    def changed(self) -> bool:
        return self.before is not self.after


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """A provider account's health as ``postier health`` and the metrics show it."""

    provider: str
    state: HealthState
    #: open: when probes may start (Unix seconds)
    until: float | None
    #: why it last opened
    reason: str
    #: retryable failures and successes in the current window (closed only)
    failures: int
    successes: int


# Every script reads ARGV[1] as the time (Unix seconds), or Redis TIME when it is empty.
# Numbers go back to Python as strings: Redis truncates a Lua number reply to an integer.
_PRELUDE: Final = """
local function now_s()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.6f', x) end
local now = now_s()
local stored = redis.call('HMGET', KEYS[1], 'state', 'until')
local state = stored[1] or 'closed'
local until_ = tonumber(stored[2]) or 0
if state == 'open' and now >= until_ then state = 'half_open' end
"""

# KEYS: state hash, failures buckets, successes buckets. ARGV: now, outcome (ok, fail,
# account), window, min_failures, failure_ratio, cool_down, account_cool_down, reason.
# Returns {state before, state after, open until or ''}.
_RECORD_LUA: Final = (
    _PRELUDE
    + """
local outcome = ARGV[2]
local window = math.ceil(tonumber(ARGV[3]))
local before = state
local function open_for(seconds)
  local new_until = now + seconds
  if before == 'open' and until_ > new_until then new_until = until_ end
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', fmt(new_until), 'since', fmt(now),
             'reason', ARGV[8], 'probes', '0', 'round_at', fmt(new_until))
  redis.call('DEL', KEYS[2], KEYS[3])
  return {before, 'open', fmt(new_until)}
end
if outcome == 'account' then return open_for(tonumber(ARGV[7])) end
if state == 'open' then return {before, 'open', fmt(until_)} end
if state == 'half_open' then
  if outcome == 'fail' then return open_for(tonumber(ARGV[6])) end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return {before, 'closed', ''}
end
local bucket = math.floor(now)
local oldest = bucket - window + 1
local target = KEYS[3]
if outcome == 'fail' then target = KEYS[2] end
redis.call('HINCRBY', target, tostring(bucket), 1)
redis.call('EXPIRE', target, window + 1)
if outcome ~= 'fail' then return {before, 'closed', ''} end
local function total(key)
  local sum = 0
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    if tonumber(flat[i]) < oldest then
      redis.call('HDEL', key, flat[i])
    else
      sum = sum + tonumber(flat[i + 1])
    end
  end
  return sum
end
local failures = total(KEYS[2])
local successes = total(KEYS[3])
if failures >= tonumber(ARGV[4]) and failures >= tonumber(ARGV[5]) * (failures + successes) then
  return open_for(tonumber(ARGV[6]))
end
return {before, 'closed', ''}
"""
)

# KEYS: state hash. ARGV: now, probes, probe_timeout, recheck.
# Returns {state before, state after, 'send'|'probe'|'blocked', retry at or ''}.
_ROUTE_LUA: Final = (
    _PRELUDE
    + """
if state == 'closed' then return {'closed', 'closed', 'send', ''} end
if state == 'open' then return {'open', 'open', 'blocked', fmt(until_)} end
local before = 'half_open'
if stored[1] == 'open' then
  before = 'open'
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probes', '0', 'round_at', fmt(now))
end
local probes = redis.call('HMGET', KEYS[1], 'probes', 'round_at')
local taken = tonumber(probes[1]) or 0
local round_at = tonumber(probes[2]) or now
if taken >= tonumber(ARGV[2]) and now - round_at >= tonumber(ARGV[3]) then
  taken = 0
  redis.call('HSET', KEYS[1], 'round_at', fmt(now))
end
if taken < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'probes', tostring(taken + 1))
  return {before, 'half_open', 'probe', ''}
end
return {before, 'half_open', 'blocked', fmt(now + tonumber(ARGV[4]))}
"""
)

# KEYS: state hash, failures buckets, successes buckets. ARGV: now, window.
# Returns {state, open until or '', reason, failures, successes}.
_READ_LUA: Final = (
    _PRELUDE
    + """
local oldest = math.floor(now) - math.ceil(tonumber(ARGV[2])) + 1
local function total(key)
  local sum = 0
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    if tonumber(flat[i]) >= oldest then sum = sum + tonumber(flat[i + 1]) end
  end
  return sum
end
local reason = redis.call('HGET', KEYS[1], 'reason') or ''
local shown = ''
if stored[1] == 'open' then shown = fmt(until_) end
return {state, shown, reason, tostring(total(KEYS[2])), tostring(total(KEYS[3]))}
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def counted_outcome(error: ProviderError) -> str | None:
    """How an error counts: ``fail`` (retryable), ``account`` (opens at once), or None."""
    if isinstance(error, AuthenticationError | InsufficientCreditError):
        return "account"
    if isinstance(error, RetryableError | AmbiguousError):
        return "fail"
    return None


class ProviderHealth:
    """The health state of every provider account, in Redis, shared by all processes.

    Register the scripts once per instance (like ``RateLimiter``): keep one per process.
    ``clock`` (Unix seconds) replaces Redis ``TIME``, for tests.
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.prefix = prefix
        self._record = client.register_script(_RECORD_LUA)
        self._route = client.register_script(_ROUTE_LUA)
        self._read = client.register_script(_READ_LUA)

    # -- keys ------------------------------------------------------------------------------
    def key(self, provider: str) -> str:
        """The state hash of ``provider``'s account (the account id only as a digest)."""
        return f"{self.prefix}:{limiter_key(provider, account_id(self.settings, provider))}"

    def _keys(self, provider: str) -> list[str]:
        key = self.key(provider)
        return [key, f"{key}:failures", f"{key}:successes"]

    def _now(self) -> str:
        return "" if self.clock is None else repr(float(self.clock()))

    # -- reading ---------------------------------------------------------------------------
    def status(self, provider: str) -> ProviderStatus:
        """``provider``'s state, open-until, reason and window counts."""
        config = self.settings.health
        state, until, reason, failures, successes = (
            _text(v)
            for v in self._read(keys=self._keys(provider), args=[self._now(), config.window])
        )
        return ProviderStatus(
            provider=provider,
            state=HealthState(state),
            until=float(until) if until else None,
            reason=reason,
            failures=int(failures),
            successes=int(successes),
        )

    def state(self, provider: str) -> HealthState:
        """``provider``'s state now (``open`` past its cool-down reads ``half_open``)."""
        return self.status(provider).state

    # -- deciding --------------------------------------------------------------------------
    def route(
        self, provider: str, channel: str, category: str, tried: Collection[str] = ()
    ) -> Route:
        """Where a message for ``provider`` goes now.

        Closed: ``SEND``. Half-open with a probe left: ``PROBE`` (taken from its budget).
        Otherwise ``REROUTE`` to the fallback when one can take the message and is itself
        closed or has a probe left, else ``WAIT`` until the provider may be probed.
        """
        own = self._decide(provider)
        if own.decision is not Decision.WAIT:
            return own
        fallback = health_fallback_for(
            self.settings, channel=channel, category=category, provider=provider, tried=tried
        )
        if fallback is None:
            return own
        other = self._decide(fallback)
        if other.decision is Decision.WAIT:
            return own
        return Route(Decision.REROUTE, fallback, own.state)

    def _decide(self, provider: str) -> Route:
        if not self.settings.health.enabled:
            return Route(Decision.SEND, provider, HealthState.CLOSED)
        config = self.settings.health
        before, after, verdict, at = (
            _text(v)
            for v in self._route(
                keys=[self.key(provider)],
                args=[self._now(), config.probes, config.cool_down, HALF_OPEN_RECHECK],
            )
        )
        self._log_change(HealthChange(provider, HealthState(before), HealthState(after)), "")
        state = HealthState(after)
        if verdict == "send":
            return Route(Decision.SEND, provider, state)
        if verdict == "probe":
            return Route(Decision.PROBE, provider, state)
        return Route(Decision.WAIT, provider, state, retry_at=float(at))

    # -- recording -------------------------------------------------------------------------
    def record_failure(self, provider: str, error: ProviderError) -> HealthChange | None:
        """Count ``error`` against ``provider``; None when it says nothing about its health
        (a refused recipient or text)."""
        outcome = counted_outcome(error)
        if outcome is None or not self.settings.health.enabled:
            return None
        return self._record_outcome(provider, outcome, str(error)[:200])

    def record_success(self, provider: str) -> HealthChange | None:
        """Count an accepted send: closes a half-open provider."""
        if not self.settings.health.enabled:
            return None
        return self._record_outcome(provider, "ok", "")

    def _record_outcome(self, provider: str, outcome: str, reason: str) -> HealthChange:
        config = self.settings.health
        before, after, until = (
            _text(v)
            for v in self._record(
                keys=self._keys(provider),
                args=[
                    self._now(),
                    outcome,
                    config.window,
                    config.min_failures,
                    config.failure_ratio,
                    config.cool_down,
                    config.account_cool_down,
                    reason,
                ],
            )
        )
        change = HealthChange(
            provider, HealthState(before), HealthState(after), float(until) if until else None
        )
        self._log_change(change, reason)
        return change

    def reset(self, provider: str) -> None:
        """Forget ``provider``'s state and counts (closed)."""
        self.client.delete(*self._keys(provider))

    @staticmethod
    def _log_change(change: HealthChange, reason: str) -> None:
        if not change.changed:
            return
        metrics.count_health_change(change.provider, change.after.value)
        log.warning(
            "provider health %s -> %s",
            change.before.value,
            change.after.value,
            extra={
                "provider": change.provider,
                "health": change.after.value,
                "previous": change.before.value,
                **({"reason": reason} if reason else {}),
                **({"until": change.until} if change.until else {}),
            },
        )


# -- the dispatcher's hooks ----------------------------------------------------------------------
def route_before_send(
    dispatcher: Dispatcher, message: Message | Row[Any]
) -> str | MessageStatus | None:
    """Before a queued message's token and claim: the provider to send it with now.

    Returns the provider (its own, or the fallback it was just rerouted to), or the status the
    row was put in instead (``scheduled``: it waits), or None when it was no longer queued.
    """
    provider = str(message.provider or "")
    health = dispatcher.health
    if health is None or not provider:
        return provider
    tried = list((message.payload or {}).get("tried_providers", []))
    route = health.route(provider, str(message.channel), str(message.category), tried)
    if route.decision in (Decision.SEND, Decision.PROBE):
        return provider
    if route.decision is Decision.REROUTE:
        return _reroute(dispatcher, str(message.id), provider, route)
    return _hold(dispatcher, str(message.id), provider, route)


def _reroute(dispatcher: Dispatcher, message_id: str, provider: str, route: Route) -> str | None:
    """``queued → scheduled → queued`` in one transaction: provider changed, attempts reset."""
    now = datetime.now(UTC)
    detail = f"reroute {provider} -> {route.provider}: {provider} is {route.state.value}"
    with session_scope(dispatcher.engine) as session:
        moved = transition(
            session,
            message_id,
            MessageStatus.QUEUED,
            MessageStatus.SCHEDULED,
            now=now,
            detail=detail,
            send_at=now,
            provider=route.provider,
            attempts=0,
        )
        if moved:
            transition(
                session,
                message_id,
                MessageStatus.SCHEDULED,
                MessageStatus.QUEUED,
                now=now,
                detail=f"rerouted to {route.provider}",
            )
    if not moved:
        return None
    metrics.count_reroute(provider, route.provider)
    log.warning(
        "reroute",
        extra={
            "message_id": message_id,
            "provider": provider,
            "fallback": route.provider,
            "health": route.state.value,
        },
    )
    return route.provider


def _hold(
    dispatcher: Dispatcher, message_id: str, provider: str, route: Route
) -> MessageStatus | None:
    """No fallback can take it: ``scheduled`` until ``provider`` may be probed again."""
    at = datetime.fromtimestamp(route.retry_at or 0.0, UTC)
    at = max(at, datetime.now(UTC) + timedelta(seconds=0.05))
    with session_scope(dispatcher.engine) as session:
        moved = transition(
            session,
            message_id,
            MessageStatus.QUEUED,
            MessageStatus.SCHEDULED,
            detail=f"waiting for {provider} ({route.state.value}); no fallback can take it",
            send_at=at,
        )
    if not moved:
        return None
    metrics.count_message(provider, MessageStatus.SCHEDULED)
    log.info(
        "held until provider recovers",
        extra={"message_id": message_id, "provider": provider, "until": at.isoformat()},
    )
    return MessageStatus.SCHEDULED


def note_success(dispatcher: Dispatcher, provider: str | None) -> None:
    """An accepted send: counted in the window; closes a half-open provider."""
    if dispatcher.health is not None and provider:
        dispatcher.health.record_success(provider)


def note_failure(dispatcher: Dispatcher, provider: str | None, error: ProviderError) -> bool:
    """A failed send counted against ``provider``; True when the provider is now unhealthy
    (its retries should not wait a backoff: they are rerouted as soon as released).

    When this failure opened it, its rows already waiting a retry backoff are made due now.
    """
    if dispatcher.health is None or not provider:
        return False
    change = dispatcher.health.record_failure(provider, error)
    if change is None:
        return False
    if change.changed and change.after is HealthState.OPEN:
        pull_retries_forward(dispatcher, provider)
    return change.after is not HealthState.CLOSED


def pull_retries_forward(dispatcher: Dispatcher, provider: str) -> int:
    """Rows of ``provider`` waiting a retry backoff (``scheduled``, an attempt spent) become
    due now, so beat releases them to be rerouted. Only ``send_at`` changes: no status does,
    so no event is written (the reroute writes one)."""
    now = datetime.now(UTC)
    messages = messages_table
    with session_scope(dispatcher.engine) as session:
        result = session.execute(
            update(messages)
            .where(
                messages.c.status == MessageStatus.SCHEDULED,
                messages.c.provider == provider,
                messages.c.attempts > 0,
                messages.c.send_at > now,
            )
            .values(send_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def split_unhealthy(
    dispatcher: Dispatcher, rows: Sequence[Row[Any]]
) -> tuple[list[Row[Any]], list[str]]:
    """A chunk's rows whose provider is closed, and the ids of the others (to be sent one by
    one through ``Dispatcher.send``, which reroutes or holds them)."""
    health = dispatcher.health
    if health is None or not rows:
        return list(rows), []
    states = {
        p: health.state(p) if p else HealthState.CLOSED
        for p in {str(row.provider or "") for row in rows}
    }
    healthy = [row for row in rows if states[str(row.provider or "")] is HealthState.CLOSED]
    others = [
        str(row.id) for row in rows if states[str(row.provider or "")] is not HealthState.CLOSED
    ]
    return healthy, others


__all__ = [
    "Decision",
    "HealthChange",
    "HealthState",
    "ProviderHealth",
    "ProviderStatus",
    "Route",
    "counted_outcome",
    "note_failure",
    "note_success",
    "pull_retries_forward",
    "route_before_send",
    "split_unhealthy",
]
