"""Danish number and date formats, from one place: CLDR's ``da_DK`` through Babel.

Every format that writes text for a person (HTML, charts, the terminal table, the Danish
CSV dialect, XLSX number formats) formats numbers and dates here, so a report never mixes
``16,5`` with ``16.5 %``. Machine formats (JSON, ``--csv-dialect machine``) keep ISO 8601 and
the decimal point and do not use this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

LOCALE = Locale.parse("da_DK")
PERCENT = "\u00a0%"
"""A no-break space before the per cent sign, as Danish typesetting wants it."""


def number(value: float, digits: int | None = None) -> str:
    """``1.234,5``; with ``digits``, exactly that many decimals (``16,50``)."""
    if digits is None:
        return format_decimal(value, locale=LOCALE, decimal_quantization=False)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def percent(value: float, digits: int = 1) -> str:
    """A value already in per cent: ``16,5 %``."""
    return number(value, digits) + PERCENT


def signed(value: float, digits: int = 2) -> str:
    """A change with its sign always shown: ``+0,50``, ``-1,25``, ``0,00``."""
    text = number(value, digits)
    return text if text.startswith("-") or round(value, digits) == 0 else "+" + text


def day(value: date) -> str:
    """``29.02.2024``."""
    return format_date(value, "dd.MM.y", locale=LOCALE)


def month(value: date) -> str:
    """``feb. 2024``: a month on a date axis."""
    return format_date(value, "MMM y", locale=LOCALE)


def timestamp(value: datetime) -> str:
    """``29.02.2024 13.05``."""
    return format_datetime(value, "dd.MM.y HH.mm", locale=LOCALE)


def period(first: date, last: date) -> str:
    """``01.01.2024–31.12.2024``."""
    return f"{day(first)}–{day(last)}"


def decimals(values: Iterable[Any], most: int = 3) -> int | None:
    """How many decimals a column of numbers needs so all its values line up (None: no fractions)."""
    found = [
        len(f"{v:.{most}f}".rstrip("0").partition(".")[2]) for v in values if isinstance(v, float) and not math.isnan(v)
    ]
    return max(found) if found else None


def cell(value: Any, digits: int | None = None) -> str:
    """A table cell as a Danish reader expects it; None and text as they are, booleans as ja/nej.

    ``digits`` gives a column's numbers one number of decimals (see :func:`decimals`).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, int | float):
        return number(value, digits)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return day(value)
    return str(value)
