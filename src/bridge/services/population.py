"""Which cases a service counts: the one definition of a live case, and of a case open on a day.

A case is *live* until a ``--full`` sync finds that its source no longer has it and marks it
deleted (it is never removed). A case is *open on a day* when it is live, was opened on or
before that day, and was not closed by then (closed on the day means closed).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, or_

from bridge.model.tables import CASES


def live() -> ColumnElement[bool]:
    """The cases not marked deleted."""
    return CASES.c.deleted_at.is_(None)


def open_on(day: date) -> ColumnElement[bool]:
    """The live cases open on ``day``: opened on or before it, not closed by then."""
    c = CASES.c
    return and_(live(), c.opened <= day, or_(c.closed.is_(None), c.closed > day))


__all__ = ["live", "open_on"]
