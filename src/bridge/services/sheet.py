"""The leader's spreadsheet: one row per drawn case and checklist item, and reading it back.

:func:`write_sheet` writes an XLSX workbook whose sheet "Tjekskema" has the automatic results
filled in with their evidence and the judgement items empty, with drop-down lists for the answer
and the refusion significance. A hidden sheet "Om" holds the sample id and the population
fingerprint, so a sheet cannot be read into another sample.

:func:`import_sheet` validates every row first and imports nothing when any cell is wrong:
an answer outside the list, a case that is not in the sample, a checklist item bridge does not
have, or an automatic result that was changed in the sheet (the data are corrected in the source
system, not in the sheet). Each error names its cell (``Tjekskema!I7``). A valid sheet is stored
as new versions of the findings that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from bridge.errors import BridgeError
from bridge.law import Outcome
from bridge.law.rule import AREA_LABELS, OUTCOME_LABELS, STEP_LABELS
from bridge.services.audit import audit_rules
from bridge.services.findings import Change, current_findings, record
from bridge.services.sampling import get_sample
from bridge.store import Store

SHEET = "Tjekskema"
ABOUT = "Om"
YES, NO = "ja", "nej"
ANSWERS = {label: outcome for outcome, label in OUTCOME_LABELS.items()}
COLUMNS = (
    ("Sag", 22),
    ("Sagsnummer", 20),
    ("Område", 18),
    ("Sagsskridt", 22),
    ("Punkt", 26),
    ("Spørgsmål", 44),
    ("Hjemmel", 26),
    ("Automatisk", 11),
    ("Resultat", 16),
    ("Dokumentation", 70),
    ("Refusionsmæssig betydning", 14),
    ("Bemærkning", 40),
    ("Opfølgningsfrist", 14),
)
COL = {name: i + 1 for i, (name, _) in enumerate(COLUMNS)}


class SheetError(BridgeError):
    """A sheet that cannot be imported; every problem is listed with its cell. Nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"the sheet was not imported ({len(problems)} problems):\n{shown}{more}")


def write_sheet(store: Store, sample_id: int, path: Path) -> Path:
    """Write the checklist of a sample (filled by :func:`bridge.services.findings.fill_sample`) as XLSX."""
    sample = get_sample(store, sample_id)
    findings = current_findings(store, sample_id)
    rules = {r.id: r for r in audit_rules()}
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET
    sheet.append([name for name, _ in COLUMNS])
    for i, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
        sheet.cell(1, i).font = Font(bold=True)
        sheet.cell(1, i).fill = PatternFill("solid", fgColor="DCE6F1")
    grey = PatternFill("solid", fgColor="F2F2F2")
    for f in findings:
        rule = rules.get(f.rule)
        sheet.append(
            [
                f.case_key,
                f.case_number,
                AREA_LABELS[rule.area] if rule else "",
                STEP_LABELS[rule.step] if rule else "",
                f.rule,
                rule.title if rule else f.rule,
                ", ".join(str(c) for c in rule.sources) if rule else "",
                YES if f.automatic else NO,
                OUTCOME_LABELS[f.outcome] if f.outcome is not None else None,
                f.evidence,
                YES if f.refusion else NO,
                f.note,
                f.follow_up_due,
            ]
        )
        row = sheet.max_row
        sheet.cell(row, COL["Dokumentation"]).alignment = Alignment(wrap_text=True, vertical="top")
        sheet.cell(row, COL["Opfølgningsfrist"]).number_format = "DD-MM-YYYY"
        if f.automatic:
            for column in (COL["Resultat"], COL["Dokumentation"]):
                sheet.cell(row, column).fill = grey
    last = max(sheet.max_row, 2)
    answers = DataValidation(
        type="list", formula1=f'"{",".join(OUTCOME_LABELS.values())}"', allow_blank=True, showErrorMessage=True
    )
    answers.error = "Vælg et svar fra listen"
    refusion = DataValidation(type="list", formula1=f'"{YES},{NO}"', allow_blank=True, showErrorMessage=True)
    sheet.add_data_validation(answers)
    sheet.add_data_validation(refusion)
    answers.add(_column_range("Resultat", last))
    refusion.add(_column_range("Refusionsmæssig betydning", last))
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{last}"
    about = book.create_sheet(ABOUT)
    about.append(["sample_id", sample.id])
    about.append(["fingerprint", sample.fingerprint])
    about.append(["label", sample.label])
    about.append(["as_of", sample.as_of])
    about.sheet_state = "hidden"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _column_range(column: str, last: int) -> str:
    letter = get_column_letter(COL[column])
    return f"{letter}2:{letter}{last}"


@dataclass(frozen=True)
class ImportResult:
    sample_id: int
    rows: int
    new_versions: int


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def import_sheet(store: Store, path: Path, *, recorded_by: str, today: date | None = None) -> ImportResult:
    """Validate the whole sheet, then store its answers as new versions; nothing on any error."""
    try:
        book = load_workbook(path, data_only=True)
    except Exception as exc:
        raise SheetError([f"{path.name}: not an XLSX workbook bridge wrote ({type(exc).__name__})"]) from None
    if SHEET not in book.sheetnames or ABOUT not in book.sheetnames:
        raise SheetError([f"{path.name}: the sheets {SHEET!r} and {ABOUT!r} are missing; write the sheet again"])
    about = {_text(row[0]): row[1] for row in book[ABOUT].iter_rows(values_only=True) if row and row[0]}
    try:
        sample_id = int(about["sample_id"])
    except (KeyError, TypeError, ValueError):
        raise SheetError([f"{ABOUT}!B1: the sample id is missing"]) from None
    sample = get_sample(store, sample_id)
    if _text(about.get("fingerprint")) != sample.fingerprint:
        raise SheetError([f"{ABOUT}!B2: the sheet belongs to another draw of sample {sample_id}"])
    sheet = book[SHEET]
    header = [_text(c) for c in next(sheet.iter_rows(min_row=1, max_row=1, values_only=True))]
    expected = [name for name, _ in COLUMNS]
    if header[: len(expected)] != expected:
        raise SheetError([f"{SHEET}!A1: the columns were changed; expected {', '.join(expected)}"])
    findings = {(f.case_key, f.rule): f for f in current_findings(store, sample_id)}
    cases = {key for key, _ in findings}
    problems: list[str] = []
    changes: list[Change] = []
    rows = 0

    def cell(row: int, column: str) -> str:
        return f"{SHEET}!{get_column_letter(COL[column])}{row}"

    for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        if not any(v not in (None, "") for v in values):
            continue
        rows += 1
        value = {name: values[i] if i < len(values) else None for i, (name, _) in enumerate(COLUMNS)}
        key, rule = _text(value["Sag"]), _text(value["Punkt"])
        if key not in cases:
            problems.append(f"{cell(number, 'Sag')}: {key or '(tom)'} is not a case of sample {sample_id}")
            continue
        finding = findings.get((key, rule))
        if finding is None:
            problems.append(f"{cell(number, 'Punkt')}: {rule or '(tom)'} is not a checklist item of this sample")
            continue
        answer_text = _text(value["Resultat"])
        if answer_text and answer_text not in ANSWERS:
            allowed = ", ".join(OUTCOME_LABELS.values())
            problems.append(f"{cell(number, 'Resultat')}: {answer_text!r} is not an answer; use one of {allowed}")
            continue
        answer = ANSWERS.get(answer_text)
        if finding.automatic and answer is not finding.outcome:
            was = OUTCOME_LABELS[finding.outcome] if finding.outcome else "(tom)"
            problems.append(
                f"{cell(number, 'Resultat')}: the automatic result {was!r} was changed to {answer_text or '(tom)'!r}; "
                "automatic results are corrected in the source system, not in the sheet"
            )
            continue
        refusion_text = _text(value["Refusionsmæssig betydning"]).lower()
        if refusion_text not in ("", YES, NO):
            problems.append(f"{cell(number, 'Refusionsmæssig betydning')}: {refusion_text!r} is not {YES} or {NO}")
            continue
        if answer is None and not finding.automatic and finding.outcome is not None:
            problems.append(
                f"{cell(number, 'Resultat')}: an answer cannot be removed; choose {Outcome.not_relevant.label!r}"
            )
            continue
        changes.append(
            Change(
                key,
                rule,
                outcome=None if finding.automatic else answer,
                note=_text(value["Bemærkning"]),
                refusion=refusion_text == YES,
            )
        )
    if problems:
        raise SheetError(problems)
    written = record(store, sample_id, changes, recorded_by=recorded_by, today=today)
    return ImportResult(sample_id, rows, len(written))


__all__ = ["ImportResult", "SheetError", "import_sheet", "write_sheet"]
