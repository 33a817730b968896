"""Periods a report covers, and the month arithmetic services share.

A :class:`Period` is a closed date interval with a label, read from what a leader types
(``2024``, ``2024H1``, ``2024Q3``, ``2024-03`` or ``2023-07-01..2024-06-30``).
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from bridge.errors import ConfigError
from bridge.law.calendar import add_months


class Period(BaseModel):
    """A closed date interval ``[start, end]`` with a label; build one with :meth:`parse`."""

    model_config = ConfigDict(frozen=True)

    label: str
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"period {self.label} ends before it starts")
        return self

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read ``2024``, ``2024H1``, ``2024Q3``, ``2024-03`` or ``2023-07-01..2024-06-30``.

        Raises :class:`bridge.errors.ConfigError` naming the accepted forms.
        """
        spec = text.strip()
        try:
            if match := re.fullmatch(r"(\d{4})", spec):
                year = int(match[1])
                return cls(label=spec, start=date(year, 1, 1), end=date(year, 12, 31))
            if match := re.fullmatch(r"(\d{4})[Hh]([12])", spec):
                year, half = int(match[1]), int(match[2])
                return cls(label=spec.upper(), start=date(year, 6 * half - 5, 1), end=month_end(year, 6 * half))
            if match := re.fullmatch(r"(\d{4})[Qq]([1-4])", spec):
                year, quarter = int(match[1]), int(match[2])
                return cls(label=spec.upper(), start=date(year, 3 * quarter - 2, 1), end=month_end(year, 3 * quarter))
            if match := re.fullmatch(r"(\d{4})-(\d{2})", spec):
                year, month = int(match[1]), int(match[2])
                return cls(label=spec, start=date(year, month, 1), end=month_end(year, month))
            if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", spec):
                start, end = date.fromisoformat(match[1]), date.fromisoformat(match[2])
                if end < start:
                    raise ConfigError(f"period {spec!r} ends before it starts: write the earlier day first")
                return cls(label=spec, start=start, end=end)
        except ValueError as exc:
            raise ConfigError(f"period {spec!r}: {exc}") from None
        raise ConfigError(
            f"period {spec!r}: use a year (2024), a half (2024H1), a quarter (2024Q3), "
            "a month (2024-03) or a range (2023-07-01..2024-06-30)"
        )


def month_end(year: int, month: int) -> date:
    """The last day of a month."""
    return date(year, month, calendar.monthrange(year, month)[1])


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to the month's end."""
    return add_months(day, -months)


__all__ = ["Period", "month_end", "months_before"]
