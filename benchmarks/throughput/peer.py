"""The second peer of the benchmark: an asyncio worker, what a user might pick instead of Celery.

Each process reads jobs (a recipient and a text) from a Redis list with ``BRPOP`` and keeps up
to ``CONCURRENCY`` requests in flight with one ``httpx.AsyncClient`` (keep-alive), posting the
same Octopush legacy form as the Celery baseline (``baseline.py``). No ledger, no rate limit,
no retry: the floor of what an I/O-bound sender costs, as the issue's hand measure had it
(2 processes x 16 concurrent requests).

Run as ``python -m benchmarks.throughput.peer <redis_url> <sandbox_url> <list key>``; it exits
when the list stays empty for ``IDLE_EXIT`` seconds.
"""

from __future__ import annotations

import asyncio
import sys

import httpx
import redis.asyncio as aioredis

from benchmarks.throughput.baseline import octopush_form
from benchmarks.throughput.provider import SEND_PATH

#: requests one process keeps in flight
CONCURRENCY = 16
#: a process stops after the list stayed empty this long
IDLE_EXIT = 3.0


async def _consume(queue: aioredis.Redis, key: str, client: httpx.AsyncClient, url: str) -> None:
    while True:
        item = await queue.brpop([key], timeout=IDLE_EXIT)
        if item is None:
            return
        raw = item[1]
        job = raw.decode() if isinstance(raw, bytes) else str(raw)
        recipient, _, text = job.partition("\t")
        response = await client.post(url, data=octopush_form(recipient, text))
        response.raise_for_status()


async def run(redis_url: str, sandbox_url: str, key: str) -> None:
    """Drain ``key`` with ``CONCURRENCY`` consumers sharing one client."""
    queue = aioredis.Redis.from_url(redis_url)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        url = sandbox_url.rstrip("/") + SEND_PATH
        await asyncio.gather(*(_consume(queue, key, client, url) for _ in range(CONCURRENCY)))
    await queue.aclose()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
