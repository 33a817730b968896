"""A simulated SBSIP Web API serving the synthetic ground truth over real HTTP.

``create_app(truth, settings=...)`` builds a starlette application that answers like an
SB-SYS installation behind SBSIP: a Keycloak token endpoint, case search with paging and
a modified-since filter, cases, erindringer, journal notes, documents and files. Payload
shapes come from :mod:`bridge_sbsys.wire` and match the reference payload, quirks
included. How the ground truth is laid out in SB-SYS:

- each child's case is a main case (``27.24.00-G01-…``) whose primary party is the child;
  its ``Personer`` hold the child (with ``MorCPR``/``FarCPR``) and the known guardians;
- each measure is a grant case under KLE 27.27.xx with the child as primary party;
- milestones are journal notes with a standard heading, or completed erindringer
  (investigation completed, plan, follow-up); see :data:`wire.NOTE_HEADINGS`;
- scores are Trivselslinealen forms journalised as OS2forms XML documents, one per
  assessment date and assessor;
- a few unrelated cases (another KLE) are there too, for the number interval to leave out.

Cases with a :class:`~bridge.synthetic.truth.Defect` go on the wire broken (a bad CPR, a 7 or
an unknown theme in the form XML, closed before opened, ``2023-02-30``).

The SB-SYS ids of grants, notes, erindringer and documents are allocated by the
simulator; :meth:`SbsysSimulator.expected_records` gives the ground truth with those ids
as the references a correct adapter yields.

Fault knobs (:class:`SimulatorSettings`): latency per request, a share of 5xx answers, of
429 with ``Retry-After``, of connections dropped mid-answer, and cases modified while a
client pages through search results. Knobs that make it an installation unlike the model
(the conformance kit's behaviours): pages capped below ``Limit``, a wrong total, filters
ignored, the installation's own template names, sparse answers, unknown fields, camelCase
names, results repeated across pages, cases deleted while paging; and, as a fault proxy in
front of the cases, shares of 404s, garbage bodies and non-object JSON. Tests modify cases through the Python handle
(:meth:`SbsysSimulator.modify`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
import threading
import time as monotonic_time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.errors import ConfigError
from bridge.model.records import Act, CaseRecord, EventKind, TargetGroup
from bridge.privacy import InvalidCPR, Pseudonymizer, is_unknown_cpr, parse_cpr
from bridge.simulation import RunningSimulator, SimulatorRequest
from bridge.simulation.server import serve
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase, TruthMeasure
from bridge_sbsys import wire
from bridge_sbsys.wire import Caseworker, Json, Person, SagFacts

GRANT_ID_BASE = 10_000_000
"""Grant cases get ids above every main case's id (main cases keep the truth's ids)."""
OTHER_ID_BASE = 20_000_000
OTHER_CASES = 3
"""Unrelated cases (not children's cases) the number interval must leave out."""
INSTALLATION_TEMPLATES = {
    TargetGroup.udsatte: (41, "BUF - Børn og unge, myndighedssag"),
    TargetGroup.handicap: (42, "BUF - Handicapsag (børn)"),
}
"""Case templates as an installation names its own (``template_names="installation"``): not the
modelled names, though the handicap one still holds the word the default keywords look for."""
UNKNOWN_FIELDS: Json = {"UdvidetFelt": {"Kode": "X1", "Tekst": "ikke i modellen"}, "ErArkiveret": False}
SPARSE_UNREAD = ("Beskrivelse", "SagsTitel", "SenesteStatusAendringKommentar", "Opstaaet")


class SimulatorSettings(BaseModel):
    """Credentials, paths and fault knobs of a simulated SBSIP."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = "bridge"
    client_secret: str = "simulated-client-secret"
    username: str = "svc-bridge"
    password: str = "simulated-password"
    token_lifetime: int = Field(default=300, ge=1, description="seconds a token is valid")
    base_path: str = Field(
        default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$", description="proxy prefix, e.g. /convergens-…/proxy"
    )
    municipality: str | None = Field(default=None, description="kommunekode served; default: the truth's only one")
    latency: float = Field(default=0.0, ge=0, description="seconds added to every request")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests answered 502/503/504")
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1, description="share answered 429")
    retry_after: int = Field(default=1, ge=0, description="Retry-After seconds on a 429")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="share of connections dropped mid-answer")
    modify_during_paging: int = Field(default=0, ge=0, description="cases modified when page 2 is asked for")
    fault_seed: int = 0
    max_limit: int = Field(default=1000, ge=1, description="largest page the search serves, whatever Limit asks")
    # How installations differ from the model (the conformance kit's behaviours):
    total_skew: int = Field(default=0, description="TotalNumberOfResults off by this many")
    ignore_filters: bool = Field(default=False, description="the search ignores NummerInterval, PrimaerPerson, since")
    template_names: Literal["modelled", "installation"] = Field(
        default="modelled", description="case templates named as modelled, or as an installation names its own"
    )
    sparse: bool = Field(default=False, description="null, empty and unread optional fields left out")
    unknown_fields: bool = Field(default=False, description="fields bridge does not know, in every object")
    casing: bool = Field(default=False, description="camelCase field names on cases with an odd id")
    duplicates: bool = Field(default=False, description="every fifth search result listed again two places later")
    delete_during_paging: int = Field(default=0, ge=0, description="cases of the first page deleted at page 2")
    not_found_rate: float = Field(default=0.0, ge=0, le=1, description="share of case requests answered 404")
    garbage_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of case requests answered 200 with non-JSON"
    )
    non_object_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of GET api/sag/{id} answered null, [] or JSON too deep to read"
    )


class _DroppedConnection(Exception):
    """Raised after the response started, so the server hangs up mid-answer."""


def _quiet_dropped(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], _DroppedConnection))


def _time_of(n: int) -> time:
    """A deterministic office-hours time of day with milliseconds, varied by ``n``."""
    return time(8 + n % 8, (n * 7) % 60, (n * 13) % 60, ((n * 37) % 1000) * 1000)


def _ms(value: datetime) -> datetime:
    """SBSIP timestamps carry milliseconds."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Ids:
    """SB-SYS ids for things the truth names by reference, allocated on first use."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, object], int] = {}
        self._last: Counter[str] = Counter()

    def __call__(self, kind: str, key: object, base: int = 0) -> int:
        found = self._ids.get((kind, key))
        if found is None:
            self._last[kind] += 1
            found = self._ids[(kind, key)] = base + self._last[kind]
        return found


@dataclass(frozen=True, slots=True)
class _Entry:
    """One searchable sag."""

    id: int
    number: str
    modified: datetime
    cpr_digits: str
    case: TruthCase | None  # None: an unrelated case
    measure: TruthMeasure | None = None


@dataclass(frozen=True, slots=True)
class _Form:
    key: tuple[str, str, int]
    assessed_on: date
    assessor: str | None
    scores: tuple[tuple[str, int | None], ...]


def _forms(case: TruthCase) -> list[_Form]:
    """A case's assessments as forms: one per date and assessor, a theme at most once per form."""
    grouped: dict[tuple[str, str, int], list[tuple[str, int | None]]] = defaultdict(list)
    meta: dict[tuple[str, str, int], tuple[date, str | None]] = {}
    for a in case.assessments:
        k = 0
        while any(theme == a.theme for theme, _ in grouped[(a.assessed_on.isoformat(), a.assessor or "", k)]):
            k += 1
        key = (a.assessed_on.isoformat(), a.assessor or "", k)
        grouped[key].append((a.theme, a.value))
        meta[key] = (a.assessed_on, a.assessor)
    return [_Form(key, meta[key][0], meta[key][1], tuple(grouped[key])) for key in sorted(meta)]


def _worker_uuid(worker: Caseworker) -> str:
    return f"c713c192-939f-463a-8f71-{worker.id:012d}"


def _digits(cpr: str) -> str:
    return cpr.replace("-", "").strip()


class SbsysSimulator:
    """The simulated SBSIP's state and its starlette application (:attr:`app`).

    The ground truth is shared with the caller: :meth:`modify` changes it under the
    simulator's lock, and every answer is rendered from its current state.
    """

    def __init__(self, truth: GroundTruth, settings: SimulatorSettings) -> None:
        self.truth = truth
        self.settings = settings
        codes = sorted({c.municipality for c in truth.cases} or set(truth.municipalities))
        if settings.municipality is None and len(codes) > 1:
            raise ConfigError("the ground truth holds several municipalities; choose one with `municipality`")
        self.municipality = settings.municipality or (codes[0] if codes else "000")
        if any(c.id >= GRANT_ID_BASE for c in truth.cases):
            raise ConfigError(f"the simulator needs case ids below {GRANT_ID_BASE}")
        self.requests: Counter[str] = Counter()
        """Requests served, by endpoint (``token``, ``search``, ``sag``, ``erindring``, …)."""
        self.paging_modified: list[int] = []
        """Ids of the cases modified by ``modify_during_paging``."""
        self.paging_deleted: list[int] = []
        """Ids of the cases deleted by ``delete_during_paging``."""
        self._lock = threading.RLock()
        self._ids = _Ids()
        self._files: dict[int, tuple[int, tuple[str, str, int] | None]] = {}
        self._grant_modified: dict[str, datetime] = {}
        self._tokens: dict[str, float] = {}
        self.monotonic = monotonic_time.monotonic
        """The clock tokens expire by; tests may replace it."""
        self._faults = random.Random(settings.fault_seed)
        self._index: list[_Entry] | None = None
        self._by_cpr: defaultdict[str, list[_Entry]] = defaultdict(list)
        self._latest = max((c.modified for c in truth.cases), default=datetime.now(UTC))
        with self._lock:
            for case in self._cases():  # allocate ids in a deterministic order
                self._render_case_parts(case)
        self.app = self._build_app()

    # --- the Python handle ------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulator's clock: wall time, but never before the truth's latest change."""
        return _ms(max(datetime.now(UTC), self._latest + timedelta(milliseconds=1)))

    def modify(self, n: int, seed: int = 0) -> list[int]:
        """Modify ``n`` cases of the ground truth now; return their ids."""
        from bridge.synthetic.generate import touch

        with self._lock:
            at = self.now()
            changed = touch(self.truth, n, seed, at)
            self._changed(at)
            return changed

    def modify_grant(self, case_id: int) -> str:
        """Change one grant case of ``case_id`` (its end date) and nothing on the main case.

        In SB-SYS a grant is its own case, so only the grant's ``SenestAendret`` moves.
        Returns the measure's truth reference.
        """
        with self._lock:
            case = next(c for c in self.truth.cases if c.id == case_id)
            measure = case.measures[0]
            measure.end = (measure.end or measure.start + timedelta(days=180)) + timedelta(days=7)
            at = self.now()
            self._grant_modified[measure.ref] = at
            self._changed(at)
            return measure.ref

    def expected_records(self, persons: Pseudonymizer) -> list[CaseRecord]:
        """The ground truth as a correct adapter yields it from this simulator.

        Equal to :meth:`GroundTruth.expected_records` except for what SB-SYS itself
        assigns: grant, note, erindring and caseworker ids as references, and timestamps
        to the millisecond; milestones are days, without a time of day.
        """
        with self._lock:
            records = []
            for case in self._cases():
                if case.defect is not None:
                    continue
                record = self.truth.expected_record(case, persons).model_dump()
                record["source_modified"] = _ms(case.modified)
                worker = self.truth.caseworkers[case.caseworker_ref]
                if record["caseworker"] is not None:
                    record["caseworker"]["source_ref"] = str(self._ids("worker", worker.ref))
                for measure in record["measures"]:
                    measure["source_ref"] = str(self._grant_id(measure["source_ref"]))
                for event in record["events"]:
                    event["source_ref"] = self._event_ref(EventKind(event["kind"]), event["source_ref"])
                    event["occurred_at"] = None  # a journal note's contact time is a day, not an instant
                records.append(CaseRecord.model_validate(record))
            return records

    # --- layout of the truth in SB-SYS --------------------------------------------------------

    def _cases(self) -> Iterator[TruthCase]:
        return (c for c in sorted(self.truth.cases, key=lambda c: c.id) if c.municipality == self.municipality)

    def _changed(self, at: datetime) -> None:
        self._latest = max(self._latest, at)
        self._index = None

    def _grant_id(self, ref: str) -> int:
        return self._ids("grant", ref, GRANT_ID_BASE)

    def _event_ref(self, kind: EventKind, ref: str) -> str:
        if kind in wire.REMINDER_TYPES:
            return wire.reminder_ref(self._ids("erindring", ref))
        return wire.note_ref(self._ids("note", ref))

    def _entries(self) -> list[_Entry]:
        if self._index is None:
            entries = []
            for case in self._cases():
                digits = _digits(case.child.cpr)
                entries.append(_Entry(case.id, case.case_number, _ms(case.modified), digits, case))
                for m in case.measures:
                    modified = _ms(self._grant_modified.get(m.ref, case.modified))
                    entries.append(
                        _Entry(self._grant_id(m.ref), self._grant_number(case, m), modified, digits, case, m)
                    )
            for i in range(1, OTHER_CASES + 1):
                entries.append(
                    _Entry(OTHER_ID_BASE + i, f"32.03.12-G01-{i}-19", self._other_modified(), "0104909989", None)
                )
            self._index = sorted(entries, key=lambda e: e.id)
            self._by_cpr = defaultdict(list)
            for entry in self._index:
                self._by_cpr[entry.cpr_digits].append(entry)
        return self._index

    def _candidates(self, query: wire.SearchQuery) -> list[_Entry]:
        """The entries a search can match, narrowed by the party's CPR if it names one."""
        entries = self._entries()
        return entries if query.primary_cpr is None else self._by_cpr.get(_digits(query.primary_cpr), [])

    def _entry(self, sag_id: int) -> _Entry | None:
        entries = self._entries()
        at = bisect_left(entries, sag_id, key=lambda e: e.id)
        return entries[at] if at < len(entries) and entries[at].id == sag_id else None

    def _other_modified(self) -> datetime:
        return datetime(2020, 2, 21, 13, 2, 20, 687000, tzinfo=UTC)

    def _grant_number(self, case: TruthCase, measure: TruthMeasure) -> str:
        subject = "27.27.00" if measure.act is Act.SEL else "27.27.04"
        sequence = self._grant_id(measure.ref) - GRANT_ID_BASE
        return f"{subject}-G01-{sequence}-{measure.start.year % 100:02d}"

    def _caseworker(self, case: TruthCase) -> Caseworker:
        worker = self.truth.caseworkers[case.caseworker_ref]
        return Caseworker(self._ids("worker", worker.ref), worker.logon, worker.name, worker.unit)

    def _user(self, case: TruthCase) -> Json:
        worker = self._caseworker(case)
        return wire.render_user(worker, _worker_uuid(worker))

    def _handled_by(self, case: TruthCase) -> dict[str, Any]:
        """The caseworker fields of :class:`SagFacts` for ``case``."""
        worker = self._caseworker(case)
        return {
            "caseworker": worker,
            "caseworker_uuid": _worker_uuid(worker),
            "unit_id": self._ids("unit", worker.unit),
        }

    def _child(self, case: TruthCase) -> tuple[Person, tuple[Person, ...]]:
        child = case.child
        try:
            cpr = parse_cpr(child.cpr)
            born: date | None = cpr.birth_date
            female: bool | None = cpr.sex == "F"
        except InvalidCPR:
            born, female = None, None
        if born is not None and case.id % 17 == 0:
            # Real data: a FoedeDato that disagrees with the CPR (1900 had no 29 February).
            born = born.replace(year=1900, day=min(born.day, 28) if born.month == 2 else born.day)
        if len(child.guardians) > 2:
            raise ConfigError("SB-SYS records two parents (MorCPR, FarCPR); a child in the truth has more")
        guardians: list[Person] = []
        for role, g in zip(("Mor", "Far"), child.guardians, strict=False):
            if is_unknown_cpr(g):
                continue
            try:
                g_female: bool | None = parse_cpr(g).sex == "F"
            except InvalidCPR:
                g_female = None
            guardians.append(Person(self._ids("person", _digits(g)), g, f"{role} til {child.name}", None, g_female))
        parents = [*child.guardians, wire.UNKNOWN_PARENT, wire.UNKNOWN_PARENT]
        person = Person(
            self._ids("person", _digits(child.cpr)),
            child.cpr,
            child.name,
            born,
            female,
            mother_cpr=parents[0],
            father_cpr=parents[1],
        )
        return person, (person, *guardians)

    def _main_facts(self, case: TruthCase) -> SagFacts:
        at = _time_of(case.id)
        if case.defect is Defect.broken_date:
            created = f"{BROKEN_DATE_TEXT}T{at.isoformat(timespec='milliseconds')}+01:00"
        else:
            created = wire.local_timestamp(case.opened, at)
        if case.closed is not None:
            status, changed = "closed", wire.local_timestamp(case.closed, _time_of(case.id + 1))
        else:
            status, changed = ("active" if case.events else "new"), created
        child, persons = self._child(case)
        name = escape(case.child.name)
        return SagFacts(
            id=case.id,
            uuid=f"a2252d45-89eb-451e-9079-{case.id:012d}",
            number=case.case_number,
            kle_name="Børn og unge med særlige behov",
            title=f"Børnesag - {case.child.name}",
            description_html=f"<p>Børnesag vedr. <strong>{name}</strong></p>\r\n<p>Målgruppe: {case.target_group}</p>",
            created=created,
            modified=wire.format_timestamp(_ms(case.modified)),
            status_changed=changed,
            status=status,
            template=(INSTALLATION_TEMPLATES if self.settings.template_names == "installation" else wire.TEMPLATES)[
                case.target_group
            ],
            **self._handled_by(case),
            primary=child,
            persons=persons,
            family_number=case.family_case_number,
        )

    def _grant_facts(self, case: TruthCase, measure: TruthMeasure) -> SagFacts:
        grant_id = self._grant_id(measure.ref)
        created = wire.local_timestamp(measure.start, _time_of(grant_id))
        ended = measure.end is not None and measure.end < self.now().date()
        child, _ = self._child(case)
        paragraph = wire.format_paragraph(measure.act, measure.paragraph)
        return SagFacts(
            id=grant_id,
            uuid=f"b3363e56-9afc-462b-a18a-{grant_id:012d}",
            number=self._grant_number(case, measure),
            kle_name="Bevillinger til børn og unge",
            title=f"Bevilling - {paragraph}",
            description_html=f"<p>Bevilling efter {escape(paragraph)}</p>",
            created=created,
            modified=wire.format_timestamp(_ms(self._grant_modified.get(measure.ref, case.modified))),
            status_changed=wire.local_timestamp(measure.end, _time_of(grant_id)) if ended and measure.end else created,
            status="closed" if ended else "active",
            template=wire.GRANT_TEMPLATE,
            **self._handled_by(case),
            primary=child,
            persons=(child,),
            companies=(measure.provider,) if measure.provider else (),
            decided=measure.has_grant,
            grant=wire.render_grant_details(
                measure.act, measure.paragraph, measure.account_code, measure.start, measure.end
            ),
        )

    def _other_facts(self, sag_id: int) -> SagFacts:
        """Shaped like the reference payload: a pension case (KLE 32.03.12) of a test person."""
        person = Person(
            4,
            "010490-9989",
            "Torre Test Mosebryggersen",
            date(1900, 4, 1),
            False,
            mother_cpr="010862-9996",
            father_cpr="010858-9995",
        )
        worker = Caseworker(2, "testbruger01", "Test Bruger 01", "Løn")
        stamp = wire.format_timestamp(datetime(2019, 11, 18, 8, 24, 48, 507000, tzinfo=UTC))
        return SagFacts(
            id=sag_id,
            uuid=f"a2252d45-89eb-451e-9079-{sag_id:012d}",
            number=f"32.03.12-G01-{sag_id - OTHER_ID_BASE}-19",
            kle_name="Personligt tillæg og helbredstillæg",
            title="MagentaTest",
            description_html="<p></p>",
            created=stamp,
            modified=wire.format_timestamp(self._other_modified()),
            status_changed=stamp,
            status="new",
            template=(30, "Ansøgningssag"),
            caseworker=worker,
            caseworker_uuid="c713c192-939f-463a-8f71-c92d699e64e",
            unit_id=5,
            primary=person,
            persons=(person,),
        )

    def _render(self, entry: _Entry, *, with_parts: bool) -> Json:
        if entry.case is None:
            facts = self._other_facts(entry.id)
        elif entry.measure is None:
            facts = self._main_facts(entry.case)
        else:
            facts = self._grant_facts(entry.case, entry.measure)
        sag = wire.render_sag(facts, with_parts=with_parts)
        if self.settings.sparse and get_state(sag) != wire.STATE_CLOSED:
            sag.pop("SenesteStatusAendring")  # only a closed case's closing time is read
        shaped: Json = self._shape(sag, entry.id)
        return shaped

    def _shape(self, answer: Any, sag_id: int) -> Any:
        """An answer about case ``sag_id`` as the configured installation writes it."""
        s = self.settings
        if s.sparse:
            answer = _sparse(answer)
        if s.unknown_fields:
            answer = _with_unknown_fields(answer)
        if s.casing and sag_id % 2:
            answer = _camel(answer)
        return answer

    def delete(self, case_ids: list[int]) -> None:
        """Delete main cases (and their grants) from the ground truth now."""
        with self._lock:
            gone = set(case_ids)
            self.truth.cases = [c for c in self.truth.cases if c.id not in gone]
            self._changed(self.now())

    def _render_case_parts(self, case: TruthCase) -> tuple[list[Json], list[Json], list[Json]]:
        """A main case's erindringer, journal notes and documents."""
        user = self._user(case)
        notes: list[Json] = []
        reminders: list[Json] = []
        for event in sorted(case.events, key=lambda e: (e.occurred_on, e.ref)):
            if event.kind in wire.REMINDER_TYPES:
                reminder_id = self._ids("erindring", event.ref)
                deadline = event.occurred_on - timedelta(days=reminder_id % 11 - 5)
                reminders.append(
                    wire.render_erindring(
                        reminder_id=reminder_id,
                        sag_id=case.id,
                        kind_name=wire.REMINDER_TYPES[event.kind],
                        deadline=wire.local_timestamp(deadline, time(12)),
                        done=wire.local_timestamp(event.occurred_on, _time_of(reminder_id)),
                        owner=user,
                    )
                )
            else:
                note_id = self._ids("note", event.ref)
                heading = wire.NOTE_HEADINGS.get(event.kind) or wire.FREE_HEADINGS[note_id % len(wire.FREE_HEADINGS)]
                contact = wire.local_timestamp(event.occurred_on, _time_of(note_id))
                created = wire.local_timestamp(event.occurred_on + timedelta(days=note_id % 3), _time_of(note_id + 1))
                body = f"<p>{escape(heading)}.</p><p>Journalført af sagsbehandler.</p>"
                notes.append(
                    wire.render_journal_note(
                        note_id=note_id,
                        sag_id=case.id,
                        heading=heading,
                        body_html=body,
                        contact=contact,
                        created=created,
                        author=user,
                    )
                )
        if case.closed is None:
            last = max([case.opened, *(e.occurred_on for e in case.events)])
            reminder_id = self._ids("erindring", ("next", case.id))
            reminders.append(
                wire.render_erindring(
                    reminder_id=reminder_id,
                    sag_id=case.id,
                    kind_name=wire.NEXT_FOLLOW_UP,
                    deadline=wire.local_timestamp(last + timedelta(days=90), time(12)),
                    done=None,
                    owner=user,
                )
            )
        documents = []
        for form in _forms(case):
            document_id = self._ids("document", (case.id, form.key))
            file_id = self._ids("file", (case.id, form.key))
            self._files[file_id] = (case.id, form.key)
            registered = wire.local_timestamp(form.assessed_on, _time_of(document_id))
            documents.append(
                wire.render_document(
                    document_id,
                    wire.SCORE_FORM_NAME,
                    registered,
                    user,
                    [(file_id, "os2forms.xml", "text/xml", 1400 + 60 * len(form.scores))],
                )
            )
        if case.events:
            document_id = self._ids("document", (case.id, "pdf"))
            file_id = self._ids("file", (case.id, "pdf"))
            self._files[file_id] = (case.id, None)
            registered = wire.local_timestamp(case.opened, _time_of(document_id))
            documents.append(
                wire.render_document(
                    document_id,
                    "Samtykkeerklæring",
                    registered,
                    user,
                    [(file_id, "samtykke.pdf", "application/pdf", 48213)],
                )
            )
        return reminders, notes, documents

    def _file(self, file_id: int) -> Response | None:
        found = self._files.get(file_id)
        if found is None:
            return None
        case_id, key = found
        entry = self._entry(case_id)
        if entry is None or entry.case is None:
            return None
        case = entry.case
        if key is None:
            return Response(b"%PDF-1.4\n% simulated\n%%EOF\n", media_type="application/pdf")
        form = next((f for f in _forms(case) if f.key == key), None)
        if form is None:
            return None
        xml = wire.render_score_form(
            child_cpr=case.child.cpr,
            kle=case.kle,
            assessed_on=form.assessed_on,
            assessor=form.assessor,
            scores=form.scores,
        )
        return Response(xml, media_type="text/xml; charset=utf-8")

    # --- HTTP -----------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes: list[BaseRoute] = [
            Route(wire.TOKEN_PATH, self._token, methods=["POST"]),
            Route(wire.SEARCH_PATH, self._search, methods=["POST"]),
            Route("/api/sag/{sag_id:int}", self._sag, methods=["GET"]),
            Route("/api/erindring/sag/{sag_id:int}", self._erindringer, methods=["GET"]),
            Route("/api/sag/{sag_id:int}/journalarknotes", self._notes, methods=["GET"]),
            Route("/api/sag/{sag_id:int}/dokumenter", self._documents, methods=["GET"]),
            Route("/api/fil/{file_id:int}", self._fil, methods=["GET"]),
        ]
        if self.settings.base_path:
            routes = [Mount(self.settings.base_path, routes=routes)]
        logging.getLogger("uvicorn.error").addFilter(_quiet_dropped)
        return Starlette(routes=routes, middleware=[Middleware(_Faults, simulator=self)])

    def _draw_fault(self) -> str | None:
        s = self.settings
        with self._lock:
            r = self._faults.random()
        for name, share in (("error", s.error_rate), ("rate_limit", s.rate_limit_rate), ("drop", s.drop_rate)):
            if r < share:
                return name
            r -= share
        return None

    def _coin(self) -> bool:
        with self._lock:
            return self._faults.random() < 0.5

    def _draw_case_fault(self, path: str) -> str | None:
        """``not_found``, ``garbage`` or ``non_object`` for a request about one case (the fault-proxy knobs)."""
        s = self.settings
        is_case = _CASE_PATH.search(path) is not None
        if not is_case and _CASE_PART_PATH.search(path) is None:
            return None
        with self._lock:
            r = self._faults.random()
        shares = [("not_found", s.not_found_rate), ("garbage", s.garbage_rate)]
        if is_case:
            shares.append(("non_object", s.non_object_rate))
        for name, share in shares:
            if r < share:
                return name
            r -= share
        return None

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        return expires is not None and self.monotonic() < expires

    async def _token(self, request: Request) -> Response:
        self.requests["token"] += 1
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
        s = self.settings
        grant = form.get("grant_type")
        if grant not in (wire.GRANT_PASSWORD, wire.GRANT_CLIENT_CREDENTIALS):
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
        if grant == wire.GRANT_PASSWORD and (form.get("username"), form.get("password")) != (s.username, s.password):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid user credentials"}, 401)
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = self.monotonic()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + s.token_lifetime
        return JSONResponse(wire.render_token(token, s.token_lifetime))

    async def _search(self, request: Request) -> Response:
        self.requests["search"] += 1
        try:
            query = wire.read_search_query(await request.json(), default_limit=self.settings.max_limit)
        except (ValueError, wire.WireError) as exc:
            return JSONResponse({"Message": f"The request is invalid: {exc}"}, status_code=400)
        if query.limit < 0 or query.skip < 0:
            return JSONResponse({"Message": "Limit and Skip must not be negative"}, status_code=400)
        with_parts = request.query_params.get("InkluderParterIResultat", "").lower() == "true"
        s = self.settings
        with self._lock:
            if query.skip > 0 and s.modify_during_paging and not self.paging_modified:
                self.paging_modified = self.modify(s.modify_during_paging, s.fault_seed)
            if query.skip > 0 and query.primary_cpr is None and s.delete_during_paging and not self.paging_deleted:
                # Cases before the offset go, so every later case moves down the listing.
                first = [e.id for e in self._entries() if e.case is not None and e.measure is None]
                self.paging_deleted = first[: min(s.delete_during_paging, query.skip)]
                self.delete(self.paging_deleted)
            if s.ignore_filters:
                matches = list(self._entries())
            else:
                matches = [e for e in self._candidates(query) if _matches(e, query)]
            if s.duplicates:
                matches = _with_duplicates(matches)
            page = matches[query.skip : query.skip + min(query.limit, s.max_limit)]
            results = [self._render(e, with_parts=with_parts) for e in page]
        return JSONResponse(wire.render_search_result(len(matches) + s.total_skew, results))

    async def _sag(self, request: Request) -> Response:
        self.requests["sag"] += 1
        with self._lock:
            entry = self._entry(request.path_params["sag_id"])
            if entry is None:
                return _not_found("Sag")
            return JSONResponse(self._render(entry, with_parts=True))

    def _parts(self, request: Request, which: int) -> Response:
        with self._lock:
            entry = self._entry(request.path_params["sag_id"])
            if entry is None:
                return _not_found("Sag")
            if entry.case is None or entry.measure is not None:
                return JSONResponse([])
            return JSONResponse(self._shape(self._render_case_parts(entry.case)[which], entry.id))

    async def _erindringer(self, request: Request) -> Response:
        self.requests["erindring"] += 1
        return self._parts(request, 0)

    async def _notes(self, request: Request) -> Response:
        self.requests["journalarknotes"] += 1
        return self._parts(request, 1)

    async def _documents(self, request: Request) -> Response:
        self.requests["dokumenter"] += 1
        return self._parts(request, 2)

    async def _fil(self, request: Request) -> Response:
        self.requests["fil"] += 1
        with self._lock:
            response = self._file(request.path_params["file_id"])
        return response or _not_found("Fil")


def get_state(sag: Json) -> str | None:
    status = sag.get("SagsStatus")
    return status.get("SagsTilstand") if isinstance(status, dict) else None


def _sparse(value: Any) -> Any:
    """Optional fields left out rather than sent null or empty, and descriptive ones bridge does not read."""
    if isinstance(value, dict):
        return {
            k: _sparse(v) for k, v in value.items() if v is not None and v not in ([], "") and k not in SPARSE_UNREAD
        }
    if isinstance(value, list):
        return [_sparse(v) for v in value]
    return value


def _with_unknown_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {**{k: _with_unknown_fields(v) for k, v in value.items()}, **UNKNOWN_FIELDS}
    if isinstance(value, list):
        return [_with_unknown_fields(v) for v in value]
    return value


def _camel(value: Any) -> Any:
    """``sagsStatus``, ``cprNummer``: the casing some SBSIP endpoints use."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _with_duplicates(entries: list[_Entry]) -> list[_Entry]:
    """Every fifth entry listed again two places later: an order that is not stable across pages."""
    listed: list[_Entry] = []
    for n, entry in enumerate(entries):
        listed.append(entry)
        if n >= 2 and (n - 2) % 5 == 4:
            listed.append(entries[n - 2])
    return listed


def _matches(entry: _Entry, query: wire.SearchQuery) -> bool:
    if query.interval is not None and entry.number not in query.interval:
        return False
    if query.modified_since is not None and entry.modified < query.modified_since:
        return False
    return query.primary_cpr is None or entry.cpr_digits == _digits(query.primary_cpr)


_CASE_PATH = re.compile(r"/api/sag/\d+$")
_CASE_PART_PATH = re.compile(r"/api/(sag/\d+/(journalarknotes|dokumenter)|erindring/sag/\d+|fil/\d+)$")


def _not_found(what: str) -> Response:
    return JSONResponse({"Message": f"{what} blev ikke fundet"}, status_code=404)


class _Faults:
    """ASGI middleware: latency, authentication, and the configured faults."""

    def __init__(self, app: ASGIApp, simulator: SbsysSimulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.simulator
        if sim.settings.latency:
            await asyncio.sleep(sim.settings.latency)
        fault = sim._draw_fault() or sim._draw_case_fault(scope["path"])
        if fault == "not_found":
            await _not_found("Sag")(scope, receive, send)
        elif fault == "garbage":
            body = b"<html><body>Proxy error</body></html>" if sim._coin() else b'{"Id": 1, "Nummer": "27.24'
            await Response(body, media_type="application/json")(scope, receive, send)
        elif fault == "non_object":
            body = random.choice((b"null", b"[]", b"[" * 100_000 + b"]" * 100_000))
            await Response(body, media_type="application/json")(scope, receive, send)
        elif fault == "error":
            status = random.choice((502, 503, 504))
            await JSONResponse({"Message": "Service Unavailable"}, status_code=status)(scope, receive, send)
        elif fault == "rate_limit":
            headers = {"Retry-After": str(sim.settings.retry_after)}
            await JSONResponse({"Message": "Too Many Requests"}, status_code=429, headers=headers)(scope, receive, send)
        elif fault == "drop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"Results": [', "more_body": True})
            raise _DroppedConnection
        elif not scope["path"].endswith(wire.TOKEN_PATH) and not sim._authorized(Request(scope)):
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            await JSONResponse({"Message": "Unauthorized"}, status_code=401, headers=headers)(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(truth: GroundTruth, *, settings: SimulatorSettings | None = None) -> Starlette:
    """A starlette application serving ``truth`` as SBSIP; its simulator is ``app.state.simulator``."""
    simulator = SbsysSimulator(truth, settings or SimulatorSettings())
    simulator.app.state.simulator = simulator
    return simulator.app


@contextmanager
def simulate(request: SimulatorRequest) -> Iterator[RunningSimulator]:
    """Serve ``request.truth`` over HTTP until the block ends (the ``bridge simulate`` hook).

    ``request.options`` are :class:`SimulatorSettings` fields. The running simulator's
    ``settings`` are what a ``bridge.toml`` source needs; the password and client secret
    are the simulator's fixed test credentials, not secrets.
    """
    try:
        settings = SimulatorSettings.model_validate(request.options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid sbsys simulator option: {problems}") from None
    simulator = SbsysSimulator(request.truth, settings)
    with serve(simulator.app, host=request.host, port=request.port) as base_url:
        yield RunningSimulator(
            location=base_url + settings.base_path,
            settings=connection_settings(base_url + settings.base_path, settings),
            handle=simulator,
        )


def connection_settings(base_url: str, settings: SimulatorSettings) -> dict[str, Any]:
    """Adapter settings that reach a simulator at ``base_url`` (secrets inline: test credentials)."""
    return {
        "base_url": base_url,
        "grant_type": wire.GRANT_PASSWORD,
        "client_id": settings.client_id,
        "client_secret": settings.client_secret,
        "username": settings.username,
        "password": settings.password,
    }
