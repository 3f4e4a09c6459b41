"""Requests in flight together: order, errors per item, the per-provider cap (dispatch.inflight)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postier.dispatch.inflight import pool_for, run_all


def test_results_come_back_in_the_order_given_with_each_items_error() -> None:
    def call(n: int) -> int:
        if n % 3 == 0:
            raise ValueError(f"refused {n}")
        time.sleep(0.001 * (n % 4))  # finish out of order
        return n * 10

    outcomes = run_all("test-order", 4, call, list(range(30)))
    assert [item for item, _, _ in outcomes] == list(range(30))
    for item, result, error in outcomes:
        if item % 3 == 0:
            assert (
                result is None and isinstance(error, ValueError) and str(error) == f"refused {item}"
            )
        else:
            assert (result, error) == (item * 10, None)


def test_at_most_size_calls_run_at_once_and_every_item_runs_once() -> None:
    running = 0
    highest = 0
    seen: list[int] = []
    lock = threading.Lock()

    def call(n: int) -> int:
        nonlocal running, highest
        with lock:
            running += 1
            highest = max(highest, running)
            seen.append(n)
        time.sleep(0.005)
        with lock:
            running -= 1
        return n

    run_all("test-cap", 5, call, list(range(60)))
    assert highest == 5
    assert sorted(seen) == list(range(60))


def test_a_lone_item_runs_in_the_callers_thread() -> None:
    caller = threading.get_ident()
    ((_, ran_in, error),) = run_all("test-lone", 4, lambda _: threading.get_ident(), ["x"])
    assert (ran_in, error) == (caller, None)


def test_one_pool_per_provider_and_process() -> None:
    assert pool_for("test-same", 3) is pool_for("test-same", 3)
    assert pool_for("test-same", 3) is not pool_for("test-other", 3)


def test_a_base_exception_of_a_call_reaches_the_caller() -> None:
    def call(n: int) -> int:
        if n == 7:
            raise KeyboardInterrupt
        return n

    with pytest.raises(KeyboardInterrupt):
        run_all("test-base", 3, call, list(range(20)))


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(), min_size=0, max_size=80), size=st.integers(1, 12))
def test_every_item_is_answered_once_in_order(items: list[int], size: int) -> None:
    outcomes = run_all("test-property", size, lambda n: -n, items)
    assert outcomes == [(n, -n, None) for n in items]
