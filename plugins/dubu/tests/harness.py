"""The conformance kit's harness for DUBU: the simulator over mutual TLS on loopback, its knobs per behaviour.

Every case is read through the real path: ``HentAendredeSager`` pages behind continuation
tokens, then ``HentSag`` per case, each call a SOAP 1.1 request with the InvocationContext
header over HTTPS with the test CA's client certificate.

How each kit behaviour exists in the DUBU protocol:

- ``capped_pages``: the service caps pages at 3 and returns a random 0..3 references on each,
  below the ``MaksAntal`` asked for (an empty page may carry a token); only the continuation
  token ends a listing;
- ``ignored_filters``: ``AendretEfter`` is ignored and every case is listed, older ones too, and
  the agreement's scope as well: two cases of another municipality (``Kommunekode``) are listed
  and delivered. The adapter checks the time window on each reference and the municipality on
  each case itself;
- ``optional_fields_absent``: ``sparse``: entry ids, ``BrugerUUID``, ``Enhed``, ``Kontering``,
  ``Leverandoer``, ``Maaler``, ``KLEEmne``, the listing's ``Status`` and ``SvarTidspunkt`` left out;
- ``unknown_fields_and_values``: elements the contract does not know, in a foreign namespace and in
  DUBU's own, and code values it does not list where a reader must tolerate them (a case
  ``Status``, ``Relation``, plan and consent types, the act of an undersøgelse);
- ``field_casing``: DUBU's analogue is the namespace prefix: ``ns2``, ``tns``, a default namespace,
  other prefixes, and other SOAP envelope prefixes, changing between answers, with offsets
  that vary (``Z``, ``+01:00``, ``+02:00``); and values written another way the contract allows:
  UUIDs in upper case, CPRs without the dash, booleans as ``1``/``0``, whitespace around values;
- ``changes_between_pages``: three cases change when a listing's second page is asked for, which
  moves them to the end of the listing and shifts the offsets the tokens stand for;
- ``duplicates_across_pages``: each page repeats the last reference of the page before;
- ``transient_faults``: 502/503/504 without SOAP, faults 5001/5002, dropped connections and
  continuation tokens that expire (fault 2002).

Left out, because it cannot exist in this protocol: ``wrong_total``. ``HentAendredeSager``
reports no count or total of any kind; its one end signal is an absent or empty
``FortsaettelsesToken``, which carries no number that could disagree with the references
that arrive. A listing that ends early is, by construction, indistinguishable from a complete
one. The one way the end signal can be wrong, a token that comes back so the listing never
ends, fails the run loudly (``test_dubu_conformance.py`` shows it against the simulator's
``repeat_token`` knob); a faked "total" would test nothing the service can do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.config import BridgeConfig, parse_config
from bridge.model.records import CaseRecord
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge.testing import Behaviour, Harness, Served
from bridge_dubu.simulator import (
    DubuSimulator,
    SimulatorSettings,
    TlsMaterial,
    connection_settings,
    serve_simulator,
)

MUNICIPALITY = "851"

KNOBS: dict[Behaviour, dict[str, Any]] = {
    Behaviour.capped_pages: {"max_page": 3, "short_pages": True},
    Behaviour.ignored_filters: {"ignore_filter": True, "foreign_cases": 2},
    Behaviour.optional_fields_absent: {"sparse": True},
    Behaviour.unknown_fields_and_values: {"unknown_elements": True, "unknown_values": True},
    Behaviour.field_casing: {"vary_prefixes": True, "upper_case_uuids": True, "value_variants": True},
    Behaviour.changes_between_pages: {"modify_during_paging": 3},
    Behaviour.duplicates_across_pages: {"duplicates": True},
    Behaviour.transient_faults: {"error_rate": 0.06, "fault_rate": 0.06, "drop_rate": 0.03, "token_expiry_rate": 0.05},
}


def small_truth(invalid: int = 0, seed: int = 5) -> GroundTruth:
    """About twenty cases: several pages of seven, few enough for the kit's many syncs."""
    return generate(
        seed=seed, municipalities=1, caseworkers=1, cases=20, invalid=invalid, municipality_codes=[MUNICIPALITY]
    )


class DubuServed(Served):
    source = "dubu"

    def __init__(self, simulator: DubuSimulator, endpoint: str, tls: TlsMaterial, **adapter: Any) -> None:
        self.simulator = simulator
        self.settings = connection_settings(endpoint, simulator.settings, tls) | {
            "page_size": 7,
            "concurrency": 4,
            "retry_base_delay": 0.001,
            **adapter,
        }

    def config(self) -> BridgeConfig:
        source = {"name": self.source, "adapter": "dubu", "municipality": MUNICIPALITY, "settings": self.settings}
        return parse_config({"sources": [source]}, Path("."))

    def expected(self) -> dict[str, CaseRecord]:
        return {r.source_ref: r for r in self.simulator.expected_records(self.config().pseudonymizer())}

    def expected_quarantined(self) -> set[str]:
        return {self.simulator.case_uuid(c) for c in self.simulator.truth.invalid_cases()}

    def cprs(self) -> set[str]:
        return self.simulator.truth.cprs()

    def change(self, n: int) -> None:
        self.simulator.modify(n, seed=n)


class DubuHarness(Harness):
    """Serves a small truth through the DUBU simulator over mutual TLS, with the test CA's ``tls`` material."""

    behaviours = frozenset(KNOBS)

    def __init__(self, tls: TlsMaterial, **knobs: Any) -> None:
        self.tls = tls
        self.knobs = knobs
        """Simulator settings on top of the behaviours'."""

    @contextmanager
    def serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> Iterator[Served]:
        knobs: dict[str, Any] = {"fault_seed": 3, **self.knobs}
        for behaviour in behaviours:
            knobs |= KNOBS[behaviour]
        simulator = DubuSimulator(small_truth(invalid), SimulatorSettings(**knobs))
        adapter = {"max_attempts": 10, "max_listing_restarts": 20} if Behaviour.transient_faults in behaviours else {}
        with serve_simulator(simulator, self.tls) as endpoint:
            yield DubuServed(simulator, endpoint, self.tls, **adapter)
