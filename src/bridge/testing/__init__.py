"""Synthetic ground truth shared by the simulators and the tests."""

from bridge.testing.generate import generate, touch
from bridge.testing.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase

__all__ = ["BROKEN_DATE_TEXT", "Defect", "GroundTruth", "TruthCase", "generate", "touch"]
