"""Prefork children share the parent's heap: the garbage collector is frozen around each fork.

A prefork child starts with the parent's memory shared copy-on-write, but the first full
collection in the child writes to the header of every object it walks, so each child soon holds
a private copy of the whole heap (about 40 MiB of Postier's imports, per child). Moving the
objects alive at the fork to the permanent generation (``gc.freeze``) keeps the collector off
them, and their pages stay shared (Python's documentation of ``gc.freeze``; make bench reads the
bulk worker's PSS).
"""

from __future__ import annotations

import gc
import os
from typing import Any

_registered = False


def _before_fork() -> None:
    # what is garbage now would otherwise be frozen with the rest and never be freed
    gc.collect()
    gc.freeze()


def freeze_heap_before_forks() -> None:
    """From now on, every fork of this process freezes its live objects first (idempotent)."""
    global _registered
    if not _registered:
        os.register_at_fork(before=_before_fork)
        _registered = True


def warm_shared_state() -> None:
    """Build, before the forks, what every child would otherwise build for itself on first use.

    SQLAlchemy configures its mappers at the first query, and the provider clients' pool
    (``providers.connections``) and its TLS module are imported by the first send; done here
    they land in the frozen, shared heap. Nothing here opens a socket or a database
    connection (those must never cross a fork: worker.context).
    """
    from sqlalchemy.orm import configure_mappers

    import postier.ledger.models  # the mappers to configure
    import postier.providers.transport  # noqa: F401  # the pool, http.client and ssl

    configure_mappers()


def _on_worker_init(**_: Any) -> None:
    warm_shared_state()
    freeze_heap_before_forks()


def connect_worker_signals() -> None:
    """Freeze before the pool's forks; the threads pool never forks, so it costs it nothing."""
    from celery import signals

    signals.worker_init.connect(_on_worker_init, dispatch_uid="postier.forking.init", weak=False)
