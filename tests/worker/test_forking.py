"""worker.forking: a prefork child inherits the parent's objects frozen, so its collector
never writes to their pages."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD_REPORT = textwrap.dedent(
    """
    import gc, os, sys
    from worker import forking
    {setup}
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        os.write(writer, str(gc.get_freeze_count()).encode())
        os._exit(0)
    os.close(writer)
    frozen_in_child = int(os.read(reader, 64))
    os.waitpid(pid, 0)
    print(frozen_in_child)
    """
)


def _frozen_in_child(setup: str) -> int:
    code = CHILD_REPORT.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not hasattr(__import__("os"), "register_at_fork"), reason="needs os.fork")
def test_a_child_forked_after_registration_inherits_a_frozen_heap() -> None:
    assert _frozen_in_child("forking.freeze_heap_before_forks()") > 10_000


@pytest.mark.skipif(not hasattr(__import__("os"), "register_at_fork"), reason="needs os.fork")
def test_without_registration_nothing_is_frozen() -> None:
    assert _frozen_in_child("") == 0


def test_registration_is_idempotent() -> None:
    code = textwrap.dedent(
        """
        import gc, os
        from worker import forking
        calls = []
        real = forking._before_fork
        forking._before_fork = lambda: calls.append(1) or real()
        forking.freeze_heap_before_forks()
        forking.freeze_heap_before_forks()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print(len(calls))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "1"


def test_warming_configures_the_ledger_mappers_and_imports_the_http_transport() -> None:
    code = textwrap.dedent(
        """
        import sys
        from sqlalchemy.orm import Mapper
        from worker import forking
        forking.warm_shared_state()
        from postier.ledger.models import Message
        print(
            int("postier.providers.connections" in sys.modules),
            int("ssl" in sys.modules),
            int(Message.__mapper__.configured),
        )
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["1", "1", "1"]
