"""The bulk worker lowers its own CPU priority; other workers keep theirs (worker.priority)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from postier import tasknames


def _niceness_after(queues: tuple[str, ...], niceness: int, start: int = 0) -> tuple[int, int]:
    """(increment applied, niceness after) in a fresh process started at ``start``."""
    code = textwrap.dedent(
        f"""
        import os
        from worker.priority import lower_bulk_priority
        os.nice({start})
        applied = lower_bulk_priority({queues!r}, {niceness})
        print(applied, os.nice(0))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    applied, after = done.stdout.split()
    return int(applied), int(after)


def test_a_bulk_worker_lowers_its_priority_to_the_setting() -> None:
    assert _niceness_after(tasknames.BULK_QUEUES, 10) == (10, 10)


@pytest.mark.parametrize(
    "queues",
    [tasknames.TRANSACTIONAL_QUEUES, tasknames.CALLBACK_QUEUES, (*tasknames.BULK_QUEUES, "x"), ()],
)
def test_any_other_worker_keeps_its_priority(queues: tuple[str, ...]) -> None:
    assert _niceness_after(queues, 10) == (0, 0)


def test_zero_leaves_the_priority_and_a_nicer_start_is_kept() -> None:
    assert _niceness_after(tasknames.BULK_QUEUES, 0) == (0, 0)
    assert _niceness_after(tasknames.BULK_QUEUES, 10, start=15) == (0, 15)
    assert _niceness_after(tasknames.BULK_QUEUES, 10, start=4) == (6, 10)
