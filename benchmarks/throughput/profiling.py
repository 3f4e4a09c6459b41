"""Where a worker's CPU goes, sampled with py-spy while it runs (no change to the worker).

``py-spy record --format raw`` writes one line per distinct stack with its sample count; each
sample is put in the category of its innermost recognised frame (the ledger's SQL layer, the
HTTP client, Celery and the broker, Redis, Postier's own code), which says what limits the
throughput when a target is missed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

#: frame file fragments -> category, checked innermost frame first
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ledger: SQLAlchemy + driver", ("sqlalchemy/", "sqlmodel/", "psycopg/", "sqlite3/")),
    ("HTTP client (httpx)", ("httpx/", "httpcore/", "h11/", "anyio/", "ssl.py")),
    ("Redis (rate limiter)", ("redis/",)),
    ("Celery + kombu", ("celery/", "kombu/", "billiard/", "vine/")),
    ("pydantic / JSON", ("pydantic", "json/")),
    ("logging", ("logging/",)),
    ("Postier code", ("postier/", "worker/", "producers/")),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass
class Profile:
    """A sampled profile: shares of samples per category and per Postier function."""

    samples: int = 0
    categories: dict[str, float] = field(default_factory=dict)
    #: Postier functions by the share of samples they appear in (inclusive)
    functions: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def finding(self, top: int = 3) -> str:
        """One line for the report: the heaviest categories and Postier functions."""
        if self.error is not None:
            return f"profile unavailable: {self.error}"
        heavy = sorted(self.categories.items(), key=lambda item: -item[1])[:top]
        parts = ", ".join(f"{name} {share:.0%}" for name, share in heavy)
        functions = ", ".join(f"{name} {share:.0%}" for name, share in self.functions[:top])
        return f"worker CPU samples ({self.samples}): {parts}; inclusive: {functions}"


def _category(stack: list[str]) -> str:
    """The category of the innermost recognised frame; Redis under kombu is the broker."""
    in_kombu = any("kombu/" in frame for frame in stack)
    for frame in reversed(stack):
        found = _FRAME.match(frame)
        path = found.group("file") if found else frame
        for name, fragments in CATEGORIES:
            if any(fragment in path for fragment in fragments):
                if name.startswith("Redis") and in_kombu:
                    return "Celery + kombu"
                if name == "Postier code" and "site-packages" in path:
                    continue
                return name
    return "other (interpreter, stdlib)"


def _postier_function(frame: str) -> str | None:
    found = _FRAME.match(frame)
    if found is None:
        return None
    path = found.group("file")
    if "site-packages" in path or "/bench/" in path:
        return None
    for package in ("postier/", "worker/", "producers/"):
        if package in path:
            module = path[path.rindex(package) :].removesuffix(".py").replace("/", ".")
            return f"{module}.{found.group('func')}"
    return None


def summarise(raw: str) -> Profile:
    """A ``Profile`` of py-spy's raw (collapsed stacks) output."""
    categories: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = stack_text.split(";")
        total += count
        categories[_category(stack)] += count
        for name in {_postier_function(frame) for frame in stack} - {None}:
            functions[str(name)] += count
    if total == 0:
        return Profile(error="no samples (the worker was idle)")
    return Profile(
        samples=total,
        categories={name: count / total for name, count in categories.items()},
        functions=[(name, count / total) for name, count in functions.most_common(12)],
    )


def py_spy() -> str | None:
    """The py-spy executable: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Sampler:
    """py-spy recording ``pid`` (and its pool processes) for ``seconds``, in the background."""

    def __init__(self, pid: int, seconds: float) -> None:
        self.error: str | None = None
        self.output = Path(tempfile.mkstemp(prefix="postier-pyspy-", suffix=".txt")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.deadline = time.monotonic() + seconds + 30
        executable = py_spy()
        if executable is None:
            self.error = "py-spy is not installed (pip install 'postier[bench]')"
            return
        self.process = subprocess.Popen(  # noqa: S603 - py-spy, fixed arguments
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--format",
                "raw",
                "--nonblocking",
                "--subprocesses",
                "--output",
                str(self.output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def result(self) -> Profile:
        """Wait for the recording and summarise it."""
        try:
            if self.process is None:
                return Profile(error=self.error)
            try:
                _, err = self.process.communicate(
                    timeout=max(1.0, self.deadline - time.monotonic())
                )
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
                return Profile(error="py-spy did not finish")
            if self.process.returncode != 0:
                message = err.decode(errors="replace").strip().splitlines()
                return Profile(error=message[-1] if message else "py-spy failed")
            return summarise(self.output.read_text())
        finally:
            self.output.unlink(missing_ok=True)


def profile_call(call: Callable[[], _T]) -> tuple[_T, Profile]:
    """Run ``call`` under pyinstrument in this process; its value and its profile.

    For the producer, whose bulk call runs in the benchmark's own process.
    """
    try:
        from pyinstrument import Profiler
    except ImportError:
        return call(), Profile(error="pyinstrument is not installed (pip install 'postier[bench]')")
    profiler = Profiler(interval=0.002)
    profiler.start()
    try:
        value = call()
    finally:
        session = profiler.stop()
    root = session.root_frame()
    categories: defaultdict[str, float] = defaultdict(float)
    functions: defaultdict[str, float] = defaultdict(float)
    total = 0.0

    def walk(frame: Any, stack: list[str]) -> None:
        nonlocal total
        here = [*stack, f"{frame.function} ({frame.file_path}:{frame.line_no})"]
        own = float(frame.time) - sum(float(child.time) for child in frame.children)
        if own > 0:
            total += own
            categories[_category(here)] += own
            for name in {_postier_function(item) for item in here} - {None}:
                functions[str(name)] += own
        for child in frame.children:
            walk(child, here)

    if root is not None:
        walk(root, [])
    if total <= 0:
        return value, Profile(error="no samples")
    return value, Profile(
        samples=round(total / 0.002),
        categories={name: spent / total for name, spent in categories.items()},
        functions=[
            (name, spent / total)
            for name, spent in sorted(functions.items(), key=lambda item: -item[1])[:12]
        ],
    )
