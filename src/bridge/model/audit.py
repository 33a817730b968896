"""Tables of the ledelsestilsyn: samples (how drawn, from which population) and findings.

A finding is never overwritten: a correction, a leader's answer or the closing of a followed-up
error is a new version of the finding (``version`` counts up per sample, case and rule), with
who recorded it and when. The current state of a finding is its highest version.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.law.rule import Outcome


def _outcomes() -> str:
    return ", ".join(f"'{o.value}'" for o in Outcome)


class AuditSample(SQLModel, table=True):
    """One draw: the strategy, its parameters, the seed and a fingerprint of the population."""

    __tablename__ = "audit_samples"

    id: int | None = Field(default=None, primary_key=True)
    label: str
    strategy: str = Field(description="per_caseworker | per_paragraph | proportional")
    parameters: str = Field(sa_column=Column(Text, nullable=False), description="JSON of the draw's parameters")
    seed: str
    as_of: date
    window_start: date = Field(description="cases with a measure started in window_start..as_of")
    population_size: int
    population_fingerprint: str = Field(max_length=64)
    drawn_at: datetime
    drawn_by: str


class AuditSampleCase(SQLModel, table=True):
    """A case of a sample's population, its stratum, its place in the seed order and whether drawn."""

    __tablename__ = "audit_sample_cases"
    __table_args__ = (Index("ix_audit_sample_cases_case_key", "case_key"),)

    sample_id: int = Field(
        sa_column=Column(Integer, ForeignKey("audit_samples.id", ondelete="CASCADE"), primary_key=True)
    )
    case_key: str = Field(primary_key=True, description="source:source_ref")
    case_id: int | None = Field(default=None, description="the case's row when drawn")
    stratum: str
    rank: int = Field(description="1 = first in the stratum's SHA-256(seed | case key) order")
    selected: bool


class AuditFinding(SQLModel, table=True):
    """One version of the result of one checklist item on one case."""

    __tablename__ = "audit_findings"
    __table_args__ = (
        UniqueConstraint("sample_id", "case_key", "rule", "version"),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({_outcomes()})", name="ck_audit_findings_outcome"),
        Index("ix_audit_findings_case_rule", "case_key", "rule"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="audit_samples.id", index=True)
    case_key: str
    case_number: str
    rule: str
    version: int
    outcome: str | None = Field(default=None, description="None: a judgement item not answered yet")
    automatic: bool = Field(description="filled in by the checklist engine, not by a person")
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    refusion: bool = Field(default=False, description="the error has refusion significance")
    follow_up_due: date | None = Field(default=None, description="a failed item is to be corrected by then")
    closed_on: date | None = Field(default=None, description="the day the error was found corrected")
    recorded_by: str
    recorded_at: datetime
