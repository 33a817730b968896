"""The CSC Social extract simulator: the synthetic ground truth written as nightly extract sets.

Night 1 is a full set (every open case and those closed in the 12-month export window);
each later night is a delta with the complete images of new, changed and closed cases and
``deleted.csv`` for removed ones — exactly as ``tests/reference/FORMAT.md`` specifies:
Windows-1252, ``;``, CRLF, values quoted only when they must be, the manifest written last.

Fault knobs (:class:`Faults`) make one night's set the way deliveries go wrong: a truncated
file, a manifest that does not match, a set delivered twice, a stray BOM, bytes that will not
decode, line breaks and ``;`` inside quoted notes, reordered and unknown columns, a set still
being written. Drive it from a test with :class:`CscSimulator` (``night()``, ``finish()``,
``redeliver()``, ``expected_records()``), or from ``bridge simulate csc-social --drop DIR --nights 3``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError
from bridge.model.records import CaseRecord, EventKind, TargetGroup, Theme
from bridge.privacy import Pseudonymizer, is_unknown_cpr
from bridge.simulation import RunningSimulator, SimulatorRequest
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthAssessment, TruthCase, TruthEvent
from bridge_csc_social import wire

EXPORT_WINDOW = timedelta(days=365)
"""A full set holds every open case and the cases closed this long before it (12 months)."""

_THEME_CODES = {theme.value: code for code, theme in wire.THEMES.items() if theme is not None}
_EVENT_CODES = {kind: code for code, kind in wire.EVENT_TYPES.items() if kind is not None}
_MAALGRUPPE = {TargetGroup.udsatte: "Udsatte børn og unge", TargetGroup.handicap: "Børn med funktionsnedsættelse"}
_UNKNOWN_COLUMN = "EksportKoersel"
_UNKNOWN_COLUMNS = ("Systemnoegle", "Afdeling")
"""Columns ``unknown`` puts first and last in every file (values the format does not know)."""
_CASE_ROW_DEFECTS = frozenset({Defect.bad_cpr, Defect.closed_before_opened, Defect.broken_date})
"""Defects of the case row: the whole image is quarantined. The others break one assessment row."""


@dataclass(frozen=True)
class Faults:
    """How one night's set goes wrong (all off: a clean delivery)."""

    truncate: bool = False
    """measures.csv is cut short after the manifest was written → ``rejected:manifest_mismatch``."""
    mismatch: bool = False
    """The manifest promises one case row more than cases.csv holds → ``rejected:manifest_mismatch``."""
    twice: bool = False
    """The set is delivered again, byte for byte, under a name a minute later → applied, nothing changes."""
    stray_bom: bool = False
    """cases.csv starts with a UTF-8 BOM but is Windows-1252 → ``rejected:encoding``."""
    utf8: bool = False
    """cases.csv is written as UTF-8 with its BOM (some months the vendor does) → applied as usual."""
    undecodable: bool = False
    """A note in events.csv holds the byte 0x81, which Windows-1252 does not define → ``rejected:encoding``."""
    multiline: bool = False
    """Notes hold line breaks, ``;`` and quotes (quoted, a record still counts once) → applied as usual."""
    reorder: bool = False
    """Every file has its columns in another order and an unknown extra column → applied as usual."""
    in_progress: bool = False
    """No manifest yet (still being uploaded) → ``skipped_in_progress`` until :meth:`CscSimulator.finish`."""
    blank: bool = False
    """Empty values are written ``""`` or as spaces, the other ways a CSV spells an absent value → applied as usual."""
    padded: bool = False
    """Header names and values (but ``Note``) have spaces around them, which the format trims → applied as usual."""
    unknown: bool = False
    """Unknown columns in every file, a key the format does not know in the manifest, a listed CSV and an
    unlisted file the format does not know in the set, a stray file in the drop folder → applied as usual."""

    @classmethod
    def knobs(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def rewrite_file(folder: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    """Change one file of a set as the vendor would have written it: the manifest is made to match."""
    path = folder / name
    data = change(path.read_bytes())
    path.write_bytes(data)
    manifest_path = folder / wire.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][name] = {"rows": _count_records(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _count_records(data: bytes) -> int:
    utf8 = data.startswith(wire.UTF8_BOM)
    text = data[3:].decode("utf-8", errors="replace") if utf8 else data.decode("cp1252", errors="replace")
    return sum(1 for row in csv.reader(io.StringIO(text, newline=""), delimiter=";") if row) - 1


def _date(value: Any) -> str:
    return "" if value is None else f"{value:%d-%m-%Y}"


def _paragraph(text: str) -> tuple[str, str, str]:
    """``52 stk. 3 nr. 7`` → (``52``, ``3``, ``7``)."""
    words = text.split()
    paragraph, stk, nr = words[0], "", ""
    for i, word in enumerate(words):
        if word == "stk.":
            stk = words[i + 1]
        elif word == "nr.":
            nr = words[i + 1]
    return paragraph, stk, nr


@dataclass
class _Plan:
    """What one set holds, so it can be delivered again."""

    name: str
    moment: datetime
    full: bool
    case_ids: list[int]
    deleted: list[int]
    faults: Faults


class CscSimulator:
    """Writes the ground truth into ``drop`` one night at a time, changing the truth between nights."""

    def __init__(self, truth: GroundTruth, drop: Path, *, seed: int = 0, start: datetime | None = None) -> None:
        self.truth = truth
        self.drop = drop
        self.rng = random.Random(seed)
        last = max((c.modified for c in truth.cases), default=datetime(2026, 1, 1, tzinfo=UTC))
        first = start or datetime.combine(last.date() + timedelta(days=1), time(2, 0), tzinfo=wire.LOCAL)
        self.first_night = first
        self.present: set[int] = set()
        """Cases the source has delivered and not deleted."""
        self.deleted: set[int] = set()
        valid = [c for c in truth.cases if c.defect is None]
        held = max(1, len(valid) // 20)
        self.waiting = valid[-held:]
        """Cases the source gets in later nights (new cases)."""
        self.plans: list[_Plan] = []
        self._uploading: dict[str, bytes] = {}
        """The whole measures.csv of a set written ``truncate``, by set name."""
        self._by_id = {c.id: c for c in truth.cases}

    # --- the nights ------------------------------------------------------------------------------------

    def night(self, faults: Faults | None = None, *, changed: int = 3) -> str:
        """Write the next night's set (full on the first night, a delta after); returns its name.

        A delta holds two new cases, ``changed`` open cases with a score round and a journal
        note, two closed cases, and one deleted.
        """
        faults = faults or Faults()
        moment = self.first_night + timedelta(days=len(self.plans))
        if not self.plans:
            waiting = {c.id for c in self.waiting}
            cases = [
                c.id
                for c in self.truth.cases
                if c.id not in waiting and (c.closed is None or c.closed >= moment.date() - EXPORT_WINDOW)
            ]
            plan = _Plan(wire.set_name(moment), moment, True, cases, [], faults)
        else:
            plan = self._changes(moment, faults, changed)
        self.plans.append(plan)
        self._write(plan)
        return plan.name

    def _changes(self, moment: datetime, faults: Faults, touched: int) -> _Plan:
        at = moment.astimezone(UTC) - timedelta(hours=3)
        live = sorted(i for i in self.present if self._case(i).defect is None)
        open_ = [i for i in live if self._case(i).closed is None]
        new = [self.waiting.pop(0).id for _ in range(min(2, len(self.waiting)))]
        changed = self.rng.sample(open_, min(touched, len(open_)))
        for case_id in changed:
            self._touch(self._case(case_id), at)
        rest = [i for i in open_ if i not in changed]
        closed = self.rng.sample(rest, min(2, len(rest)))
        for case_id in closed:
            case = self._case(case_id)
            case.closed = at.date()
            case.modified = at
        rest = [i for i in live if i not in changed and i not in closed]
        deleted = self.rng.sample(rest, min(1, len(rest)))
        return _Plan(wire.set_name(moment), moment, False, sorted({*new, *changed, *closed}), deleted, faults)

    def _touch(self, case: TruthCase, at: datetime) -> None:
        """A caseworker's day on the case: a score round and a journal note."""
        for theme in Theme:
            earlier = [a.value for a in case.assessments if a.theme == theme.value and a.value is not None]
            value = min(5, max(1, (earlier[-1] if earlier else 3) + self.rng.choice((-1, 0, 1))))
            case.assessments.append(TruthAssessment(theme.value, value, at.date(), None))
        case.events.append(TruthEvent(EventKind.journal_note, at.date(), f"{case.id}-e{len(case.events) + 1}"))
        case.modified = at

    def finish(self, name: str) -> None:
        """The upload of a set written ``in_progress`` completes: its manifest is written."""
        plan = self._plan(name)
        self._write(plan, faults=Faults(), manifest_only=True)

    def complete(self, name: str) -> None:
        """The rest of a file written ``truncate`` arrives: the set is as its manifest says."""
        (self.drop / name / wire.MEASURES).write_bytes(self._uploading.pop(name))

    def redeliver(self, name: str) -> None:
        """The vendor delivers a set again, correctly, under the same name (the truth as it is now)."""
        plan = self._plan(name)
        shutil.rmtree(self.drop / name)
        self._write(plan, faults=Faults())

    def _plan(self, name: str) -> _Plan:
        return next(p for p in self.plans if p.name == name)

    def _case(self, case_id: int) -> TruthCase:
        return self._by_id[case_id]

    # --- what a correct adapter stores ------------------------------------------------------------------

    def expected_records(self, persons: Pseudonymizer) -> list[CaseRecord]:
        """The live cases a correct adapter has stored after the sets written so far.

        Equal to :meth:`GroundTruth.expected_record` but for what the extract lacks: the SagsID is the
        case number, no family case number, the caseworker's login as reference and no unit,
        timestamps to the second, milestones as days without a time of day. A case whose row is
        broken is not stored; one with a broken assessment is, without assessments (they are held
        back with the broken one).
        """
        records = []
        for case in self.truth.cases:
            if case.id not in self.present or case.defect in _CASE_ROW_DEFECTS:
                continue
            if case.defect is not None:  # a broken assessment holds back the case's assessments
                case = replace(case, assessments=[], defect=None)  # noqa: PLW2901 - the case as stored
            record = self.truth.expected_record(case, persons).model_dump()
            worker = self.truth.caseworkers[case.caseworker_ref]
            record |= {
                "case_number": str(case.id),
                "family_case_number": None,
                "caseworker": {"source_ref": worker.logon, "name": worker.name, "unit": None},
                "source_modified": case.modified.replace(microsecond=0),
                "events": [e | {"occurred_at": None} for e in record["events"]],
            }
            records.append(CaseRecord.model_validate(record))
        return records

    # --- writing a set ----------------------------------------------------------------------------------

    def _write(self, plan: _Plan, *, faults: Faults | None = None, manifest_only: bool = False) -> None:
        faults = faults or plan.faults
        folder = self.drop / plan.name
        if not manifest_only:
            folder.mkdir(parents=True, exist_ok=True)
            cases = [self._case(i) for i in plan.case_ids]
            tables = {
                wire.CASES: (self._case_row(c) for c in cases),
                wire.MEASURES: (row for c in cases for row in self._measure_rows(c)),
                wire.ASSESSMENTS: (row for c in cases for row in self._assessment_rows(c)),
                wire.EVENTS: (row for c in cases for row in self._event_rows(c, faults)),
            }
            if not plan.full:
                tables[wire.DELETED] = ({"SagsID": str(i)} for i in plan.deleted)
            for name, rows in tables.items():
                _write_csv(folder / name, wire.COLUMNS[name], rows, faults)
            if faults.unknown:
                statistics = iter([{"SagsID": "0", "Antal": "1"}])
                _write_csv(folder / "sagsstatistik.csv", ("SagsID", "Antal"), statistics, Faults())
                (folder / "LAESMIG.txt").write_text("Udtraek fra CSC Social\r\n", encoding="cp1252")
                (self.drop / "upload.log").write_text(f"{plan.name} uploaded\n", encoding="utf-8")
            if plan.full:
                self.present = set(plan.case_ids)
            else:
                self.present |= set(plan.case_ids)
                self.present -= set(plan.deleted)
                self.deleted |= set(plan.deleted)
            if faults.utf8:
                _recode(folder / wire.CASES, lambda data: wire.UTF8_BOM + data.decode("cp1252").encode("utf-8"))
            if faults.stray_bom:
                _recode(folder / wire.CASES, lambda data: wire.UTF8_BOM + data)
            if faults.undecodable:
                _recode(folder / wire.EVENTS, lambda data: data[:-2] + b"\x81" + data[-2:])
        if faults.in_progress:
            return
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.csv")):
            data = path.read_bytes()
            files[path.name] = {"rows": _count_records(data), "sha256": hashlib.sha256(data).hexdigest()}
        if faults.mismatch:
            files[wire.CASES]["rows"] += 1
        created = plan.moment + timedelta(minutes=4, seconds=31)
        manifest = {"extract": plan.name, "created": created.isoformat(), "full": plan.full, "files": files}
        if faults.unknown:
            manifest["producer"] = {"system": "CSC Social", "job": "nightly"}
        (folder / wire.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if faults.twice:
            again = self.drop / wire.set_name(plan.moment + timedelta(minutes=1))
            shutil.copytree(folder, again)
            manifest["extract"] = again.name
            (again / wire.MANIFEST).write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        if faults.truncate:  # after the copy: the copy was delivered whole
            path = folder / wire.MEASURES
            data = path.read_bytes()
            self._uploading[plan.name] = data
            path.write_bytes(data[: len(data) // 2])

    def _case_row(self, case: TruthCase) -> dict[str, str]:
        worker = self.truth.caseworkers[case.caseworker_ref]
        guardians = [g for g in case.child.guardians if not is_unknown_cpr(g)] + ["", ""]
        cpr = case.child.cpr if case.id % 7 else case.child.cpr.replace("-", "")  # both are delivered
        group = _MAALGRUPPE[case.target_group]
        if case.target_group is TargetGroup.udsatte and case.id % 10 == 3:
            group = "Ungdomskriminalitet"
        opened = _date(case.opened)
        if case.defect is Defect.broken_date:
            year, month, day = BROKEN_DATE_TEXT.split("-")
            opened = f"{day}-{month}-{year}"
        status = "Åben"
        if case.closed is not None:
            status = "Henlagt" if case.id % 9 == 0 else "Afsluttet"
        return {
            "SagsID": str(case.id),
            "CPR": cpr,
            "Kommunekode": case.municipality,
            "Maalgruppe": group,
            "Sagsbehandler": worker.name,
            "SagsbehandlerID": worker.logon,
            "Oprettet": opened,
            "Lukket": _date(case.closed),
            "Status": status,
            "Familiesag": "J" if case.family_case_number else "N",
            "ForaeldremyndighedCPR1": guardians[0],
            "ForaeldremyndighedCPR2": guardians[1],
            "SenestAendret": f"{case.modified.astimezone(wire.LOCAL):%d-%m-%Y %H:%M:%S}",
        }

    def _measure_rows(self, case: TruthCase) -> Iterator[dict[str, str]]:
        for n, measure in enumerate(case.measures):
            paragraph, stk, nr = _paragraph(measure.paragraph)
            granted = measure.start - timedelta(days=3 + n)
            yield {
                "ForanstaltningsID": measure.ref,
                "SagsID": str(case.id),
                "Lov": measure.act.value,
                "Paragraf": paragraph,
                "Stk": stk,
                "Nr": nr,
                "Start": _date(measure.start),
                "Slut": _date(measure.end),
                "Bevilget": _date(granted) if measure.has_grant else "",
                "Kontering": measure.account_code or "",
                "Leverandoer": measure.provider or "",
                "Beloeb": _amount(case.id, n) if measure.has_grant else "",
            }

    def _assessment_rows(self, case: TruthCase) -> Iterator[dict[str, str]]:
        for n, assessment in enumerate(case.assessments):
            value = assessment.value
            score = ""
            if value is not None:  # a 7 (a defect) stays out of range on the wire
                score = str(6 - value) if 1 <= value <= 5 else str(value)
            theme = _THEME_CODES.get(assessment.theme, assessment.theme.upper())  # "humoer": a defect
            yield {
                "MaalingsID": f"{case.id}-a{n + 1}",
                "SagsID": str(case.id),
                "Tema": theme,
                "Score": score,
                "Dato": _date(assessment.assessed_on),
                "Maaler": assessment.assessor or "",
            }
        if case.id % 10 == 1 and case.assessments:  # a theme bridge has no place for: counted, not stored
            first = case.assessments[0]
            yield {
                "MaalingsID": f"{case.id}-a0",
                "SagsID": str(case.id),
                "Tema": "ANDET",
                "Score": "3",
                "Dato": _date(first.assessed_on),
                "Maaler": first.assessor or "",
            }

    def _event_rows(self, case: TruthCase, faults: Faults) -> Iterator[dict[str, str]]:
        for n, event in enumerate(case.events):
            note = f"Notat {n + 1} på sag {case.id}."
            if faults.multiline and n % 2 == 0:
                note = f'Samtale med barnet; "hjemme" og i skolen.\r\nOpfølgning aftalt.\rSe også notat {n}.'
            yield {
                "HaendelsesID": event.ref,
                "SagsID": str(case.id),
                "Type": _EVENT_CODES[event.kind],
                "Dato": _date(event.occurred_on),
                "Note": note,
            }


def _amount(case_id: int, n: int) -> str:
    """A monthly amount in DKK with a decimal comma, e.g. ``12500,50``."""
    return f"{(case_id * 37 + n * 1000) % 45000 + 1500},{case_id % 100:02d}"


def _recode(path: Path, change: Callable[[bytes], bytes]) -> None:
    path.write_bytes(change(path.read_bytes()))


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterator[dict[str, str]], faults: Faults) -> None:
    header = list(columns)
    if faults.reorder:
        header = [*reversed(header[1:]), _UNKNOWN_COLUMN, header[0]]
    if faults.unknown:
        header = [_UNKNOWN_COLUMNS[0], *header, _UNKNOWN_COLUMNS[1]]
    with path.open("w", encoding="cp1252", newline="") as handle:
        if faults.blank or faults.padded:
            handle.write(";".join(f" {h} " if faults.padded else h for h in header) + "\r\n")
            for n, row in enumerate(rows):
                handle.write(";".join(_spelt(c, row.get(c, "nat-1"), n, faults) for c in header) + "\r\n")
            return
        writer = csv.writer(handle, delimiter=";", quotechar='"', doublequote=True, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(column, "nat-1") for column in header])


def _spelt(column: str, value: str, n: int, faults: Faults) -> str:
    """One value as ``blank`` and ``padded`` write it: an empty one ``""`` or spaces, others padded."""
    if faults.blank and not value:
        return '""' if n % 2 else "   "
    if any(c in value for c in ';"\r\n'):
        value = '"' + value.replace('"', '""') + '"'
    elif faults.padded and column != wire.NOTE:
        value = f"  {value} "
    return value


@contextmanager
def simulate(request: SimulatorRequest) -> Iterator[RunningSimulator]:
    """Write ``nights`` extract sets of ``request.truth`` into ``request.directory`` (the ``bridge simulate`` hook).

    ``request.options``: ``nights`` (default 3), ``seed``, and a fault knob per night, e.g.
    ``truncate=2`` (see :class:`Faults`). The drop folder must be given and must not hold sets yet.
    """
    if request.directory is None:
        raise ConfigError("the csc_social simulator writes extract sets into a drop folder: give --drop DIR")
    options = dict(request.options)
    try:
        nights = int(options.pop("nights", "3"))
        seed = int(options.pop("seed", "0"))
        by_night: dict[int, dict[str, bool]] = {}
        for knob, when in options.items():
            if knob not in Faults.knobs():
                raise ValueError(f"unknown option {knob!r} (knobs: {', '.join(Faults.knobs())})")
            by_night.setdefault(int(when), {})[knob] = True
    except ValueError as exc:
        raise ConfigError(f"invalid csc_social simulator option: {exc}") from None
    if nights < 1:
        raise ConfigError("invalid csc_social simulator option: nights must be at least 1")
    drop = request.directory
    if drop.exists() and any(wire.set_moment(p.name) for p in drop.iterdir()):
        raise ConfigError(f"the drop folder {drop} already holds extract sets; give an empty or new folder")
    simulator = write_nights(
        request.truth, drop, nights, {night: Faults(**knobs) for night, knobs in by_night.items()}, seed=seed
    )
    yield RunningSimulator(location=str(drop), settings=source_settings(drop), handle=simulator, serving=False)


def write_nights(
    truth: GroundTruth, drop: Path, nights: int, faults: Mapping[int, Faults] | None = None, *, seed: int = 0
) -> CscSimulator:
    """Write ``nights`` sets of ``truth`` into ``drop`` (night 1 full), with ``faults`` by night number."""
    drop.mkdir(parents=True, exist_ok=True)
    simulator = CscSimulator(truth, drop, seed=seed)
    for night in range(1, nights + 1):
        simulator.night((faults or {}).get(night))
    return simulator


def source_settings(drop: Path, **settings: Any) -> dict[str, Any]:
    """The ``[sources.settings]`` of a csc_social source that reads ``drop``."""
    return {"drop": str(drop.resolve()), **settings}
