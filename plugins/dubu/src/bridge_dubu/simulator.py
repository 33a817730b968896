"""A simulated DUBU (SF1475 on Serviceplatformen) serving the synthetic ground truth over mutual TLS.

``DubuSimulator(truth, settings)`` answers the reference contract the way the service does:
``HentAendredeSager`` with offset continuation tokens that expire, ``HentSag`` with the case's
full ICS content, the InvocationContext checked on every call (four lower-case UUIDs of the
service agreement) and faults as SOAP 1.1 with HTTP 500. :func:`simulate` serves it over HTTPS
with a test CA made at run time (trustme): the server asks for a client certificate signed by
that CA, so a client without one is refused at the TLS layer, and it writes the client
certificate, key and CA it expects beside the settings that reach it.

How the ground truth is laid out in DUBU (:meth:`DubuSimulator.expected_records` gives it as a
correct adapter reads it back):

- each case, measure, caseworker, underretning, undersøgelse and afgørelse has a UUID made from
  the truth's reference (uuid5), the case number is the truth's;
- an underretning carries its receipt and assessment (``ModtagetDato``/``VurderetDato``), with a
  time of day when the truth has one, a date only otherwise (migrated from DUBU 2.0);
- plans, follow-ups, child conversations and consents have no id in the contract, journal notes
  and family case numbers no place in it: a DUBU source has none of those;
- cases with a :class:`~bridge.synthetic.truth.Defect` go on the wire broken.

Hostile behaviours (:class:`SimulatorSettings`, all on with ``hostile=true``): pages shorter than
asked for (some empty), namespace prefixes and offsets that change between answers, UUIDs in
upper case, values written another allowed way (CPRs without the dash, ``1``/``0``, whitespace),
unknown elements, references repeated across pages, a ``AendretEfter`` filter that is ignored, cases of another
municipality listed too (``foreign_cases``),
cases changed while a client pages (which shifts the offsets the tokens stand for), latency,
outages (502/503/504), faults 5001/5002, continuation tokens that expire (2002), dropped
connections. ``repeat_token`` (a listing that never ends) is left to be set alone. Per-case
trouble is set through the handle:
:meth:`DubuSimulator.undeliverable` (3002), :meth:`DubuSimulator.remove` (3001) and
:meth:`DubuSimulator.poison` (a DOCTYPE, an external entity or an entity bomb in the answer).
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import threading
import time as monotonic_time
import uuid as uuidlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import trustme
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.errors import ConfigError
from bridge.model.records import Act, CaseRecord, EventKind, Theme
from bridge.privacy import Pseudonymizer, is_unknown_cpr
from bridge.simulation import RunningSimulator, SimulatorRequest
from bridge.simulation.server import ServerTLS, serve
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase, TruthEvent
from bridge_dubu import wire

_NAMESPACE: Final = uuidlib.UUID("4c0f6d5e-2b7a-5d1e-9a43-1f2c3b4d5e6f")
PREFIXES: Final = ("ns2", "tns", None, "dubu", "a")
"""The DUBU prefixes answers rotate through when ``vary_prefixes`` is on (``None``: default namespace)."""
ENVELOPE_PREFIXES: Final = ("S", "soap", "soapenv", "env")
FOREIGN_MUNICIPALITY: Final = "101"
"""The kommunekode of ``foreign_cases`` (147 when the simulated municipality is 101 itself)."""

TEST_CONTEXT: Final = wire.InvocationContext(
    service_agreement="9e360cd4-ecf3-5113-940b-f7cb7074948a",
    user_system="4dd696f9-3008-5c5e-ac6f-9a7423ed42eb",
    user="50c465fb-1833-5739-8e22-ad04f4b746af",
    service="d3a96da3-5559-58a2-a7f8-c9ae7379a6b7",
)
"""The service agreement the simulator knows (the UUIDs of the reference samples)."""


def wire_uuid(kind: str, ref: object) -> str:
    """The DUBU UUID of a thing the truth names by reference."""
    return str(uuidlib.uuid5(_NAMESPACE, f"{kind}:{ref}"))


class SimulatorSettings(BaseModel):
    """The service agreement, and the fault and hostility knobs of a simulated DUBU."""

    model_config = ConfigDict(extra="forbid")

    service_agreement_uuid: str = TEST_CONTEXT.service_agreement
    user_system_uuid: str = TEST_CONTEXT.user_system
    user_uuid: str = TEST_CONTEXT.user
    service_uuid: str = TEST_CONTEXT.service
    municipality: str | None = Field(default=None, description="kommunekode served; default: the truth's only one")
    max_page: int = Field(default=wire.MAX_COUNT, ge=1, le=wire.MAX_COUNT, description="largest page served")
    token_lifetime: float = Field(default=900.0, gt=0, description="seconds a continuation token is valid")
    latency: float = Field(default=0.0, ge=0, description="seconds added to every call")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answered 502/503/504 (no SOAP)")
    fault_rate: float = Field(default=0.0, ge=0, le=1, description="share answered fault 5001/5002")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="share of connections dropped mid-answer")
    short_pages: bool = Field(default=False, description="pages hold fewer references than asked for, some none")
    vary_prefixes: bool = Field(default=False, description="namespace prefixes and offsets change between answers")
    unknown_elements: bool = Field(default=False, description="answers carry elements the contract does not know")
    duplicates: bool = Field(default=False, description="a page repeats references of the page before")
    ignore_filter: bool = Field(default=False, description="AendretEfter is ignored: every case is listed")
    foreign_cases: int = Field(default=0, ge=0, description="cases of another municipality listed and delivered too")
    modify_during_paging: int = Field(default=0, ge=0, description="cases changed when a listing's page 2 is asked for")
    delete_during_paging: int = Field(default=0, ge=0, description="cases deleted when a listing's page 2 is asked for")
    sparse: bool = Field(default=False, description="optional elements left out (ids, unit, account code, …)")
    unknown_values: bool = Field(default=False, description="code values the contract does not list, where allowed")
    upper_case_uuids: bool = Field(default=False, description="UUIDs written in upper case in some answers")
    value_variants: bool = Field(
        default=False, description="values written another allowed way: whitespace, CPRs without dash, 1/0"
    )
    token_expiry_rate: float = Field(default=0.0, ge=0, le=1, description="share of tokens answered fault 2002")
    repeat_token: bool = Field(default=False, description="a second page sends back the token it was asked with")
    hostile: bool = Field(default=False, description="every hostile behaviour on, with a little of each fault")
    fault_seed: int = 0

    @model_validator(mode="after")
    def _hostile(self) -> SimulatorSettings:
        if self.hostile:
            for name in (
                "short_pages",
                "vary_prefixes",
                "unknown_elements",
                "duplicates",
                "ignore_filter",
                "unknown_values",
                "upper_case_uuids",
                "value_variants",
            ):
                object.__setattr__(self, name, True)
            for name, share in (
                ("latency", 0.001),
                ("error_rate", 0.03),
                ("fault_rate", 0.03),
                ("drop_rate", 0.02),
                ("token_expiry_rate", 0.02),
            ):
                if not getattr(self, name):
                    object.__setattr__(self, name, share)
            for name in ("modify_during_paging", "delete_during_paging", "foreign_cases"):
                if not getattr(self, name):
                    object.__setattr__(self, name, 2)
        return self

    def context(self) -> wire.InvocationContext:
        return wire.InvocationContext(
            self.service_agreement_uuid, self.user_system_uuid, self.user_uuid, self.service_uuid
        )


class Poison(StrEnum):
    """Hostile XML a case's ``HentSag`` answer can carry instead of the case."""

    doctype = "doctype"
    file_entity = "file_entity"
    entity_bomb = "entity_bomb"


def poisoned_answer(kind: Poison, target: Path | None = None) -> bytes:
    """A ``HentSagResponse`` envelope with a DTD: an internal DOCTYPE, an external entity reading
    ``target`` (a local file) into the case, or a billion-laughs entity bomb."""
    envelope = (
        '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
        f'<HentSagResponse xmlns="{wire.DUBU_NS}"><Sag><SagUUID>&x;</SagUUID></Sag></HentSagResponse>'
        "</S:Body></S:Envelope>"
    )
    if kind is Poison.doctype:
        dtd = '<!ENTITY x "00000000-0000-0000-0000-000000000000">'
    elif kind is Poison.file_entity:
        dtd = f'<!ENTITY x SYSTEM "{(target or Path("/etc/passwd")).as_uri()}">'
    else:
        levels = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)]
        dtd = "".join(levels) + '<!ENTITY x "&l9;">'
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE S:Envelope [{dtd}]>\n{envelope}'.encode()


@dataclass(frozen=True, slots=True)
class _Listed:
    modified: datetime
    uuid: str
    case: TruthCase


def _ms(value: datetime) -> datetime:
    """DUBU timestamps carry milliseconds."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _paired(
    events: list[TruthEvent], first: EventKind, second: EventKind
) -> list[tuple[TruthEvent, TruthEvent | None]]:
    """The k-th ``first`` event with the k-th ``second`` (an underretning with its assessment)."""
    firsts = sorted((e for e in events if e.kind is first), key=lambda e: (e.occurred_on, e.ref))
    seconds = sorted((e for e in events if e.kind is second), key=lambda e: (e.occurred_on, e.ref))
    return [(f, seconds[k] if k < len(seconds) else None) for k, f in enumerate(firsts)]


def _moment(event: TruthEvent) -> wire.Moment:
    at = getattr(event, "at", None)
    return wire.Moment(event.occurred_on, None if at is None else _ms(at))


def _event_refs(case: TruthCase) -> dict[str, str | None]:
    """The DUBU reference of each truth event: the UUID of the entry it sits in, or none."""
    refs: dict[str, str | None] = {e.ref: None for e in case.events}
    for first, second in _paired(case.events, EventKind.investigation_started, EventKind.investigation_completed):
        refs[first.ref] = wire_uuid("undersoegelse", first.ref)
        if second is not None:
            refs[second.ref] = refs[first.ref]
    for received, assessed in _paired(case.events, EventKind.notification, EventKind.notification_assessed):
        refs[received.ref] = wire_uuid("underretning", received.ref)
        if assessed is not None:
            refs[assessed.ref] = refs[received.ref]
    for event in case.events:
        if event.kind is EventKind.decision:
            refs[event.ref] = wire_uuid("afgoerelse", event.ref)
    return refs


_UNCARRIED: Final = frozenset({EventKind.journal_note})
"""Truth events the contract has no place for."""
_THEMES: Final = frozenset(theme.value for theme in Theme)
_UUIDS: Final = (
    wire.NAMES.case_uuid,
    wire.NAMES.caseworker_uuid,
    wire.NAMES.notification_uuid,
    wire.NAMES.investigation_uuid,
    wire.NAMES.decision_uuid,
    wire.NAMES.measure_uuid,
    wire.NAMES.score_uuid,
)
"""The UUID elements of a case, which ``upper_case_uuids`` writes in upper case."""


class DubuSimulator:
    """The simulated service's state and its starlette application (:attr:`app`)."""

    def __init__(self, truth: GroundTruth, settings: SimulatorSettings) -> None:
        self.truth = truth
        self.settings = settings
        codes = sorted({c.municipality for c in truth.cases} or set(truth.municipalities))
        if settings.municipality is None and len(codes) > 1:
            raise ConfigError("the ground truth holds several municipalities; choose one with `municipality`")
        self.municipality = settings.municipality or (codes[0] if codes else "000")
        self.context = settings.context()
        if self.context.problems():
            raise ConfigError("the simulator's InvocationContext must be four lower-case UUIDs")
        self.requests: Counter[str] = Counter()
        """Calls served, by operation name, plus ``fault:<code>`` for the faults sent."""
        self.paging_modified: list[int] = []
        self.paging_deleted: list[int] = []
        self.monotonic = monotonic_time.monotonic
        """The clock tokens expire by; tests may replace it."""
        self._lock = threading.RLock()
        self._faults = random.Random(settings.fault_seed)
        self._answers = 0
        self._latest = max((c.modified for c in truth.cases), default=datetime.now(UTC))
        self._removed: set[str] = set()
        self._undeliverable: set[str] = set()
        self._poison: dict[str, bytes] = {}
        self._listing: list[_Listed] | None = None
        self._by_uuid: dict[str, TruthCase] = {}
        self._foreign: set[str] = set()
        self.app = Starlette(routes=[Route(wire.SERVICE_PATH, self._endpoint, methods=["POST"])])
        self.app.state.simulator = self
        self.asgi: ASGIApp = _Faults(self.app, self)

    # --- the Python handle -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The service's clock: wall time, but never before the truth's latest change."""
        return _ms(max(datetime.now(UTC), self._latest + timedelta(milliseconds=1)))

    def case_uuid(self, case: TruthCase) -> str:
        return wire_uuid("sag", f"{case.municipality}:{case.id}")

    def modify(self, n: int, seed: int = 0) -> list[int]:
        """Change ``n`` valid cases now; return their ids."""
        from bridge.synthetic.generate import touch

        with self._lock:
            at = self.now()
            changed = touch(self.truth, n, seed, at)
            self._latest = max(self._latest, at)
            self._listing = None
            return changed

    def delete(self, n: int, seed: int = 0) -> list[int]:
        """Delete ``n`` valid cases from the service now (from the listing too); return their ids."""
        with self._lock:
            valid = sorted((c for c in self._cases() if c.defect is None), key=lambda c: c.id)
            chosen = random.Random(seed).sample(valid, min(n, len(valid)))
            gone = {c.id for c in chosen}
            self.truth.cases = [c for c in self.truth.cases if c.id not in gone]
            self._listing = None
            return sorted(gone)

    def undeliverable(self, case_id: int) -> str:
        """``HentSag`` for this case answers fault 3002 from now on; returns its SagUUID."""
        with self._lock:
            uuid = self.case_uuid(self._case(case_id))
            self._undeliverable.add(uuid)
            return uuid

    def remove(self, case_id: int) -> str:
        """``HentSag`` for this case answers fault 3001 (deleted since it was listed); the listing keeps it."""
        with self._lock:
            uuid = self.case_uuid(self._case(case_id))
            self._removed.add(uuid)
            return uuid

    def poison(self, case_id: int, kind: Poison, target: Path | None = None) -> str:
        """``HentSag`` for this case answers hostile XML (see :func:`poisoned_answer`)."""
        with self._lock:
            uuid = self.case_uuid(self._case(case_id))
            self._poison[uuid] = poisoned_answer(kind, target)
            return uuid

    def expected_records(self, persons: Pseudonymizer) -> list[CaseRecord]:
        """The ground truth as a correct adapter reads it from this simulator.

        Equal to :meth:`GroundTruth.expected_records` but for what DUBU assigns or lacks: UUIDs
        as references, timestamps to the millisecond, no journal notes, no family case numbers,
        no references for the entries the contract gives no id.
        """
        with self._lock:
            records = []
            for case in self._cases():
                if case.defect is not None or self.case_uuid(case) in self._removed | self._undeliverable:
                    continue
                record = self.truth.expected_record(case, persons).model_dump()
                record["source_ref"] = self.case_uuid(case)
                record["source_modified"] = _ms(case.modified)
                record["family_case_number"] = None
                if record["caseworker"] is not None:
                    record["caseworker"]["source_ref"] = wire_uuid("bruger", case.caseworker_ref)
                for measure in record["measures"]:
                    measure["source_ref"] = wire_uuid("foranstaltning", measure["source_ref"])
                refs = _event_refs(case)
                if self.settings.sparse:
                    refs = dict.fromkeys(refs)
                    worker = self.truth.caseworkers[case.caseworker_ref]
                    record["caseworker"] |= {"source_ref": worker.logon, "unit": None}
                    for measure in record["measures"]:
                        measure |= {"account_code": None, "provider": None}
                    for assessment in record["assessments"]:
                        assessment["assessor"] = None
                events = []
                for event in record["events"]:
                    if EventKind(event["kind"]) in _UNCARRIED:
                        continue
                    event["source_ref"] = refs[event["source_ref"]]
                    if event.get("occurred_at") is not None:
                        event["occurred_at"] = _ms(event["occurred_at"])
                    events.append(event)
                record["events"] = events
                records.append(CaseRecord.model_validate(record))
            return records

    # --- the truth in DUBU ---------------------------------------------------------------------------

    def _cases(self) -> Iterator[TruthCase]:
        return (c for c in sorted(self.truth.cases, key=lambda c: c.id) if c.municipality == self.municipality)

    def _case(self, case_id: int) -> TruthCase:
        found = next((c for c in self._cases() if c.id == case_id), None)
        if found is None:
            raise KeyError(f"no case {case_id} in the simulated municipality")
        return found

    def _listed(self) -> list[_Listed]:
        """Every case ordered by (SidstAendret as an instant, SagUUID), as the listing pages them."""
        if self._listing is None:
            cases = list(self._cases())
            listed = [_Listed(_ms(c.modified), self.case_uuid(c), c) for c in cases]
            # Another municipality's cases (copies of the first valid ones, under their own UUIDs),
            # as a service that ignores the agreement's scope would list them.
            valid = [c for c in cases if c.defect is None][: self.settings.foreign_cases]
            self._foreign = {wire_uuid("fremmed", c.id) for c in valid}
            listed += [_Listed(_ms(c.modified), wire_uuid("fremmed", c.id), c) for c in valid]
            self._listing = sorted(listed, key=lambda entry: (entry.modified, entry.uuid))
            self._by_uuid = {entry.uuid: entry.case for entry in self._listing}
        return self._listing

    def _offset(self, value: datetime, n: int) -> datetime:
        """The instant written with Z, or in Danish time (+01:00/+02:00), varied by ``n``."""
        return value if n % 2 == 0 else value.astimezone(wire.LOCAL_TZ)

    def _sag(self, case: TruthCase) -> wire.Sag:
        worker = self.truth.caseworkers[case.caseworker_ref]
        before_bl = date(2024, 1, 1)
        holders = [
            wire.CustodyHolder(cpr, ("Mor", "Far")[k] if k < 2 else None)
            for k, cpr in enumerate(case.child.guardians)
            if not is_unknown_cpr(cpr)
        ]
        events = [e for e in case.events if e.kind not in _UNCARRIED]
        sag = wire.Sag(
            uuid=self.case_uuid(case),
            number=case.case_number,
            kle=case.kle if case.id % 3 else None,  # older cases name their KLE emne in the number only
            municipality=case.municipality,
            target_group=case.target_group.value,
            status=wire.STATUS_CLOSED if case.closed is not None else wire.STATUS_OPEN,
            opened=case.opened,
            closed=case.closed,
            modified=self._offset(_ms(case.modified), case.id),
            child_cpr=case.child.cpr,
            child_name=case.child.name,
            custody_holders=holders,
            caseworker=wire.Caseworker(
                name=worker.name, uuid=wire_uuid("bruger", worker.ref), initials=worker.logon, unit=worker.unit
            ),
        )
        refs = _event_refs(case)
        for received, assessed in _paired(events, EventKind.notification, EventKind.notification_assessed):
            sag.notifications.append(
                wire.Notification(
                    _moment(received), None if assessed is None else _moment(assessed), refs[received.ref], "Skole"
                )
            )
        for started, completed in _paired(events, EventKind.investigation_started, EventKind.investigation_completed):
            act = Act.SEL if started.occurred_on < before_bl else Act.BL
            sag.investigations.append(
                wire.Investigation(
                    started.occurred_on,
                    None if completed is None else completed.occurred_on,
                    refs[started.ref],
                    act,
                    "50" if act is Act.SEL else "20",
                )
            )
        for e in events:
            bl = e.occurred_on >= before_bl
            if e.kind is EventKind.plan_made:
                sag.plans.append(wire.Plan(e.occurred_on, "BarnetsPlan" if bl else "Handleplan"))
            elif e.kind is EventKind.follow_up:
                sag.follow_ups.append(e.occurred_on)
            elif e.kind is EventKind.child_conversation:
                sag.conversations.append(e.occurred_on)
            elif e.kind is EventKind.consent:
                sag.consents.append(wire.Consent(e.occurred_on, "IndhentningAfOplysninger"))
            elif e.kind is EventKind.decision:
                basis = wire.LegalBasis(Act.BL, "32") if bl else wire.LegalBasis(Act.SEL, "52", "3", "3")
                sag.decisions.append(wire.Decision(e.occurred_on, basis, refs[e.ref]))
        for m in case.measures:
            sag.measures.append(
                wire.Measure(
                    uuid=wire_uuid("foranstaltning", m.ref),
                    basis=wire.LegalBasis.from_text(m.act, m.paragraph),
                    start=m.start,
                    end=m.end,
                    granted=m.has_grant,
                    account_code=m.account_code,
                    provider=m.provider,
                )
            )
        for n, a in enumerate(case.assessments):
            # An unknown theme (a defect) is written in by _render_case.
            theme = Theme(a.theme) if a.theme in _THEMES else Theme.sundhed
            sag.scores.append(
                wire.Score(theme, a.value, a.assessed_on, a.assessor, wire_uuid("resultatmaaling", f"{case.id}:{n}"))
            )
        return sag

    def _degrade(self, sag: wire.Sag) -> wire.Sag:
        """Leave out optional elements (``sparse``) and write code values the contract does not list
        where a reader must tolerate them (``unknown_values``)."""
        s = self.settings
        if s.sparse:
            sag.kle = sag.child_name = None
            if sag.caseworker is not None:
                sag.caseworker = replace(sag.caseworker, uuid=None, unit=None)
            sag.notifications = [replace(n, uuid=None, notifier=None) for n in sag.notifications]
            sag.investigations = [replace(i, uuid=None, act=None, paragraph=None) for i in sag.investigations]
            sag.decisions = [replace(d, uuid=None, basis=None) for d in sag.decisions]
            sag.measures = [replace(m, account_code=None, provider=None) for m in sag.measures]
            sag.scores = [replace(x, assessor=None, uuid=None) for x in sag.scores]
        if s.unknown_values:
            sag.status = "Genaabnet"  # not listed: the closing date tells open from closed
            sag.custody_holders = [replace(h, relation="Plejemor") for h in sag.custody_holders]
            sag.plans = [replace(p, kind="Opfoelgningsplan") for p in sag.plans]
            sag.consents = [replace(c, kind="Mundtligt") for c in sag.consents]
        return sag

    def _render_case(self, case: TruthCase, style: wire.Style, *, uuid: str | None = None) -> bytes:
        sag = self._degrade(self._sag(case))
        if uuid in self._foreign:
            other = FOREIGN_MUNICIPALITY if self.municipality != FOREIGN_MUNICIPALITY else "147"
            sag.uuid, sag.municipality = uuid, other
        tree = wire.render_case_tree(sag, style)
        if self.settings.unknown_values:
            for element in wire.find_all(tree, wire.NAMES.act):
                parent = element.getparent()
                if parent is not None and wire.local_name(parent) == wire.NAMES.investigation:
                    element.text = "RSL"  # an act the contract does not list, on an entry that stores none
        if self.settings.upper_case_uuids and case.id % 2:
            for name in _UUIDS:
                for element in wire.find_all(tree, name):
                    element.text = (element.text or "").upper()
        if self.settings.value_variants and case.id % 2:
            _vary_values(tree)
        if case.defect is Defect.broken_date:
            for element in wire.find_all(tree, wire.NAMES.opened):
                element.text = BROKEN_DATE_TEXT
        elif case.defect is Defect.unknown_theme:
            for element, assessment in zip(wire.find_all(tree, wire.NAMES.theme), case.assessments, strict=False):
                if assessment.theme not in _THEMES:
                    element.text = assessment.theme.capitalize()
        return wire.serialise(tree)

    # --- answering ----------------------------------------------------------------------------------

    def _style(self) -> wire.Style:
        with self._lock:
            n = self._answers
            self._answers += 1
        s = self.settings
        if not s.vary_prefixes:
            return wire.Style(extension=s.unknown_elements)
        return wire.Style(
            prefix=PREFIXES[n % len(PREFIXES)],
            envelope_prefix=ENVELOPE_PREFIXES[n % len(ENVELOPE_PREFIXES)],
            extension=s.unknown_elements,
        )

    def _fault(self, code: wire.FaultCode, text: str | None = None) -> Response:
        self.requests[f"fault:{code.value}"] += 1
        return Response(wire.render_fault(code, text), status_code=500, media_type=wire.CONTENT_TYPE)

    def _answer(self, body: bytes) -> Response:
        return Response(body, media_type=wire.CONTENT_TYPE)

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            call = wire.read_request(body)
        except wire.WireError as exc:
            return self._fault(wire.FaultCode.invalid_request, f"Forespørgslen kan ikke læses: {exc}")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        action = request.headers.get("soapaction", "").strip()
        if call.operation is None or media_type != "text/xml" or action.strip('"') != action_of(call.operation):
            return self._fault(wire.FaultCode.invalid_request, "Ukendt operation, SOAPAction eller Content-Type")
        self.requests[call.operation.value] += 1
        if call.context is None or call.context.problems():
            return self._fault(wire.FaultCode.context_invalid)
        if (call.context.service_agreement, call.context.user_system, call.context.user, call.context.service) != (
            self.context.service_agreement,
            self.context.user_system,
            self.context.user,
            self.context.service,
        ):
            return self._fault(wire.FaultCode.not_authorised)
        if self._draws(self.settings.fault_rate):
            return self._fault(random.choice((wire.FaultCode.internal_error, wire.FaultCode.unavailable)))
        if call.listing is not None:
            return self._list(call.listing)
        return self._fetch(call.case_uuid)

    def _draws(self, share: float) -> bool:
        if not share:
            return False
        with self._lock:
            return self._faults.random() < share

    def _list(self, listing: wire.ListingRequest) -> Response:
        s = self.settings
        try:
            max_count = wire.MAX_COUNT if listing.max_count is None else int(listing.max_count)
        except ValueError:
            return self._fault(wire.FaultCode.max_count_invalid)
        if not 1 <= max_count <= wire.MAX_COUNT:
            return self._fault(wire.FaultCode.max_count_invalid)
        if listing.changed_after is None:
            return self._fault(wire.FaultCode.invalid_request, "AendretEfter mangler")
        try:
            changed_after = wire.parse_instant(listing.changed_after, wire.NAMES.changed_after)
        except wire.WireError:
            return self._fault(wire.FaultCode.invalid_request, "AendretEfter skal være et tidspunkt med tidszone")
        offset = 0
        if listing.token is not None:
            token = wire.decode_token(listing.token) or {}
            position, issued = token.get("o"), token.get("i")
            if (
                token.get("t") != listing.changed_after
                or not isinstance(position, int)
                or not isinstance(issued, float | int)
                or self.monotonic() - issued > s.token_lifetime
                or self._draws(s.token_expiry_rate)
            ):
                return self._fault(wire.FaultCode.token_expired)
            offset = position
            if s.modify_during_paging and not self.paging_modified:
                self.paging_modified = self.modify(s.modify_during_paging, s.fault_seed)
            if s.delete_during_paging and not self.paging_deleted:
                self.paging_deleted = self.delete(s.delete_during_paging, s.fault_seed + 1)
        with self._lock:
            answered = self.now()
            matching = [e for e in self._listed() if s.ignore_filter or e.modified >= changed_after]
            size = min(max_count, s.max_page)
            if s.short_pages:
                size = self._faults.randint(0, size)
            start = max(0, offset - 1) if s.duplicates and offset else offset
            page = matching[start : offset + size]
            next_offset = offset + size
            more = next_offset < len(matching)
            token_text = (
                wire.encode_token({"o": next_offset, "t": listing.changed_after, "i": self.monotonic()})
                if more
                else None
            )
            if s.repeat_token and listing.token is not None:
                more, token_text = True, listing.token
            references = tuple(
                wire.SagReference(
                    entry.uuid.upper() if s.upper_case_uuids and n % 2 else entry.uuid,
                    self._offset(entry.modified, n),
                    None if n % 5 == 4 or s.sparse else self._listed_status(entry.case),
                )
                for n, entry in enumerate(page)
            )
        # The last page says so with an empty token sometimes, by leaving it out other times.
        answer = wire.ListingPage(
            references, token_text if more else ("" if offset % 2 else None), None if s.sparse else answered
        )
        return self._answer(wire.render_listing(answer, self._style()))

    def _listed_status(self, case: TruthCase) -> str:
        if self.settings.unknown_values:
            return "UnderAfslutning"
        return wire.STATUS_CLOSED if case.closed else wire.STATUS_OPEN

    def _fetch(self, case_uuid: str | None) -> Response:
        if case_uuid is None:
            return self._fault(wire.FaultCode.invalid_request, "SagUUID mangler")
        uuid = case_uuid.lower()
        with self._lock:
            self._listed()
            case = self._by_uuid.get(uuid)
            poisoned = self._poison.get(uuid)
            if case is None or uuid in self._removed:
                return self._fault(wire.FaultCode.case_unknown, f"Sag {uuid} findes ikke")
            if uuid in self._undeliverable:
                return self._fault(
                    wire.FaultCode.case_unavailable,
                    f"Sag {uuid} kan ikke udleveres: sagen er under flytning til anden handlekommune.",
                )
            if poisoned is not None:
                return self._answer(poisoned)
            return self._answer(self._render_case(case, self._style(), uuid=uuid))


_BOOLEANS: Final = {"true": "1", "false": "0"}


def _vary_values(tree: etree._Element) -> None:
    """Write each value of a case another way the contract allows: CPRs without the dash,
    booleans as ``1``/``0``, whitespace around every value."""
    for element in tree.iter():
        if not isinstance(element.tag, str) or len(element) or not element.text:
            continue
        value = element.text
        if wire.local_name(element) in {wire.NAMES.child_cpr, wire.NAMES.holder_cpr}:
            value = value.replace("-", "")
        value = _BOOLEANS.get(value, value)
        element.text = f"\n    {value} "


def action_of(operation: wire.Operation) -> str:
    return operation.soap_action.strip('"')


class _DroppedConnection(Exception):
    """Raised after the response started, so the server hangs up mid-answer."""


class _Faults:
    """ASGI middleware: latency, outages without a SOAP body, and dropped connections."""

    def __init__(self, app: ASGIApp, simulator: DubuSimulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.simulator
        if sim.settings.latency:
            await asyncio.sleep(sim.settings.latency)
        if sim._draws(sim.settings.error_rate):
            status = random.choice((502, 503, 504))
            await Response("<html><body>Service Unavailable</body></html>", status, media_type="text/html")(
                scope, receive, send
            )
        elif sim._draws(sim.settings.drop_rate):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", wire.CONTENT_TYPE.encode()), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b"<?xml version='1.0'?><S:Envelope", "more_body": True})
            raise _DroppedConnection
        else:
            await self.app(scope, receive, send)


def _quiet_dropped(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], _DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_quiet_dropped)


# --- TLS material and serving ----------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """The files a mutual-TLS simulator serves with, and the client files it expects."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_material(directory: Path, *, client_name: str = "bridge-anvendersystem") -> TlsMaterial:
    """A test CA, a server certificate for loopback and a client certificate, written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="bridge DUBU simulator test CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert(f"{client_name}@simulator.invalid", common_name=client_name)
    material = TlsMaterial(
        ca=directory / "dubu-ca.pem",
        server_cert=directory / "dubu-server.pem",
        server_key=directory / "dubu-server.key",
        client_cert=directory / "dubu-client.pem",
        client_key=directory / "dubu-client.key",
    )
    ca.cert_pem.write_to_path(str(material.ca))
    server.cert_chain_pems[0].write_to_path(str(material.server_cert))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(material.server_cert), append=True)
    server.private_key_pem.write_to_path(str(material.server_key))
    client.cert_chain_pems[0].write_to_path(str(material.client_cert))
    client.private_key_pem.write_to_path(str(material.client_key))
    material.server_key.chmod(0o600)
    material.client_key.chmod(0o600)
    return material


def connection_settings(endpoint: str, settings: SimulatorSettings, material: TlsMaterial) -> dict[str, Any]:
    """Adapter settings that reach a simulator at ``endpoint`` with its test client certificate."""
    return {
        "endpoint": endpoint,
        "service_agreement_uuid": settings.service_agreement_uuid,
        "user_system_uuid": settings.user_system_uuid,
        "user_uuid": settings.user_uuid,
        "service_uuid": settings.service_uuid,
        "client_cert": str(material.client_cert),
        "client_key": str(material.client_key),
        "ca_bundle": str(material.ca),
    }


@contextmanager
def serve_simulator(
    simulator: DubuSimulator, material: TlsMaterial, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve over HTTPS requiring a client certificate from the test CA; yield the endpoint URL."""
    tls = ServerTLS(material.server_cert, material.server_key, client_ca=material.ca)
    with serve(simulator.asgi, host=host, port=port, tls=tls) as base_url:
        yield base_url + wire.SERVICE_PATH


@contextmanager
def simulate(request: SimulatorRequest) -> Iterator[RunningSimulator]:
    """Serve ``request.truth`` as DUBU over mutual TLS until the block ends (the ``bridge simulate`` hook).

    ``request.options`` are :class:`SimulatorSettings` fields. The CA, the server certificate and
    the client certificate and key it expects are written to ``request.directory`` (a temporary
    folder, removed afterwards, if none is given); the running simulator's ``settings`` point a
    ``bridge.toml`` source at them.
    """
    try:
        settings = SimulatorSettings.model_validate(request.options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid dubu simulator option: {problems}") from None
    simulator = DubuSimulator(request.truth, settings)
    with ExitStack() as stack:
        directory = request.directory
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bridge-dubu-sim-")))
        material = make_tls_material(directory)
        endpoint = stack.enter_context(serve_simulator(simulator, material, host=request.host, port=request.port))
        yield RunningSimulator(
            location=endpoint, settings=connection_settings(endpoint, settings, material), handle=simulator
        )
