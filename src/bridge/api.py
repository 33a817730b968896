"""The library API: ``bridge.open(...)`` returns a :class:`Bridge` with typed reads and ``sync()``.

>>> import bridge
>>> with bridge.open("sqlite:///bridge-demo/bridge.db") as b:     # doctest: +SKIP
...     open_cases = b.cases(status="open")
...     runs = b.runs(limit=5)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from bridge.config import BridgeConfig, WorkloadSettings, load_config
from bridge.errors import ConfigError
from bridge.law import AuditRule, Check, Timeline
from bridge.model.tables import Assessment, Case, CaseEvent, Quarantined, SyncRun
from bridge.plugins import get_plugins
from bridge.reports import scoring as scoring_reports
from bridge.reports.compare import comparison_report
from bridge.services import audit, barometer, findings, handover, sampling, scoring, workload
from bridge.services.audit import Deadline
from bridge.services.barometer import Barometer, BarometerBy
from bridge.services.cases import CaseSummary, find_cases
from bridge.services.compare import Comparison, write_extract
from bridge.services.compare import compare as compare_store
from bridge.services.compare import merge as merge_extracts
from bridge.services.findings import Change, Finding
from bridge.services.handover import DecisionProgress, Dossier, HandoverPlan
from bridge.services.periods import Period
from bridge.services.sampling import DrawSpec, SampleSummary, Verification
from bridge.services.scoring import (
    ChildScores,
    CohortSummary,
    Coverage,
    GroupBy,
    ReliableChange,
    Threshold,
    Transition,
)
from bridge.services.sheet import ImportResult, import_sheet, write_sheet
from bridge.services.workload import Suggestion, Workload
from bridge.store import Store, open_store
from bridge.sync import BatchDone, SourceOutcome, SyncResult, sync_sources
from bridge.sync.engine import BatchCallback

T = TypeVar("T")


class Bridge:
    """A store and, when opened from a configuration, the sources that feed it."""

    def __init__(self, store: Store, config: BridgeConfig | None = None) -> None:
        self.store = store
        self.config = config

    # -- reading -----------------------------------------------------------------------

    def cases(
        self,
        *,
        source: str | None = None,
        municipality: str | None = None,
        status: str | None = None,
        child_key: str | None = None,
        include_deleted: bool = False,
    ) -> list[Case]:
        """Cases, one per child, optionally filtered. Deleted cases only when asked for."""
        query = select(Case).order_by(col(Case.id))
        if source is not None:
            query = query.where(Case.source == source)
        if municipality is not None:
            query = query.where(Case.municipality == municipality)
        if status is not None:
            query = query.where(Case.status == status)
        if child_key is not None:
            query = query.where(Case.child_key == child_key)
        if not include_deleted:
            query = query.where(col(Case.deleted_at).is_(None))
        return self._all(query)

    def find_cases(
        self,
        *,
        open_only: bool = False,
        caseworker: str | None = None,
        municipality: str | None = None,
        case_number: str | None = None,
    ) -> list[CaseSummary]:
        """Cases as a person looks them up: case number, municipality, caseworker and the child's age."""
        return find_cases(
            self.store, open_only=open_only, caseworker=caseworker, municipality=municipality, case_number=case_number
        )

    def assessments(self, *, case_id: int | None = None, theme: str | None = None) -> list[Assessment]:
        """Scores in date order; ``value`` None is "ikke vurderet"."""
        query = select(Assessment).order_by(col(Assessment.assessed_on), col(Assessment.id))
        if case_id is not None:
            query = query.where(Assessment.case_id == case_id)
        if theme is not None:
            query = query.where(Assessment.theme == theme)
        return self._all(query)

    def events(self, *, case_id: int | None = None, kind: str | None = None) -> list[CaseEvent]:
        query = select(CaseEvent).order_by(col(CaseEvent.occurred_on), col(CaseEvent.id))
        if case_id is not None:
            query = query.where(CaseEvent.case_id == case_id)
        if kind is not None:
            query = query.where(CaseEvent.kind == kind)
        return self._all(query)

    def runs(self, *, source: str | None = None, limit: int = 50) -> list[SyncRun]:
        """The run ledger, newest first."""
        query = select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)
        if source is not None:
            query = query.where(SyncRun.source == source)
        return self._all(query)

    def quarantined(self, *, source: str | None = None, include_resolved: bool = False) -> list[Quarantined]:
        """Rejected records with their reasons. Their ``payload`` may hold CPR numbers: never print it."""
        query = select(Quarantined).order_by(col(Quarantined.id))
        if source is not None:
            query = query.where(Quarantined.source == source)
        if not include_resolved:
            query = query.where(col(Quarantined.resolved_at).is_(None))
        return self._all(query)

    def _all(self, query: SelectOfScalar[T]) -> list[T]:
        with self.store.session() as session:
            rows = list(session.exec(query))
            session.expunge_all()
            return rows

    # -- scoring (resultat- og effektdokumentation) -------------------------------------

    def child_scores(self, child_key: str, *, r: float = scoring.DEFAULT_RELIABILITY) -> ChildScores:
        """One child's series and progression per theme, classified by reliable change."""
        return scoring.child_scores(self.store, child_key, rc=ReliableChange(r=r))

    def score_cohorts(
        self, *, by: GroupBy = "all", period: str | Period | None = None, r: float = scoring.DEFAULT_RELIABILITY
    ) -> CohortSummary:
        """n, mean change and shares improved / unchanged / worsened per group and theme."""
        span = Period.parse(period) if isinstance(period, str) else period
        return scoring.cohort_summary(self.store, by=by, period=span, rc=ReliableChange(r=r))

    def score_transitions(self, *, period: str | Period | None = None) -> list[Transition]:
        """The 5×5 first-score × latest-score table per theme."""
        span = Period.parse(period) if isinstance(period, str) else period
        return scoring.transitions(self.store, period=span)

    def score_thresholds(self, *, r: float = scoring.DEFAULT_RELIABILITY) -> list[Threshold]:
        """The reliable-change threshold per theme (Jacobson–Truax)."""
        return scoring.thresholds(self.store, ReliableChange(r=r))

    def score_coverage(self, *, as_of: date | None = None, months: int = scoring.COVERAGE_MONTHS) -> Coverage:
        """Share of open cases scored in the last ``months`` months, and cases never scored."""
        return scoring.coverage(self.store, as_of=as_of, months=months)

    def write_scoring_report(self, path: str | Path, *, as_of: date | None = None) -> Path:
        """Write the self-contained HTML scoring report (a file, or ``scores.html`` in a folder); returns the file."""
        html = get_plugins().report_formats()["html"]
        return scoring_reports.write_scoring_report(self.store, Path(path), html, as_of=as_of)

    # -- ledelsestilsyn ------------------------------------------------------------------

    def audit_rules(self) -> list[AuditRule]:
        """Every installed checklist item (core's and plugins'), in Børnesagsbarometret's order of areas."""
        return audit.audit_rules()

    def check_case(self, case_id: int, *, as_of: date | None = None) -> list[Check]:
        """Every automatic check of one case as of a day (default today)."""
        return audit.check_case(self._timeline(case_id), as_of or date.today())

    def upcoming_deadlines(
        self, case_id: int, *, on: date | None = None, within_days: int | None = None
    ) -> list[Deadline]:
        """A case's overdue and coming deadlines on a day, each with its rule and act."""
        return audit.upcoming_deadlines(self._timeline(case_id), on or date.today(), within_days=within_days)

    def _timeline(self, case_id: int) -> Timeline:
        for _, timeline in audit.timelines(self.store, case_ids=[case_id]):
            return timeline
        raise ConfigError(f"no live case has id {case_id}")

    def barometer(
        self,
        *,
        periods: Sequence[str | Period] = (),
        by: BarometerBy = "all",
        as_of: date | None = None,
        municipality: str | None = None,
    ) -> Barometer:
        """Each indicator's share of cases passing, over all live cases, per period and group."""
        spans = [Period.parse(p) if isinstance(p, str) else p for p in periods] or None
        return barometer.barometer(self.store, periods=spans, by=by, as_of=as_of, municipality=municipality)

    def draw_sample(self, spec: DrawSpec, *, seed: str | None = None, drawn_by: str = "bridge") -> SampleSummary:
        """Draw and store a reproducible sample (see :class:`bridge.services.sampling.DrawSpec`)."""
        return sampling.draw_sample(self.store, spec, seed=seed, drawn_by=drawn_by)

    def samples(self) -> list[SampleSummary]:
        return sampling.list_samples(self.store)

    def verify_sample(self, sample_id: int) -> Verification:
        """Recompute a sample: confirmed, or the cases that came, went or moved."""
        return sampling.verify(self.store, sample_id)

    def fill_sample(self, sample_id: int, *, recorded_by: str) -> int:
        """Check the sample's cases and store the checklist (once); returns the findings written."""
        return findings.fill_sample(self.store, sample_id, recorded_by=recorded_by)

    def findings(self, sample_id: int) -> list[Finding]:
        """The current version of every finding of a sample."""
        return findings.current_findings(self.store, sample_id)

    def record_findings(self, sample_id: int, changes: Sequence[Change], *, recorded_by: str) -> list[Finding]:
        """Store answers, notes, refusion significance or corrections as new versions."""
        return findings.record(self.store, sample_id, changes, recorded_by=recorded_by)

    def write_audit_sheet(self, sample_id: int, path: Path) -> Path:
        """The leader's XLSX checklist of a sample (filled in first when it is not)."""
        findings.fill_sample(self.store, sample_id, recorded_by="bridge")
        return write_sheet(self.store, sample_id, path)

    def import_audit_sheet(self, path: Path, *, recorded_by: str) -> ImportResult:
        """Read a filled-in sheet back; raises :class:`bridge.services.sheet.SheetError` naming bad cells."""
        return import_sheet(self.store, path, recorded_by=recorded_by)

    def refresh_follow_ups(self, *, today: date | None = None) -> int:
        """After a sync: close errors the data now show corrected."""
        return findings.refresh_follow_ups(self.store, today=today)

    # -- comparing municipalities -------------------------------------------------------

    def compare(
        self, *, periods: Sequence[str | Period] = (), municipalities: Sequence[str] = (), as_of: date | None = None
    ) -> Comparison:
        """The store's municipalities side by side: each indicator's protected numerator and denominator."""
        spans = [Period.parse(p) if isinstance(p, str) else p for p in periods] or None
        return compare_store(self.store, periods=spans, municipalities=list(municipalities) or None, as_of=as_of)

    def write_compare_extract(
        self, path: str | Path, municipality: str, *, periods: Sequence[str | Period] = (), as_of: date | None = None
    ) -> Path:
        """One municipality's extract for a comparison elsewhere: aggregates only, checksummed JSON."""
        comparison = self.compare(periods=periods, municipalities=[municipality], as_of=as_of)
        return write_extract(comparison, municipality, Path(path))

    @staticmethod
    def merge_compare_extracts(paths: Sequence[str | Path]) -> Comparison:
        """Extracts of many municipalities as one comparison; raises ExtractError naming a refused file."""
        return merge_extracts([Path(p) for p in paths])

    @staticmethod
    def write_comparison_report(comparison: Comparison, path: str | Path) -> Path:
        """The comparison as one self-contained HTML file; returns its path."""
        target = Path(path)
        target.write_bytes(get_plugins().report_formats()["html"].render(comparison_report(comparison)))
        return target
    # -- workload and handover ------------------------------------------------------------

    def _weights(self) -> WorkloadSettings:
        return self.config.workload if self.config is not None else WorkloadSettings()

    def workload(self, *, on: date | None = None, municipality: str | None = None) -> Workload:
        """Every caseworker's open children and weighted load (``[workload]`` weights, or a plugin's)."""
        return workload.workload(self.store, settings=self._weights(), on=on, municipality=municipality)

    def suggest_caseworker(
        self, case_number: str, *, on: date | None = None, municipality: str | None = None
    ) -> Suggestion:
        """Who should take a new case, and why: the family's caseworker, the municipality's rule, the lowest load."""
        return workload.suggest(self.store, case_number, settings=self._weights(), on=on, municipality=municipality)

    def plan_handover(
        self,
        caseworker: str,
        *,
        to: Sequence[str] | None = None,
        on: date | None = None,
        municipality: str | None = None,
    ) -> HandoverPlan:
        """A plan moving every open case of ``caseworker`` to ``to`` (default: the team), families whole."""
        return handover.plan_handover(
            self.store, caseworker, to=to, on=on, settings=self._weights(), municipality=municipality
        )

    def handover_dossiers(self, plan: HandoverPlan) -> list[Dossier]:
        """A dossier per case of the plan: measures, deadlines, what is overdue, scores, findings, last note."""
        return handover.dossiers(self.store, plan)

    def accept_handover(self, plan: HandoverPlan, *, decided_by: str) -> int:
        """Store the plan as a dated decision; returns its id."""
        return handover.accept(self.store, plan, decided_by=decided_by)

    def handover_progress(self, decision_id: int | None = None) -> list[DecisionProgress]:
        """Accepted handovers, each move checked against the cases as last synced."""
        return handover.progress(self.store, decision_id)

    # -- syncing -----------------------------------------------------------------------

    def sync(
        self, sources: Sequence[str] = (), *, full: bool = False, on_batch: BatchCallback | None = None
    ) -> SyncResult:
        """Sync the named sources (default: all configured ones), one after another.

        One source's failure never stops the others: the result holds every source's outcome
        (``.runs``, failed runs included; ``.skipped``, sources whose lock another run held;
        ``.exit_code``, the worst). Every named source's configuration is checked before any runs
        (``ConfigError``). ``bridge sync`` is this method.
        """
        if self.config is None:
            raise ConfigError("this Bridge was opened from a database URL; open it from bridge.toml to sync")
        return sync_sources(self.store, self.config, sources, full=full, on_batch=on_batch)

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open(target: str | Path | BridgeConfig | None = None) -> Bridge:
    """Open a store: a database URL, a path to ``bridge.toml``, a loaded config, or ``./bridge.toml``.

    >>> b = open("sqlite:///:memory:")
    >>> b.cases()
    []
    """
    if isinstance(target, BridgeConfig):
        return Bridge(open_store(target.database_url()), target)
    if isinstance(target, str) and "://" in target:
        return Bridge(open_store(target))
    config = load_config(Path(target) if target is not None else None)
    return Bridge(open_store(config.database_url()), config)


__all__ = ["BatchDone", "Bridge", "SourceOutcome", "SyncResult", "open"]
