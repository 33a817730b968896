"""Tables of accepted handover plans: a dated decision and the moves it decided.

A decision is stored when a leader accepts a plan (``bridge handover … --accept``); the next
syncs bring the caseworker changes made in the case system, which are checked against it
(:func:`bridge.services.handover.progress`). Nothing here is changed after it is stored.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel


class HandoverDecision(SQLModel, table=True):
    """An accepted handover: whose cases, from which day, decided by whom and when."""

    __tablename__ = "handover_decisions"

    id: int | None = Field(default=None, primary_key=True)
    caseworker_id: int = Field(foreign_key="caseworkers.id", description="the caseworker who leaves")
    caseworker_name: str
    effective_on: date = Field(description="the day the cases move")
    decided_at: datetime
    decided_by: str


class HandoverMove(SQLModel, table=True):
    """One case of an accepted handover and the caseworker it goes to."""

    __tablename__ = "handover_moves"

    decision_id: int = Field(
        sa_column=Column(Integer, ForeignKey("handover_decisions.id", ondelete="CASCADE"), primary_key=True)
    )
    case_id: int = Field(sa_column=Column(Integer, ForeignKey("cases.id"), primary_key=True))
    case_number: str
    receiver_id: int = Field(foreign_key="caseworkers.id")
    receiver_name: str
    weight: float
