"""CPU time and memory of a process and its children, read from Linux's ``/proc``.

The benchmark measures roles started as child processes (a Celery worker and its pool, beat,
the sandbox); ``/proc/<pid>/stat`` gives each one's CPU time and ``/proc/<pid>/status`` its
resident memory and its peak (``VmHWM``), without a dependency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's), empty when it is gone."""
    found: list[int] = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            text = (task / "children").read_text()
            found.extend(int(part) for part in text.split())
    except OSError:
        return found
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a worker and its pool processes)."""
    seen = [pid]
    index = 0
    while index < len(seen) and len(seen) < 1000:
        seen.extend(child for child in children(seen[index]) if child not in seen)
        index += 1
    return seen


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used by ``pid`` itself so far (0 when it is gone)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    # fields[11], fields[12]: utime and stime (stat(5) fields 14 and 15), in clock ticks
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` now, in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The most resident memory ``pid`` has had (``VmHWM``), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` now, in MiB: its private pages plus its share of the
    pages it shares (a prefork child's copy-on-write pages count once across the pool)."""
    try:
        for line in (_PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0


def tree_pss_mib(pid: int) -> float:
    """The memory ``pid``'s whole tree uses now, each shared page counted once (sum of PSS):
    what a container's memory limit sees, unlike the sum of RSS."""
    return sum(pss_mib(member) for member in tree(pid))


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds and peak memory of a process tree at one moment."""

    cpu_seconds: float
    peak_rss_mib: float
    processes: int


def usage(pid: int) -> Usage:
    """CPU seconds of ``pid``'s whole tree, and the sum of each member's peak RSS.

    The sum of peaks is an upper bound of the tree's peak: the members need not peak together.
    """
    members = tree(pid)
    return Usage(
        cpu_seconds=sum(cpu_seconds(member) for member in members),
        peak_rss_mib=sum(peak_rss_mib(member) for member in members),
        processes=len(members),
    )
