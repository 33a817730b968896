"""Deadlines in calendar months, and the act in force on a day.

A deadline of *n months* after a day falls on the same day number *n* months later; when that
month is shorter, it falls on the month's last day (a notification on 2023-10-31 has its
4-month deadline on 2024-02-29, in a leap year). A milestone on the deadline day is in time.
"""

from __future__ import annotations

import calendar
from datetime import date

from bridge.model.records import Act

BARNETS_LOV = date(2024, 1, 1)
"""Barnets lov (lov nr. 721 af 13/06/2023) took effect on 2024-01-01; Serviceloven's child rules applied until then."""


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (earlier when negative), clamped to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def act_in_force(day: date) -> Act:
    """Serviceloven until 2023-12-31, Barnets lov from 2024-01-01."""
    return Act.BL if day >= BARNETS_LOV else Act.SEL
