"""The conformance kit against the csc_social adapter and its extract simulator."""

from __future__ import annotations

import pytest
from plugins.csc_social.tests.harness import CscHarness

from bridge.testing import Behaviour, Harness
from bridge.testing.plugin import ConformanceSuite


class TestCscConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self) -> Harness:
        return CscHarness()


def test_the_csc_harness_declares_every_behaviour_a_drop_folder_can_show() -> None:
    assert frozenset(Behaviour) - CscHarness.behaviours == {Behaviour.capped_pages, Behaviour.ignored_filters}
