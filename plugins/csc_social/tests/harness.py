"""The conformance kit's harness for CSC Social: the ground truth written as nightly extract sets.

:meth:`CscHarness.serve` writes a small truth into a temporary drop folder as the vendor
delivers it over two nights, a full set and then a delta (new, changed, closed and deleted
cases), and :meth:`CscServed.change` writes the next night's delta. The source reads a few
case images per batch, so each set takes several batches and a crash can strike inside a
set or between sets. Each behaviour is a fault of :class:`bridge_csc_social.simulator.Faults`:

- ``wrong_total``: the manifest promises one case row more than ``cases.csv`` holds (a
  truncated transfer whose digest still matches): the set is rejected whole and the run fails.
- ``transient_faults``: the delta's ``measures.csv`` is still arriving when the first run reads
  it, though its manifest is there: that run applies the full set and fails on the delta
  (``manifest_mismatch``); the rest of the file arrives before the next run, which applies it.
- ``changes_between_pages``: the next night's set is written while a run reads the drop
  (after its first batch); the run after applies it.
- ``duplicates_across_pages``: each set is delivered twice, the copy under a name a minute
  later, so every case is in several sets; a set re-delivered under its own name is what every
  re-run of the kit sees (``skipped_already_applied``).
- ``optional_fields_absent``: FORMAT.md §3 requires every column, optional ones too (one
  missing rejects the set, ``missing_column``), so an absent value is an empty one; served are
  empty values spelt ``""`` and as spaces.
- ``unknown_fields_and_values``: unknown columns first and last in every file, an unknown
  manifest key, a listed CSV and an unlisted file the format does not know, a stray file in the
  drop folder. The format's code lists are closed: an unknown code is ``invalid_value``
  (FORMAT.md §6), as the truth's unknown theme is, and quarantined; ``ANDET``, a code bridge has
  no place for, is in every set, counted and not stored.
- ``field_casing``: header names are case-sensitive (FORMAT.md §2: another casing is a missing
  required column, which rejects the set), so served are the variants the format allows:
  columns in another order, and names and values padded with spaces.

Not declared, because a drop folder cannot show them: ``capped_pages`` (there are no pages: a
set is read whole, file by file) and ``ignored_filters`` (there is no query to ignore: a set
holds what the vendor extracted, and its rows are checked anyway: the source's Kommunekode,
a child row's case in the same set).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge.config import BridgeConfig, parse_config
from bridge.model.records import CaseRecord
from bridge.model.tables import SyncRun
from bridge.store import Store
from bridge.sync import BatchDone
from bridge.synthetic.generate import generate
from bridge.testing import Behaviour, Harness, Served
from bridge_csc_social.simulator import CscSimulator, Faults, source_settings

MUNICIPALITY = "461"
BATCH_SIZE = 6

EVERY_NIGHT: dict[Behaviour, Faults] = {
    Behaviour.optional_fields_absent: Faults(blank=True),
    Behaviour.unknown_fields_and_values: Faults(unknown=True),
    Behaviour.field_casing: Faults(reorder=True, padded=True),
    Behaviour.duplicates_across_pages: Faults(twice=True),
}
FIRST_NIGHT = {Behaviour.wrong_total: Faults(mismatch=True)}
SECOND_NIGHT = {Behaviour.transient_faults: Faults(truncate=True)}


def _faults(behaviours: frozenset[Behaviour], *knobs: dict[Behaviour, Faults]) -> Faults:
    """The faults of every behaviour in ``behaviours`` that ``knobs`` give, at once."""
    chosen = [faults for knob in knobs for b, faults in knob.items() if b in behaviours]
    return Faults(**{name: True for faults in chosen for name, on in vars(faults).items() if on})


class CscServed(Served):
    source = "csc"

    def __init__(self, simulator: CscSimulator, behaviours: frozenset[Behaviour]) -> None:
        self.simulator = simulator
        self.every_night = _faults(behaviours, EVERY_NIGHT)
        self.simulator.night(_faults(behaviours, EVERY_NIGHT, FIRST_NIGHT))
        second = self.simulator.night(_faults(behaviours, EVERY_NIGHT, SECOND_NIGHT))
        self.uploading = [second] if Behaviour.transient_faults in behaviours else []
        """Sets whose last file is still arriving; it has arrived after the next run."""
        self.arriving = Behaviour.changes_between_pages in behaviours
        """Whether the next night is written during the next run."""

    def config(self) -> BridgeConfig:
        settings = source_settings(self.simulator.drop, batch_size=BATCH_SIZE)
        source = {"name": self.source, "adapter": "csc_social", "municipality": MUNICIPALITY, "settings": settings}
        return parse_config({"sources": [source]}, Path("."))

    def expected(self) -> dict[str, CaseRecord]:
        return {r.source_ref: r for r in self.simulator.expected_records(self.config().pseudonymizer())}

    def expected_quarantined(self) -> set[str]:
        return {str(c.id) for c in self.simulator.truth.invalid_cases() if c.id in self.simulator.present}

    def cprs(self) -> set[str]:
        return self.simulator.truth.cprs()

    def change(self, n: int) -> None:
        self.simulator.night(self.every_night, changed=n)

    def sync(self, store: Store, *, full: bool = False, on_batch: Callable[[BatchDone], None] | None = None) -> SyncRun:
        def batch_done(done: BatchDone) -> None:
            if self.arriving:
                self.arriving = False
                self.simulator.night(self.every_night)
            if on_batch is not None:
                on_batch(done)

        try:
            return super().sync(store, full=full, on_batch=batch_done)
        finally:
            for name in self.uploading:
                self.simulator.complete(name)
            self.uploading = []


class CscHarness(Harness):
    """Serves about twenty cases over two nights into a fresh drop folder."""

    behaviours = frozenset({*EVERY_NIGHT, *FIRST_NIGHT, *SECOND_NIGHT, Behaviour.changes_between_pages})

    @contextmanager
    def serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> Iterator[Served]:
        truth = generate(seed=7, caseworkers=1, cases=20, invalid=invalid, municipality_codes=[MUNICIPALITY])
        with tempfile.TemporaryDirectory(prefix="bridge-csc-kit-") as drop:
            yield CscServed(CscSimulator(truth, Path(drop) / "drop", seed=2), behaviours)
