"""The conformance kit: the contract every adapter meets, run against a harness the plugin provides.

A plugin describes how to serve a ground truth through its adapter with a :class:`Harness`
(start its simulator with knobs, build the source configuration, change the truth) and
gets every check of "Adapters meet servers they did not write" (docs/plugins.md) from
:class:`Conformance`, each asserting the exact end state against the truth:

- a full sync stores exactly the truth's good cases and quarantines exactly its bad ones;
- an unchanged re-sync changes nothing;
- a crash after any batch resumes to exactly the truth;
- transient faults converge;
- no ground-truth CPR anywhere but in quarantine payloads (store, ledger, log lines, errors);
- the hostile-server behaviours of :class:`Behaviour`, each a knob the harness declares.

The checks raise :class:`ConformanceFailure` (an ``AssertionError``) naming the check and
the case references that differ, never person data. :class:`bridge.testing.ConformanceSuite`
runs them as pytest tests.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import select

from bridge.config import BridgeConfig
from bridge.model.records import CaseRecord
from bridge.model.tables import RUNS, SyncRun
from bridge.store import Store
from bridge.sync import BatchDone, exit_code, ledger, run_sync
from bridge.testing.storecheck import cpr_leaks, dump, hashes, stored_records, unresolved_quarantine
from bridge.testing.stores import empty


class Behaviour(StrEnum):
    """What servers written by others do. A harness declares the ones its source can be made to show."""

    capped_pages = "capped_pages"
    """Pages hold fewer records than the ``Limit`` asked for (a server-side cap)."""
    wrong_total = "wrong_total"
    """The total the listing reports disagrees with the records that arrive: the run must fail."""
    ignored_filters = "ignored_filters"
    """The server ignores a query's filters and answers with extra, unrelated records."""
    optional_fields_absent = "optional_fields_absent"
    """Fields that may be absent are left out rather than sent empty."""
    unknown_fields_and_values = "unknown_fields_and_values"
    """Fields the adapter does not know, and values of modelled enumerations it was not configured for."""
    field_casing = "field_casing"
    """Field names in the other casing (``CprNummer`` / ``CPRnummer``)."""
    changes_between_pages = "changes_between_pages"
    """Records change while the listing is paged; the next run catches up."""
    duplicates_across_pages = "duplicates_across_pages"
    """The same record on more than one page of a listing."""
    transient_faults = "transient_faults"
    """Timeouts, dropped connections, 429 and 5xx answers, or a run that dies midway."""


TOLERATED = frozenset(Behaviour) - {Behaviour.wrong_total}
"""Behaviours after which the store must equal the truth; :attr:`Behaviour.wrong_total` must fail the run."""


class ConformanceFailure(AssertionError):
    """An adapter does not meet the contract; the message names the check and the references."""


class Served(ABC):
    """One ground truth served through the adapter, with the bridge configuration that reads it."""

    source: str
    """The source's name in :meth:`config`."""

    @abstractmethod
    def config(self) -> BridgeConfig:
        """The configuration of the next run (asked again before every run)."""

    @abstractmethod
    def expected(self) -> dict[str, CaseRecord]:
        """The truth's good cases as the store must hold them now, by ``source_ref``."""

    @abstractmethod
    def expected_quarantined(self) -> set[str]:
        """References of the truth's bad cases, which must be quarantined (unresolved)."""

    @abstractmethod
    def cprs(self) -> set[str]:
        """Every CPR number in the truth, to look for where none may be."""

    @abstractmethod
    def change(self, n: int) -> None:
        """Change ``n`` cases of the truth now, as an edit in the source system would."""

    def sync(self, store: Store, *, full: bool = False, on_batch: Callable[[BatchDone], None] | None = None) -> SyncRun:
        """One run of the source; harnesses whose source changes state across runs override it."""
        return run_sync(store, self.config(), self.source, full=full, on_batch=on_batch)


class Harness(ABC):
    """How a plugin serves a ground truth through its adapter. Small by design: see docs/plugins.md."""

    behaviours: ClassVar[frozenset[Behaviour]] = frozenset()
    """The hostile behaviours :meth:`serve` can switch on; the kit skips the others, saying so."""

    @abstractmethod
    def serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> AbstractContextManager[Served]:
        """Serve a fresh ground truth (with ``invalid`` bad cases) showing ``behaviours``.

        Only declared behaviours are asked for. The truth should be small (a few dozen
        cases, a handful of batches): the crash check syncs twice per batch.
        """


class _Injected(RuntimeError):
    """The crash the kit injects after a batch."""


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _captured_logs() -> Iterator[list[str]]:
    handler = _Logs()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)


def _last_run(store: Store, source: str) -> SyncRun:
    with store.engine.connect() as conn:
        run_id = conn.execute(select(RUNS.c.id).where(RUNS.c.source == source).order_by(RUNS.c.id.desc())).scalar()
    if run_id is None:
        raise ConformanceFailure(f"no run of {source} is in the ledger")
    return ledger.get_run(store, run_id)


def _differences(stored: Mapping[str, CaseRecord], expected: Mapping[str, CaseRecord]) -> str:
    got, want = hashes(stored), hashes(expected)
    parts = []
    if missing := sorted(want.keys() - got.keys()):
        parts.append(f"missing {len(missing)} ({', '.join(missing[:10])})")
    if extra := sorted(got.keys() - want.keys()):
        parts.append(f"not in the truth {len(extra)} ({', '.join(extra[:10])})")
    if different := sorted(ref for ref in want.keys() & got.keys() if want[ref] != got[ref]):
        fields = sorted(
            {name for ref in different for name, value in expected[ref] if getattr(stored[ref], name) != value}
        )
        parts.append(f"different {len(different)} ({', '.join(different[:10])}; fields {', '.join(fields)})")
    return "; ".join(parts)


class Conformance:
    """The checks of the contract, for one harness and one (empty, migrated) store."""

    def __init__(self, harness: Harness, store: Store) -> None:
        self.harness = harness
        self.store = store

    def _serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> AbstractContextManager[Served]:
        undeclared = behaviours - self.harness.behaviours
        if undeclared:
            raise ValueError(f"the harness does not declare {', '.join(sorted(undeclared))}")
        return self.harness.serve(behaviours, invalid=invalid)

    def assert_equals_truth(self, served: Served, check: str) -> None:
        """The store holds exactly the truth: its good cases, and its bad ones in quarantine."""
        stored = stored_records(self.store, served.source)
        expected = served.expected()
        if stored != expected:
            raise ConformanceFailure(f"{check}: the store is not the ground truth: {_differences(stored, expected)}")
        quarantined = {ref for ref in unresolved_quarantine(self.store, served.source) if ref is not None}
        if quarantined != served.expected_quarantined():
            wrong = sorted(quarantined ^ served.expected_quarantined())
            raise ConformanceFailure(f"{check}: quarantined records differ from the truth's bad cases: {wrong[:10]}")

    def _sync(self, served: Served, check: str, *, full: bool = False) -> SyncRun:
        try:
            return served.sync(self.store, full=full)
        except Exception as exc:
            raise ConformanceFailure(f"{check}: the sync failed: {exc}") from exc

    def full_sync(self, behaviours: frozenset[Behaviour] = frozenset(), *, invalid: int = 0) -> None:
        """A sync (and, if records change between pages or faults strike, the runs after it) equals the truth.

        With records changing between pages the next run catches up; with ignored filters the
        next, incremental run meets the server's filter on a time window too: it must neither
        fail nor change the store wrongly.
        """
        check = f"full sync ({', '.join(sorted(behaviours)) or 'a well-behaved server'})"
        with self._serve(behaviours, invalid=invalid) as served:
            self._converge(served, check, behaviours)
            if behaviours & {Behaviour.changes_between_pages, Behaviour.ignored_filters}:
                self._sync(served, check + ", the run after")
            self.assert_equals_truth(served, check)

    def _converge(
        self, served: Served, check: str, behaviours: frozenset[Behaviour], errors: list[str] | None = None
    ) -> None:
        """A run; with transient faults, a failed run may be followed by at most two more, which resume it.

        The message of every failed run is added to ``errors``.
        """
        attempts = 3 if Behaviour.transient_faults in behaviours else 1
        for attempt in range(1, attempts + 1):
            try:
                served.sync(self.store)
                return
            except Exception as exc:
                if errors is not None:
                    errors.append(str(exc))
                if attempt == attempts:
                    raise ConformanceFailure(f"{check}: the sync failed: {exc}") from exc

    def unchanged_resync(self) -> None:
        """An unchanged re-sync, incremental or full, changes nothing in the store."""
        check = "unchanged re-sync"
        with self._serve(frozenset(), invalid=2) as served:
            self._sync(served, check)
            before = dump(self.store)
            for full in (False, True):
                run = self._sync(served, check, full=full)
                if (run.inserted, run.updated, run.deleted) != (0, 0, 0):
                    raise ConformanceFailure(
                        f"{check} ({'full' if full else 'incremental'}): inserted {run.inserted}, "
                        f"updated {run.updated}, deleted {run.deleted}; expected none"
                    )
                if dump(self.store) != before:
                    raise ConformanceFailure(f"{check} ({'full' if full else 'incremental'}): the store changed")

    def crash_and_resume(self) -> int:
        """A crash after batch k, for every k, then a re-run: exactly the truth. Returns the batches seen."""
        with self._serve(frozenset(), invalid=1) as served:
            k = 1
            while True:
                empty(self.store)

                def crash(done: BatchDone, at: int = k) -> None:
                    if done.number == at:
                        raise _Injected(f"crash injected after batch {at}")

                try:
                    served.sync(self.store, on_batch=crash)
                except _Injected:
                    pass
                else:
                    if k == 1:
                        raise ConformanceFailure("crash and resume: the sync yielded no batch")
                    return k - 1  # the run had fewer than k batches: every crash point is done
                check = f"crash after batch {k}, then a re-run"
                self._sync(served, check)
                self.assert_equals_truth(served, check)
                k += 1

    def changes_are_caught(self) -> None:
        """Cases changed in the source after a sync reach the store on the next incremental run."""
        check = "cases changed after a sync"
        with self._serve(frozenset()) as served:
            self._sync(served, check)
            served.change(5)
            self._sync(served, check)
            self.assert_equals_truth(served, check)

    def wrong_total_fails(self) -> str:
        """A total that disagrees with what arrives fails the run (exit 1) with a message saying so."""
        check = "a total that disagrees with the records"
        with self._serve(frozenset({Behaviour.wrong_total})) as served:
            try:
                run = served.sync(self.store)
            except Exception as exc:
                message = str(exc)
            else:
                raise ConformanceFailure(f"{check}: the run ended {run.status} instead of failing")
            run = _last_run(self.store, served.source)
            if run.status != ledger.FAILED or exit_code(run) != 1:
                raise ConformanceFailure(f"{check}: the run is {run.status} (exit {exit_code(run)}), not failed")
            if "total" not in (run.error or "") or "total" not in message:
                raise ConformanceFailure(f"{check}: the message does not name the total: {run.error!r}")
            return run.error or ""

    def no_cpr_outside_quarantine(self, behaviours: frozenset[Behaviour] = frozenset()) -> None:
        """No CPR of the truth in the store, the ledger, log lines or errors; only in quarantine payloads."""
        check = "no CPR outside quarantine payloads"
        with self._serve(behaviours, invalid=3) as served, _captured_logs() as lines:
            errors: list[str] = []
            self._converge(served, check, behaviours, errors)
            if not unresolved_quarantine(self.store, served.source):
                raise ConformanceFailure(f"{check}: nothing was quarantined, so the check proves nothing")
            places = cpr_leaks(self.store, served.cprs(), also=[*lines, *errors])
            if places:
                raise ConformanceFailure(f"{check}: a CPR of the truth is in {', '.join(places)}")
