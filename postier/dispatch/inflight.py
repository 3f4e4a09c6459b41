"""Provider requests in flight at once: one bounded thread pool per provider and process.

A chunk of messages that each need their own request (personalised texts) would otherwise go
out one after another, so a worker keeps only as many requests in flight as it runs chunks:
with a provider 80 ms away that is a dozen messages a second per chunk. The chunk's requests
are handed to its provider's pool instead and run concurrently, at most
``dispatch.max_in_flight`` per provider in this process whichever chunks they come from (the
cap a provider sees from one worker; the rate limit in Redis stays the global one).

Threads rather than ``asyncio``: the provider clients are the synchronous ones every other
path uses (lookups, polls, the CLI), their connection pool (``providers.connections``) is
thread-safe, and the request is I/O: the GIL is released while a thread waits for its answer.
Pools are made on first use in the process that uses them, never before a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")

_lock = threading.Lock()
_pools: dict[tuple[int, str], ThreadPoolExecutor] = {}


def pool_for(provider: str, size: int) -> ThreadPoolExecutor:
    """This process's pool for ``provider`` (``size`` threads, fixed at its creation)."""
    key = (os.getpid(), provider)
    found = _pools.get(key)
    if found is not None:
        return found
    with _lock:
        found = _pools.get(key)
        if found is None:
            for stale in [k for k in _pools if k[0] != key[0]]:
                # inherited through a fork: its threads do not exist in this process
                del _pools[stale]
            found = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"postier-{provider}")
            _pools[key] = found
    return found


def run_all(
    provider: str,
    size: int,
    call: Callable[[_T], _R],
    items: Sequence[_T],
) -> list[tuple[_T, _R | None, BaseException | None]]:
    """``call(item)`` for every item, at most ``size`` at once for ``provider`` in this process.

    Each item's result or exception, in the order given; a lone item runs in the caller's
    thread (no hand-over for a single request). The pool gets one task per thread used, each
    taking the next item until none is left, rather than a future per item: at a provider
    that answers at once, 500 futures and their hand-overs were a twentieth of a chunk's CPU.
    """
    if len(items) == 1:
        return [_one(call, items[0])]
    pool = pool_for(provider, size)
    done: list[tuple[_T, _R | None, BaseException | None] | None] = [None] * len(items)
    pending = iter(enumerate(items))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                picked = next(pending, None)
            if picked is None:
                return
            index, item = picked
            done[index] = _one(call, item)

    runners = [pool.submit(drain) for _ in range(min(size, len(items)))]
    for runner in runners:
        runner.result()  # a BaseException (not an Exception) of a call ends its runner here
    return [outcome for outcome in done if outcome is not None]


def _one(call: Callable[[_T], _R], item: _T) -> tuple[_T, _R | None, BaseException | None]:
    try:
        return item, call(item), None
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which sorts it
        return item, None, exc
