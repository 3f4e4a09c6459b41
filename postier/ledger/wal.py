"""SQLite's write-ahead log: checkpoints off the writers' commits, and its bounds.

In WAL mode a commit appends pages to the ``-wal`` file; a checkpoint copies them back into the
database file and syncs it. By default SQLite checkpoints automatically in whichever
connection's COMMIT takes the log past 1,000 pages (about 4 MB): that commit then lasts the
copy and the sync (``make bench-scale``'s write check saw it inside one-row writes' COMMITs,
80-170 ms on a loaded machine). Other writers are not blocked meanwhile (the checkpoint runs
after the write lock is released); the one whose commit crossed the threshold is.

So checkpoints run elsewhere:

- **beat's checkpoint pass** (``checkpoint``, every ``dispatch.checkpoint_interval``, 1 s) runs
  ``PRAGMA wal_checkpoint(PASSIVE)`` on a worker, outside any transaction. PASSIVE never waits
  for a reader or a writer and never takes the write lock: it copies what no reader still
  needs and stops.
- **the log starts over**: a fully copied log should start over at the next write, but in
  bench-scale's write check it did not (it grew to 100-110 MB, every PASSIVE complete; the
  cause was not found). So a fully copied log of ``RESTART_PAGES`` or more gets a RESTART
  checkpoint with ``busy_timeout=0``: it gives up at once when a writer holds the lock or a
  reader is on the log, and otherwise makes the next writer start the log over. It holds the
  write lock only to check the readers, unless a page was committed since the PASSIVE
  (copied and synced under the lock, writers waiting). Not TRUNCATE: its ``ftruncate`` under
  the lock took 100-190 ms on the loaded machine; nor ``journal_size_limit``, which makes the
  writer that restarts the log truncate it in its own commit. The file keeps its largest size,
  bounded as the log is.
- **a ceiling for deployments without beat** (the ``postier`` CLI, a producer-only process,
  beat down for a while): every ledger connection keeps SQLite's automatic checkpoint, at
  ``WAL_CEILING_PAGES`` instead of 1,000. With beat running the log never gets there (a pass
  copies it every second), so no writer pays; without beat, the writer whose commit crosses
  the ceiling runs the checkpoint as before, only 32 times less often, and the log stays
  bounded. The ceiling is above what one large transaction writes (a ``send_many`` of 100,000
  rows writes about 75 MB to the log), so a bulk insert does not checkpoint in its own commit
  while beat runs.

What it did not fix: while the pass copies, one-row writes still waited (in their INSERT, up
to hundreds of ms on the loaded machine) — see README, "The ledger at a year's volume".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

#: pages in the log past which a committing connection checkpoints itself (SQLite's automatic
#: checkpoint, ``wal_autocheckpoint``; its default is 1,000): 128 MiB at 4 KiB pages
WAL_CEILING_PAGES = 32_768
#: PASSIVE checkpoints one pass runs at most, while writers keep leaving pages behind
CHECKPOINT_TRIES = 3
#: pages of a fully copied log past which the pass makes the next writer start it over
#: (RESTART, never waiting): 16 MiB at 4 KiB pages
RESTART_PAGES = 4096


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
    #: a RESTART followed: the next writer starts the log over (``RESTART_PAGES``)
    restarted: bool = False


def checkpoint(engine: Engine, *, tries: int = CHECKPOINT_TRIES) -> Checkpoint | None:
    """Copy the log into the database file without waiting for anyone (beat's pass).

    A writer that commits while a checkpoint copies leaves a few pages behind it, so a
    checkpoint that left pages is run again at once (up to ``tries`` in all): the next one
    copies only the pages written meanwhile, and usually finishes.

    A fully copied log of ``RESTART_PAGES`` or more is then made to start over by a RESTART
    checkpoint that never waits (the module's docstring says why).

    The last checkpoint's answer; None on PostgreSQL, which checkpoints on its own.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        waits = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        # PASSIVE never waits anyway; RESTART must not, and must follow the last PASSIVE at
        # once (a page committed in between is copied and synced under the write lock)
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            for _ in range(tries):
                busy, log_pages, copied_pages = connection.exec_driver_sql(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).one()
                if busy or copied_pages >= log_pages:
                    break
            restarted = False
            if not busy and copied_pages >= log_pages >= RESTART_PAGES:
                (still_busy, *_) = connection.exec_driver_sql(
                    "PRAGMA wal_checkpoint(RESTART)"
                ).one()
                restarted = not still_busy
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(waits or 0)}")
    return Checkpoint(bool(busy), int(log_pages), int(copied_pages), restarted)


__all__ = [
    "CHECKPOINT_TRIES",
    "RESTART_PAGES",
    "WAL_CEILING_PAGES",
    "Checkpoint",
    "checkpoint",
]
