"""Finding cases: by status, caseworker, municipality, case number, or a child's CPR number.

A person never needs a person key to find a child: a case is found by its case number, or
by the child's CPR number, which is turned into the person key with the installation's
secret on this machine and never stored, printed or logged. What is shown of a child is
the case number and the child's age — never the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select

from bridge.model.tables import CASES, CASEWORKERS, MUNICIPALITIES
from bridge.privacy import Pseudonymizer
from bridge.store import Store


@dataclass(frozen=True)
class CaseSummary:
    """One child's case as a person looks it up; ``child_key`` is for code, never for display."""

    id: int
    source: str
    case_number: str
    municipality: str
    municipality_name: str
    caseworker: str | None
    child_age: int
    status: str
    opened: date
    closed: date | None
    child_key: str

    def label(self) -> str:
        """How a report names the child: ``sag 27.24.00-G01-5-19, 9 år``."""
        return f"sag {self.case_number}, {self.child_age} år"


def find_cases(
    store: Store,
    *,
    open_only: bool = False,
    caseworker: str | None = None,
    municipality: str | None = None,
    case_number: str | None = None,
    child_key: str | None = None,
    on: date | None = None,
    limit: int | None = None,
) -> list[CaseSummary]:
    """Live cases, newest opened first. ``caseworker`` matches part of the name, any case;
    ``municipality`` a kommunekode or part of its name; ages are whole years on ``on`` (today).
    """
    c, w, m = CASES.c, CASEWORKERS.c, MUNICIPALITIES.c
    query = (
        select(
            c.id, c.source, c.case_number, c.municipality, m.name, w.name, c.child_birth_date, c.status, c.opened,
            c.closed, c.child_key,
        )
        .join_from(CASES, MUNICIPALITIES, c.municipality == m.code)
        .outerjoin(CASEWORKERS, c.caseworker_id == w.id)
        .where(c.deleted_at.is_(None))
        .order_by(c.opened.desc(), c.case_number, c.id)
    )
    if open_only:
        query = query.where(c.status == "open")
    if caseworker:
        query = query.where(func.lower(w.name).contains(caseworker.lower(), autoescape=True))
    if municipality:
        query = query.where(or_(c.municipality == municipality, func.lower(m.name).contains(municipality.lower())))
    if case_number:
        query = query.where(or_(c.case_number == case_number, c.family_case_number == case_number))
    if child_key:
        query = query.where(c.child_key == child_key)
    if limit:
        query = query.limit(limit)
    today = on or date.today()
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        CaseSummary(
            id=row[0], source=row[1], case_number=row[2], municipality=row[3], municipality_name=row[4],
            caseworker=row[5], child_age=age(row[6], today), status=row[7], opened=row[8], closed=row[9],
            child_key=row[10],
        )
        for row in rows
    ]


def age(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on`` (born 29 February: a year older on 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def child_key_for_cpr(persons: Pseudonymizer, cpr: str) -> str:
    """The person key of ``cpr``; raises ``InvalidCPR`` (whose message holds no digits) when it is none."""
    return persons.person(cpr).key

