"""One run of a source, from lock to ledger: the lifecycle sync, quarantine replay and DST import share.

:func:`source_run` takes the source's lock, closes runs a dead process left ``running``
(abandoned), reads the cursor, writes the run's row and yields a :class:`RunHandle`. The block
ends the run with :meth:`RunHandle.finish`; an exception ends it as ``failed`` with a message
bridge builds (:func:`bridge.errors.describe_error`, never a driver's text with its bound
parameters), logs it and is raised again. The lock is released last, whatever happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bridge.config import SourceSettings
from bridge.errors import describe_error
from bridge.model.tables import SyncRun
from bridge.store import Store
from bridge.sync import ledger
from bridge.sync.lock import source_lock
from bridge.sync.writer import ensure_municipality

log = logging.getLogger("bridge.sync")


def run_fields(run: SyncRun) -> dict[str, object]:
    """A run's status and counters, as the fields of a JSON log line."""
    return {
        "status": run.status,
        "fetched": run.fetched,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "quarantined": run.quarantined,
        "deleted": run.deleted,
    }


@dataclass
class RunHandle:
    """The run a :func:`source_run` block works in."""

    store: Store
    source: str
    run_id: int
    kind: str
    cursor: str | None
    """The source's stored cursor when the run began (incremental runs resume after it)."""
    fields: dict[str, object]
    began: float = field(default_factory=time.monotonic)
    run: SyncRun | None = None
    """The finished ledger row, once :meth:`finish` (or a failure) ended the run."""

    def finish(self, status: str, *, deleted: int = 0) -> SyncRun:
        """End the run with ``status`` and log its counters."""
        self.run = ledger.finish_run(self.store, self.run_id, status, deleted=deleted)
        log.info(
            "%s of %s %s (run %d): fetched %d, inserted %d, updated %d, unchanged %d, quarantined %d, deleted %d",
            self.kind,
            self.source,
            status,
            self.run_id,
            self.run.fetched,
            self.run.inserted,
            self.run.updated,
            self.run.unchanged,
            self.run.quarantined,
            self.run.deleted,
            extra={"fields": {**self.fields, **run_fields(self.run), "duration_s": self.duration()}},
        )
        return self.run

    def duration(self) -> float:
        return round(time.monotonic() - self.began, 3)


@contextmanager
def source_run(store: Store, source: SourceSettings, *, kind: str, full: bool = False) -> Iterator[RunHandle]:
    """Lock ``source``, start a run of ``kind`` ("sync", "replay", "import") in the ledger and yield it.

    Raises :class:`bridge.errors.LockHeld` before anything is written when another run of the
    source holds the lock.
    """
    with source_lock(store, source.name):
        if ledger.abandon_stale_runs(store, source.name):
            log.warning("an earlier run of %s ended without finishing; it is marked abandoned", source.name)
        with store.transaction() as conn:
            ensure_municipality(conn, source.municipality, source.municipality_name)
            cursor = ledger.get_cursor(conn, source.name)
        # A full run starts from nothing; the ledger says so by its empty cursor_before.
        run_id = ledger.start_run(store, source.name, full=full, cursor=None if full else cursor)
        fields: dict[str, object] = {"run_id": run_id, "source": source.name, "full": full, "kind": kind}
        handle = RunHandle(store, source.name, run_id, kind, cursor, fields)
        log.info(
            "%s of %s started (run %d%s)",
            kind,
            source.name,
            run_id,
            ", full" if full else "",
            extra={"fields": {**fields, "status": ledger.RUNNING}},
        )
        try:
            yield handle
        except BaseException as exc:
            message = describe_error(exc)
            handle.run = ledger.finish_run(store, run_id, ledger.FAILED, error=message)
            log.error(
                "%s of %s failed (run %d): %s",
                kind,
                source.name,
                run_id,
                message,
                extra={"fields": {**fields, **run_fields(handle.run), "duration_s": handle.duration()}},
            )
            raise
        if handle.run is None:
            raise AssertionError(f"the {kind} of {source.name} left run {run_id} unfinished")
