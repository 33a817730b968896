"""The harness of the built-in ``synthetic`` source: the smallest complete example of one.

The synthetic source's truth is a function of its settings, so serving a behaviour is
setting its knob, and a change to the truth is one more touch round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.config import BridgeConfig, parse_config
from bridge.model.records import CaseRecord
from bridge.model.tables import SyncRun
from bridge.store import Store
from bridge.sync import BatchDone
from bridge.synthetic.adapter import SyntheticConfig
from bridge.testing.kit import Behaviour, Harness, Served

MUNICIPALITY = "461"
TOUCH_COUNT = 5

KNOBS: dict[Behaviour, dict[str, Any]] = {
    Behaviour.capped_pages: {"page_cap": 7},
    Behaviour.wrong_total: {"total_skew": 2},
    Behaviour.ignored_filters: {"unrelated": 2},
    Behaviour.optional_fields_absent: {"sparse": True},
    Behaviour.unknown_fields_and_values: {"unknown": True},
    Behaviour.field_casing: {"casing": True},
    Behaviour.changes_between_pages: {"change_while_paging": TOUCH_COUNT},
    Behaviour.duplicates_across_pages: {"duplicates": True},
    Behaviour.transient_faults: {"fail_after_batches": 1},
}


class SyntheticServed(Served):
    source = "syn"

    def __init__(self, settings: dict[str, Any], adapter: str) -> None:
        self.settings = settings
        self.adapter = adapter

    def _source(self) -> SyntheticConfig:
        return SyntheticConfig.model_validate(self.settings)

    def config(self) -> BridgeConfig:
        source = {"name": self.source, "adapter": self.adapter, "municipality": MUNICIPALITY, "settings": self.settings}
        return parse_config({"sources": [source]}, Path("."))

    def expected(self) -> dict[str, CaseRecord]:
        persons = self.config().pseudonymizer()
        return {r.source_ref: r for r in self._source().truth(MUNICIPALITY).expected_records(persons)}

    def expected_quarantined(self) -> set[str]:
        return {str(c.id) for c in self._source().truth(MUNICIPALITY).invalid_cases()}

    def cprs(self) -> set[str]:
        return self._source().truth(MUNICIPALITY).cprs()

    def change(self, n: int) -> None:
        if n != TOUCH_COUNT:
            raise ValueError(f"the synthetic source changes {TOUCH_COUNT} cases per touch round")
        self.settings["touched"] += 1

    def sync(self, store: Store, *, full: bool = False, on_batch: Callable[[BatchDone], None] | None = None) -> SyncRun:
        try:
            return super().sync(store, full=full, on_batch=on_batch)
        finally:
            # What happened to the source during the run stays: a failure was transient, and
            # the cases changed while paging are the next touch round from now on.
            self.settings.pop("fail_after_batches", None)
            if self.settings.pop("change_while_paging", 0):
                self.settings["touched"] += 1


class SyntheticHarness(Harness):
    """Serves a small synthetic truth (about 40 cases, in pages of 10) with any behaviour."""

    behaviours = frozenset(KNOBS)

    def __init__(self, adapter: str = "synthetic") -> None:
        self.adapter = adapter
        """The registered adapter name; a subclass of the synthetic adapter may be tried instead."""

    @contextmanager
    def serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> Iterator[Served]:
        settings: dict[str, Any] = {
            "seed": 11,
            "caseworkers": 1,
            "invalid": invalid,
            "page_size": 10,
            "touched": 0,
            "touch_count": TOUCH_COUNT,
        }
        for behaviour in behaviours:
            settings |= KNOBS[behaviour]
        yield SyntheticServed(settings, self.adapter)
