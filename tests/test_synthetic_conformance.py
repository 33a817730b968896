"""The conformance kit against the synthetic adapter, every hostile behaviour on; and a broken adapter failing it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bridge.adapter import Adapter, Batch
from bridge.hookspecs import hookimpl
from bridge.plugins import registered
from bridge.store import Store
from bridge.synthetic.adapter import SyntheticAdapter
from bridge.testing import Behaviour, Conformance, ConformanceFailure, Harness
from bridge.testing.plugin import ConformanceSuite
from bridge.testing.stores import empty
from bridge.testing.synthetic import SyntheticHarness


class TestSyntheticConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self) -> Harness:
        return SyntheticHarness()


def test_the_synthetic_harness_declares_every_behaviour() -> None:
    assert SyntheticHarness.behaviours == frozenset(Behaviour)


class _StopsOnAShortPage(SyntheticAdapter):
    """Takes a page shorter than it asked for as the end of the listing, as bridge once did."""

    name = "short_page"

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        for batch in super().fetch(cursor):
            yield batch
            if len(batch.records) + len(batch.rejections) < self.config.page_size:
                return


class _Plugin:
    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(_StopsOnAShortPage)


def test_an_adapter_that_stops_on_a_short_page_fails_the_kit(kit_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", "conformance-kit-person-key-secret")
    capped = frozenset({Behaviour.capped_pages})
    Conformance(SyntheticHarness(), kit_store).full_sync(capped)  # the real adapter passes
    empty(kit_store)
    with registered(_Plugin()), pytest.raises(ConformanceFailure, match="missing") as failed:
        Conformance(SyntheticHarness(adapter="short_page"), kit_store).full_sync(capped)
    assert "the store is not the ground truth" in str(failed.value)
