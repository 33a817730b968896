"""Support for adapter authors' tests: the conformance kit and reading the store back.

- :mod:`bridge.testing.kit`: :class:`Harness` and :class:`Served` (what a plugin provides),
  :class:`Behaviour` (the hostile-server knobs), :class:`Conformance` (the checks);
- :mod:`bridge.testing.plugin`: the pytest plugin (``kit_store``, :class:`ConformanceSuite`);
- :mod:`bridge.testing.storecheck`: the store read back as records, independently of the writer;
- :mod:`bridge.testing.stores`: SQLite and PostgreSQL stores for tests.

Production code never imports this package.
"""

from bridge.testing.kit import TOLERATED, Behaviour, Conformance, ConformanceFailure, Harness, Served

__all__ = ["TOLERATED", "Behaviour", "Conformance", "ConformanceFailure", "Harness", "Served"]
