"""SQLite's write-ahead log: checkpoints off the writers' path, and its bounds.

In WAL mode a commit appends pages to the ``-wal`` file; a checkpoint copies them back into the
database file and syncs it. By default SQLite checkpoints automatically in whichever
connection's COMMIT takes the log past 1,000 pages (about 4 MB): that commit then lasts the
copy and the sync, so a one-row write by a worker or a producer took 100-500 ms now and then
while beat's passes ran (``make bench-scale``'s write check: the split showed the checkpoint
inside the writer's COMMIT). Other writers are not blocked meanwhile (the checkpoint runs after
the write lock is released); the one whose commit crossed the threshold is.

So checkpoints run elsewhere:

- **beat's checkpoint pass** (``checkpoint``, every ``dispatch.checkpoint_interval``, 1 s) runs
  ``PRAGMA wal_checkpoint(PASSIVE)`` on a worker, outside any transaction. PASSIVE never waits
  for a reader or a writer and never holds the write lock: it copies what no reader still
  needs and stops. A fully copied log past ``RESTART_PAGES`` is then emptied by a TRUNCATE
  checkpoint with ``busy_timeout=0``, which gives up at once rather than wait for a writer or
  a reader (a TRUNCATE or RESTART that waits holds the write lock meanwhile: the stall this
  avoids). ``journal_size_limit`` (``WAL_KEEP_BYTES``) trims a log a burst had grown when it
  starts over by itself.
- **a ceiling for deployments without beat** (the ``postier`` CLI, a producer-only process,
  beat down for a while): every ledger connection keeps SQLite's automatic checkpoint, at
  ``WAL_CEILING_PAGES`` instead of 1,000. With beat running the log never gets there (a pass
  copies it every second), so no writer pays; without beat, the writer whose commit crosses
  the ceiling runs the checkpoint as before, only 32 times less often, and the log stays
  bounded. The ceiling is above what one large transaction writes (a ``send_many`` of 100,000
  rows writes about 75 MB to the log), so a bulk insert does not checkpoint in its own commit
  while beat runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

#: pages in the log past which a committing connection checkpoints itself (SQLite's automatic
#: checkpoint, ``wal_autocheckpoint``; its default is 1,000): 128 MiB at 4 KiB pages
WAL_CEILING_PAGES = 32_768
#: bytes of log file kept on disk once the log starts over (``journal_size_limit``): a
#: burst's larger log is truncated to this at the next commit
WAL_KEEP_BYTES = 32 * 1024 * 1024
#: PASSIVE checkpoints one pass runs at most, while writers keep leaving pages behind
CHECKPOINT_TRIES = 3
#: pages of a fully copied log past which the pass empties it (TRUNCATE, never waiting):
#: 64 MiB at 4 KiB pages, half the writers' ceiling. Emptying holds the write lock: 0-40 ms
#: on a quiet machine, 100-190 ms measured on the loaded one when a page committed between
#: the PASSIVE and the TRUNCATE had to be copied and synced first; so rarely, not every pass
RESTART_PAGES = 16_384


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one PASSIVE checkpoint found and did (``PRAGMA wal_checkpoint``'s answer)."""

    #: another checkpoint was running (this one did nothing)
    busy: bool
    #: pages in the log
    log_pages: int
    #: pages of the log now in the database file (all of them: the next writer starts the
    #: log over); fewer when a reader still needs older pages
    copied_pages: int
    #: the log was emptied (``RESTART_PAGES``, below)
    emptied: bool = False


def checkpoint(engine: Engine, *, tries: int = CHECKPOINT_TRIES) -> Checkpoint | None:
    """Copy the log into the database file without waiting for anyone (beat's pass).

    A writer that commits while a checkpoint copies leaves a few pages behind it, so a
    checkpoint that left pages is run again at once (up to ``tries`` in all): the next one
    copies only the pages written meanwhile, and usually finishes.

    A log fully copied should start over at the next write, but that needs the next writer to
    have begun after the copy with no reader still on the log, which a steady flow of writes
    and reads rarely gives (bench-scale saw the log grow to 100 MB, every checkpoint
    complete; the cause was not found). So once everything is copied and the log holds
    ``RESTART_PAGES`` or more, it is emptied by a TRUNCATE checkpoint that does not wait: with
    ``busy_timeout=0`` it gives up at once when a writer holds the lock or a reader is still
    on the log (and tries again next pass). It holds the write lock while it empties the file,
    and while it copies and syncs a page committed since the PASSIVE: writers wait then.

    The last checkpoint's answer; None on PostgreSQL, which checkpoints on its own.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        for _ in range(tries):
            busy, log_pages, copied_pages = connection.exec_driver_sql(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).one()
            if busy or copied_pages >= log_pages:
                break
        emptied = False
        if not busy and copied_pages >= log_pages >= RESTART_PAGES:
            waits = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                (still_busy, *_) = connection.exec_driver_sql(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).one()
                emptied = not still_busy
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={int(waits or 0)}")
    return Checkpoint(bool(busy), int(log_pages), int(copied_pages), emptied)


__all__ = [
    "CHECKPOINT_TRIES",
    "RESTART_PAGES",
    "WAL_CEILING_PAGES",
    "WAL_KEEP_BYTES",
    "Checkpoint",
    "checkpoint",
]
