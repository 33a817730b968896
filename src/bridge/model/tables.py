"""Tables: what is stored (SQLModel on SQLAlchemy).

Timestamps are timezone-aware and stored in UTC. Enumerations are stored as their string values,
guarded by CHECK constraints, so a new theme or event kind is a migration of a
constraint, not of a database enum type. Person data is held as person keys only;
``child_cpr`` stays empty unless the installation opted in to ``store_cpr``.

The tables are written in bulk by the sync engine through SQLAlchemy Core; the ORM
classes are for reading.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.model.records import Act, CaseStatus, EventKind, TargetGroup, Theme


def _one_of(column: str, values: type[Act | CaseStatus | EventKind | TargetGroup | Theme]) -> str:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({allowed})"


def _case_fk() -> Column[int]:
    return Column(Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True)


class Municipality(SQLModel, table=True):
    __tablename__ = "municipalities"

    code: str = Field(primary_key=True, max_length=3, description="kommunekode, 3 digits")
    name: str


class Caseworker(SQLModel, table=True):
    __tablename__ = "caseworkers"
    __table_args__ = (UniqueConstraint("source", "source_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_ref: str
    municipality: str = Field(foreign_key="municipalities.code")
    name: str
    unit: str | None = None


class Case(SQLModel, table=True):
    """One child's case (sag). Family cases are stored as one row per child."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        CheckConstraint(_one_of("target_group", TargetGroup), name="ck_cases_target_group"),
        CheckConstraint(_one_of("status", CaseStatus), name="ck_cases_status"),
        CheckConstraint("closed IS NULL OR closed >= opened", name="ck_cases_closed_after_opened"),
        Index("ix_cases_municipality_status", "municipality", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_ref: str
    municipality: str = Field(foreign_key="municipalities.code")
    child_key: str = Field(index=True)
    child_birth_date: date
    child_sex: str = Field(max_length=1)
    child_cpr: str | None = None
    family_key: str | None = Field(default=None, index=True)
    family_case_number: str | None = None
    caseworker_id: int | None = Field(default=None, foreign_key="caseworkers.id", index=True)
    case_number: str
    kle: str
    target_group: str
    opened: date
    closed: date | None = None
    status: str
    source_modified: datetime
    content_hash: str = Field(max_length=64)
    deleted_at: datetime | None = Field(default=None, description="set by a --full sync; never removed")
    synced_at: datetime
    changed_run_id: int | None = Field(default=None, description="the run that last wrote this case")


class Measure(SQLModel, table=True):
    """An indsats/foranstaltning/bevilling with its legal basis."""

    __tablename__ = "measures"
    __table_args__ = (CheckConstraint(_one_of("act", Act), name="ck_measures_act"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(sa_column=_case_fk())
    source_ref: str
    act: str
    paragraph: str
    start: date
    end: date | None = None
    has_grant: bool
    account_code: str | None = None
    provider: str | None = None


class Assessment(SQLModel, table=True):
    """A score on one theme; ``value`` NULL is "ikke vurderet"."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint(_one_of("theme", Theme), name="ck_assessments_theme"),
        CheckConstraint("value IS NULL OR value BETWEEN 1 AND 5", name="ck_assessments_value"),
        Index("ix_assessments_theme_date", "theme", "assessed_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(sa_column=_case_fk())
    theme: str
    value: int | None = None
    assessed_on: date
    assessor: str | None = None


class CaseEvent(SQLModel, table=True):
    __tablename__ = "case_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", EventKind), name="ck_case_events_kind"),
        Index("ix_case_events_kind_date", "kind", "occurred_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(sa_column=_case_fk())
    kind: str
    occurred_on: date
    occurred_at: datetime | None = Field(default=None, description="UTC, where the source has a time of day")
    source_ref: str | None = None


class SyncRun(SQLModel, table=True):
    """The run ledger: one row per ``bridge sync`` of one source."""

    __tablename__ = "sync_runs"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    full: bool = False
    started_at: datetime
    finished_at: datetime | None = None
    status: str = Field(default="running", description="running|succeeded|quarantined|failed|abandoned")
    cursor_before: str | None = None
    cursor_after: str | None = None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    deleted: int = 0
    error: str | None = None


class Quarantined(SQLModel, table=True):
    """A record a source sent that could not be accepted, with the reason and the raw payload.

    The payload is the only place a CPR number may remain; it is never printed.
    """

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_source_ref", "source", "source_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    source_ref: str | None = None
    reason: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(max_length=64, description="an unresolved payload is kept once")
    run_id: int = Field(foreign_key="sync_runs.id")
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_run_id: int | None = None


class SyncState(SQLModel, table=True):
    """The cursor of each source, committed in the same transaction as the batch it follows."""

    __tablename__ = "sync_state"

    source: str = Field(primary_key=True)
    cursor: str | None = None
    run_id: int | None = None
    updated_at: datetime


class SyncLock(SQLModel, table=True):
    """The per-source lock row on stores without advisory locks (SQLite)."""

    __tablename__ = "sync_locks"

    source: str = Field(primary_key=True)
    owner: str = Field(description="host:pid of the holder")
    acquired_at: datetime


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a model, for bulk statements."""
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


# The Core tables, for bulk statements and SQL aggregates.
MUNICIPALITIES = table_of(Municipality)
CASEWORKERS = table_of(Caseworker)
CASES = table_of(Case)
MEASURES = table_of(Measure)
ASSESSMENTS = table_of(Assessment)
EVENTS = table_of(CaseEvent)
RUNS = table_of(SyncRun)
QUARANTINE = table_of(Quarantined)
SYNC_STATE = table_of(SyncState)
LOCKS = table_of(SyncLock)
