"""Findings of a ledelsestilsyn: the checklist filled in per sampled case, versioned, and followed up.

- :func:`fill_sample` runs the automatic rules on every drawn case (as of the sample's day, over
  its review window) and stores one finding per case and checklist item; judgement items are
  stored unanswered. A failed item gets a follow-up deadline.
- :func:`record` stores a person's answer, note or refusion significance as a **new version**;
  nothing is overwritten. Who and when are stored with every version.
- :func:`refresh_follow_ups` looks at the cases again (after a sync): a failed automatic item
  whose missing milestone is now present is closed, as a new version, on that day.
- :func:`current_findings` gives the highest version of each finding.

The spreadsheet round trip (write the sheet, read it back) is in :mod:`bridge.services.sheet`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import RowMapping, Select, and_, func, insert, select

from bridge.errors import BridgeError, ConfigError
from bridge.law import Check, Outcome, add_months
from bridge.model.audit import AuditFinding
from bridge.model.tables import table_of
from bridge.services.audit import audit_rules, check_case, rule_outcome, timelines
from bridge.services.sampling import SAMPLE_CASES, SampleSummary, get_sample, sampled_cases
from bridge.store import Store

FINDINGS = table_of(AuditFinding)
FOLLOW_UP_MONTHS = 1


class UnknownFinding(BridgeError):
    """No finding of that sample, case and checklist item (exit 1)."""


@dataclass(frozen=True)
class Finding:
    """The current (highest) version of one finding."""

    sample_id: int
    case_key: str
    case_number: str
    rule: str
    version: int
    outcome: Outcome | None
    automatic: bool
    evidence: str
    note: str
    refusion: bool
    follow_up_due: date | None
    closed_on: date | None
    recorded_by: str
    recorded_at: datetime

    @property
    def open_error(self) -> bool:
        return self.outcome is Outcome.failed and self.closed_on is None


def _in_window(check: Check, sample: SampleSummary) -> bool:
    """A check belongs to the review when it fell due in the window, or is still open from before it."""
    if check.due is None:
        return False
    if sample.window_start <= check.due <= sample.as_of:
        return True
    return check.open and check.outcome is Outcome.failed and check.due < sample.window_start


def _evidence(checks: Sequence[Check]) -> str:
    order = {Outcome.failed: 0, Outcome.not_yet_due: 1, Outcome.passed: 2, Outcome.not_relevant: 3}
    ranked = sorted(checks, key=lambda c: (order[c.outcome], c.due or date.min))
    return "; ".join(f"{c.subject}: {c.evidence}" if c.subject else c.evidence for c in ranked)


def fill_sample(store: Store, sample_id: int, *, recorded_by: str, follow_up_months: int = FOLLOW_UP_MONTHS) -> int:
    """Store the checklist of every drawn case; returns the findings written (0 when already filled)."""
    sample = get_sample(store, sample_id)
    with store.engine.connect() as conn:
        already = conn.execute(select(func.count()).where(FINDINGS.c.sample_id == sample_id)).scalar_one()
    if already:
        return 0
    drawn = {c.case_id: c for c in sampled_cases(store, sample_id) if c.case_id is not None}
    rules = audit_rules()
    automatic = [r for r in rules if r.automatic]
    now = datetime.now(UTC)
    due = add_months(sample.as_of, follow_up_months)
    rows: list[dict[str, object]] = []
    for info, case in timelines(store, case_ids=list(drawn)):
        checks = [c for c in check_case(case, sample.as_of, automatic) if _in_window(c, sample)]
        for rule in rules:
            base = {
                "sample_id": sample_id,
                "case_key": info.key,
                "case_number": info.case_number,
                "rule": rule.id,
                "version": 1,
                "automatic": rule.automatic,
                "recorded_by": recorded_by,
                "recorded_at": now,
                "note": "",
                "refusion": False,
                "closed_on": None,
            }
            if rule.automatic:
                mine = [c for c in checks if c.rule == rule.id]
                outcome = rule_outcome(mine)
                evidence = _evidence(mine) or "Intet i gennemgangsperioden"
                rows.append(
                    base
                    | {
                        "outcome": outcome.value,
                        "evidence": evidence,
                        "follow_up_due": due if outcome is Outcome.failed else None,
                    }
                )
            else:
                rows.append(base | {"outcome": None, "evidence": "", "follow_up_due": None})
    with store.transaction() as conn:
        if rows:
            conn.execute(insert(FINDINGS), rows)
    return len(rows)


def _latest() -> Select[Any]:
    f = FINDINGS.c
    newest = (
        select(f.sample_id, f.case_key, f.rule, func.max(f.version).label("version"))
        .group_by(f.sample_id, f.case_key, f.rule)
        .subquery("newest")
    )
    return (
        select(FINDINGS)
        .join(
            newest,
            and_(
                f.sample_id == newest.c.sample_id,
                f.case_key == newest.c.case_key,
                f.rule == newest.c.rule,
                f.version == newest.c.version,
            ),
        )
        .order_by(f.sample_id, f.case_number, f.case_key, f.id)
    )


def current_findings(store: Store, sample_id: int | None = None) -> list[Finding]:
    """The highest version of every finding (of one sample, or all)."""
    query = _latest()
    if sample_id is not None:
        query = query.where(FINDINGS.c.sample_id == sample_id)
    with store.engine.connect() as conn:
        rows = list(conn.execute(query).mappings())
    return [_finding(row) for row in rows]


def history(store: Store, sample_id: int, case_key: str, rule: str) -> list[Finding]:
    """Every version of one finding, oldest first."""
    f = FINDINGS.c
    query = select(FINDINGS).where(f.sample_id == sample_id, f.case_key == case_key, f.rule == rule).order_by(f.version)
    with store.engine.connect() as conn:
        return [_finding(row) for row in conn.execute(query).mappings()]


def _finding(row: RowMapping) -> Finding:
    r = dict(row)
    recorded_at = r["recorded_at"]
    if recorded_at.tzinfo is None:
        recorded_at = recorded_at.replace(tzinfo=UTC)
    return Finding(
        sample_id=r["sample_id"],
        case_key=r["case_key"],
        case_number=r["case_number"],
        rule=r["rule"],
        version=r["version"],
        outcome=Outcome(r["outcome"]) if r["outcome"] else None,
        automatic=bool(r["automatic"]),
        evidence=r["evidence"],
        note=r["note"],
        refusion=bool(r["refusion"]),
        follow_up_due=r["follow_up_due"],
        closed_on=r["closed_on"],
        recorded_by=r["recorded_by"],
        recorded_at=recorded_at,
    )


@dataclass(frozen=True)
class Change:
    """A new version asked for: ``None`` leaves a field as it is."""

    case: str
    rule: str
    outcome: Outcome | None = None
    note: str | None = None
    refusion: bool | None = None
    closed_on: date | None = None


def find(findings: Iterable[Finding], case: str, rule: str) -> Finding:
    """The finding of a case (by case key or case number) and rule."""
    for finding in findings:
        if rule == finding.rule and case in (finding.case_key, finding.case_number):
            return finding
    raise UnknownFinding(f"no finding for case {case!r} and checklist item {rule!r} in this sample")


def record(
    store: Store,
    sample_id: int,
    changes: Sequence[Change],
    *,
    recorded_by: str,
    follow_up_months: int = FOLLOW_UP_MONTHS,
    today: date | None = None,
) -> list[Finding]:
    """Store each change as a new version of its finding (in one transaction); unchanged ones are skipped."""
    sample = get_sample(store, sample_id)
    current = current_findings(store, sample_id)
    now = datetime.now(UTC)
    rows = []
    for change in changes:
        finding = find(current, change.case, change.rule)
        if change.outcome is not None and finding.automatic and change.outcome is not finding.outcome:
            raise ConfigError(
                f"{change.rule!r} on case {finding.case_number} is checked automatically ({finding.outcome}); "
                "correct the data in the source system, or add a note"
            )
        row = _next_version(
            finding,
            change,
            sample,
            follow_up_months=follow_up_months,
            today=today,
            recorded_by=recorded_by,
            now=now,
        )
        if row is not None:
            rows.append(row)
    with store.transaction() as conn:
        if rows:
            conn.execute(insert(FINDINGS), rows)
    updated = current_findings(store, sample_id)
    touched = {(r["case_key"], r["rule"]) for r in rows}
    return [f for f in updated if (f.case_key, f.rule) in touched]


def _next_version(
    finding: Finding,
    change: Change,
    sample: SampleSummary,
    *,
    follow_up_months: int,
    today: date | None,
    recorded_by: str,
    now: datetime,
) -> dict[str, object] | None:
    outcome = change.outcome if change.outcome is not None else finding.outcome
    note = change.note if change.note is not None else finding.note
    refusion = change.refusion if change.refusion is not None else finding.refusion
    closed_on = change.closed_on if change.closed_on is not None else finding.closed_on
    follow_up_due = finding.follow_up_due
    if outcome is Outcome.failed and follow_up_due is None:
        follow_up_due = add_months(today or sample.as_of, follow_up_months)
    if outcome is Outcome.passed and finding.outcome is Outcome.failed and closed_on is None and not finding.automatic:
        closed_on = today or date.today()  # a judgement item answered "opfyldt" after an error: corrected
    if (outcome, note, refusion, closed_on) == (finding.outcome, finding.note, finding.refusion, finding.closed_on):
        return None
    return {
        "sample_id": finding.sample_id,
        "case_key": finding.case_key,
        "case_number": finding.case_number,
        "rule": finding.rule,
        "version": finding.version + 1,
        "outcome": outcome.value if outcome is not None else None,
        "automatic": finding.automatic,
        "evidence": finding.evidence,
        "note": note,
        "refusion": refusion,
        "follow_up_due": follow_up_due,
        "closed_on": closed_on,
        "recorded_by": recorded_by,
        "recorded_at": now,
    }


def refresh_follow_ups(store: Store, *, today: date | None = None, recorded_by: str = "bridge") -> int:
    """Close failed automatic items whose missing milestone is now in the data; returns how many closed."""
    today = today or date.today()
    open_errors = [f for f in current_findings(store) if f.open_error and f.automatic]
    if not open_errors:
        return 0
    by_key: dict[str, list[Finding]] = {}
    for finding in open_errors:
        by_key.setdefault(finding.case_key, []).append(finding)
    rules = {r.id: r for r in audit_rules(automatic=True)}
    samples: dict[int, SampleSummary] = {}
    closing: dict[int, list[Change]] = {}
    case_ids = _case_ids(store, list(by_key))
    for info, case in timelines(store, case_ids=list(case_ids.values())):
        for finding in by_key.get(info.key, ()):
            rule = rules.get(finding.rule)
            if rule is None:
                continue
            sample = samples.setdefault(finding.sample_id, get_sample(store, finding.sample_id))
            still_open = [c for c in check_case(case, today, [rule]) if _in_window(c, sample) and c.open]
            if not still_open:
                closing.setdefault(finding.sample_id, []).append(
                    Change(finding.case_key, finding.rule, note=_closed_note(finding), closed_on=today)
                )
    closed = 0
    for sample_id, changes in closing.items():
        closed += len(record(store, sample_id, changes, recorded_by=recorded_by, today=today))
    return closed


def _closed_note(finding: Finding) -> str:
    prefix = f"{finding.note} " if finding.note else ""
    return f"{prefix}Rettet: det manglende er nu registreret i fagsystemet."


def _case_ids(store: Store, keys: Sequence[str]) -> dict[str, int]:
    sc = SAMPLE_CASES.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(sc.case_key, sc.case_id).where(sc.case_key.in_(keys), sc.case_id.is_not(None)))
        return {key: int(case_id) for key, case_id in rows}


@dataclass(frozen=True)
class FollowUpStatus:
    """How errors were followed up: closed in time, closed late, overdue, still within the deadline."""

    errors: int
    closed_in_time: int
    closed_late: int
    overdue: int
    pending: int

    @property
    def share_in_time(self) -> float | None:
        """Closed in time among the errors whose deadline has passed or that are closed."""
        decided = self.closed_in_time + self.closed_late + self.overdue
        return self.closed_in_time / decided if decided else None


def follow_up_status(findings: Iterable[Finding], today: date) -> FollowUpStatus:
    errors = in_time = late = overdue = pending = 0
    for f in findings:
        if f.outcome is not Outcome.failed:
            continue
        errors += 1
        due = f.follow_up_due or today
        if f.closed_on is not None:
            if f.closed_on <= due:
                in_time += 1
            else:
                late += 1
        elif today > due:
            overdue += 1
        else:
            pending += 1
    return FollowUpStatus(errors, in_time, late, overdue, pending)


__all__ = [
    "FOLLOW_UP_MONTHS",
    "Change",
    "Finding",
    "FollowUpStatus",
    "UnknownFinding",
    "current_findings",
    "fill_sample",
    "find",
    "follow_up_status",
    "history",
    "record",
    "refresh_follow_ups",
]
