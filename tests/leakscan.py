"""A scan of what failure tests produce: no person key, birth date, CPR, password or secret in it.

The ``leak_scan`` fixture (conftest) collects every log line written while the test runs, as
the CLI's handlers format it (CPR and secret redaction included), and at the end the ledger's
errors and the quarantine's reasons of the stores the test named; a test adds the messages it
saw (``said``) and the values that must not appear anywhere (``forbid``). The test fails at
teardown on any hit, naming where it was.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import text

from bridge.cli.output import JsonLineFormatter
from bridge.privacy import CprRedactingFilter, Pseudonymizer
from bridge.store import Store
from bridge.synthetic.truth import GroundTruth

# Any CPR-shaped number is suspect in a failure message, whether the test knows it or not.
_CPR = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


@dataclass
class LeakScan(logging.Handler):
    forbidden: set[str] = field(default_factory=set)
    texts: list[tuple[str, str]] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)
        self.addFilter(CprRedactingFilter())
        self.setFormatter(JsonLineFormatter())

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        line.pop("time")  # the clock's date is not a person's
        self.texts.append((f"log {record.name}", json.dumps(line, ensure_ascii=False)))

    def forbid(self, *values: object) -> None:
        """Values that must appear nowhere (person keys, birth dates, passwords, secrets)."""
        self.forbidden.update(str(v) for v in values if v)

    def forbid_truth(self, truth: GroundTruth, persons: Pseudonymizer) -> None:
        """Every CPR of a ground truth, and every valid case's person key, family key and birth date."""
        for cpr in truth.cprs():
            self.forbid(cpr, cpr.replace("-", ""))
        for record in truth.expected_records(persons):
            self.forbid(record.child_key, record.family_key, record.child_birth_date.isoformat())

    def said(self, where: str, message: str) -> None:
        """A message the test saw: an exception's text, a command's stderr or stdout."""
        self.texts.append((where, message))

    def watch(self, store: Store) -> None:
        """Scan this store's run ledger errors and quarantine reasons at the end."""
        self.stores.append(store)

    def hits(self) -> list[str]:
        texts = list(self.texts)
        for store in self.stores:
            with store.engine.connect() as conn:
                for (error,) in conn.execute(text("SELECT error FROM sync_runs WHERE error IS NOT NULL")):
                    texts.append(("sync_runs.error", error))
                for (reason,) in conn.execute(text("SELECT reason FROM quarantine")):
                    texts.append(("quarantine.reason", reason))
        found = []
        for where, said in texts:
            found += [f"{where}: {value!r} in {said[:300]!r}" for value in self.forbidden if value in said]
            found += [f"{where}: CPR-shaped {m!r}" for m in _CPR.findall(said)]
        return found
