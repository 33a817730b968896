"""The conformance kit against the synthetic adapter, every hostile behaviour on; and a broken adapter failing it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

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


def test_the_kit_example_in_docs_plugins_md_runs_as_a_plugins_tests(tmp_path: Path) -> None:
    """The example needs no conftest: pytest loads the kit through bridge's pytest11 entry point."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- example-kit -->\n```python\n(.*?)^```", page, re.S | re.M)
    assert found, "docs/plugins.md lost its conformance kit example"
    (tmp_path / "test_conformance.py").write_text(found.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "a_full_sync_equals and sqlite"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
