"""The synthetic ground truth and the built-in `synthetic` source, for the demo, simulators, benchmarks and tests."""

from bridge.synthetic.generate import generate, touch
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase

__all__ = ["BROKEN_DATE_TEXT", "Defect", "GroundTruth", "TruthCase", "generate", "touch"]
