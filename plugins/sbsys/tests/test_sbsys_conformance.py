"""The conformance kit against the sbsys adapter and its simulator, every hostile behaviour on."""

from __future__ import annotations

import pytest
from plugins.sbsys.tests.harness import SbsysHarness

from bridge.testing import Behaviour, Harness
from bridge.testing.plugin import ConformanceSuite

pytestmark = pytest.mark.slow


class TestSbsysConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self) -> Harness:
        return SbsysHarness()


def test_the_sbsys_harness_declares_every_behaviour() -> None:
    assert SbsysHarness.behaviours == frozenset(Behaviour)
