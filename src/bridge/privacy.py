"""Person data: CPR parsing, pseudonymisation and log redaction.

A CPR number is read and checked at the adapter boundary and replaced there by a
**person key**, a keyed HMAC-SHA256 of the number with the installation's secret.
Guardians' CPR numbers become a **family key**, so siblings can be kept together.
Nothing past the boundary needs the CPR itself; it is kept only when the
installation opts in with ``store_cpr``.

No message raised or logged from here contains the number it is about.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import SecretStr

Sex = Literal["F", "M"]

UNKNOWN_CPR = "0000000000"
"""Sources write ``000000-0000`` for a guardian they do not know; it is not an error."""

# ASCII digits only: Unicode digits (e.g. full-width) would parse, but give the same person a
# second key. Masking below stays wide on purpose, since over-masking a log line costs nothing.
_CPR_SHAPE = re.compile(r"^([0-9]{6})-?([0-9]{4})$")
_CPR_IN_TEXT = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


class InvalidCPR(ValueError):
    """A CPR number that cannot be right. The message never repeats the number."""


def _century(year2: int, seventh: int) -> int:
    """The century of a CPR birth year from the 7th digit (CPR-kontoret's table)."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if year2 <= 36 else 1900
    return 2000 if year2 <= 57 else 1800


@dataclass(frozen=True, slots=True)
class CPR:
    """A validated CPR number. ``str()`` and ``repr()`` never show the digits."""

    digits: str
    birth_date: date
    sex: Sex

    def __repr__(self) -> str:
        return f"CPR(birth_date={self.birth_date.isoformat()}, sex={self.sex!r})"

    __str__ = __repr__


def parse_cpr(text: str) -> CPR:
    """Validate a CPR number written ``DDMMYY-SSSS`` or as 10 digits.

    The century comes from the 7th digit. Modulus 11 is deliberately not checked:
    numbers issued since 2007 need not satisfy it.

    >>> parse_cpr("010490-9989").birth_date
    datetime.date(1990, 4, 1)
    """
    match = _CPR_SHAPE.match(text.strip())
    if match is None:
        raise InvalidCPR("CPR number is malformed (expected DDMMYY-SSSS or 10 digits)")
    digits = match.group(1) + match.group(2)
    if digits == UNKNOWN_CPR:
        raise InvalidCPR("CPR number is the placeholder for an unknown person")
    day, month, year2 = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    year = _century(year2, int(digits[6])) + year2
    try:
        born = date(year, month, day)
    except ValueError:
        raise InvalidCPR("CPR number holds an impossible birth date") from None
    sex: Sex = "M" if int(digits[9]) % 2 else "F"
    return CPR(digits=digits, birth_date=born, sex=sex)


def is_unknown_cpr(text: str | None) -> bool:
    """True for an absent guardian: empty or blank, or the ``000000-0000`` placeholder."""
    written = (text or "").strip()
    return not written or written.replace("-", "") == UNKNOWN_CPR


@dataclass(frozen=True, slots=True)
class Person:
    """What the core keeps of a person: the key, and the CPR only when opted in."""

    key: str
    birth_date: date
    sex: Sex
    cpr: str | None = field(default=None, repr=False)


class Pseudonymizer:
    """Turns CPR numbers into stable keys with the installation's secret.

    The same secret must be used for every source of one municipality, so that a child
    seen in two systems gets one key.

    >>> p = Pseudonymizer(SecretStr("s3cret"))
    >>> p.person("0104909989").key == p.person("010490-9989").key
    True
    """

    KEY_LENGTH = 32

    def __init__(self, secret: SecretStr, *, store_cpr: bool = False) -> None:
        raw = secret.get_secret_value().encode()
        if len(raw) < 8:
            raise ValueError("the person-key secret must be at least 8 characters")
        self._secret = raw
        self.store_cpr = store_cpr

    def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[: self.KEY_LENGTH]

    def key_for(self, cpr: CPR) -> str:
        return self._mac("person", cpr.digits)

    def person(self, text: str) -> Person:
        """Validate ``text`` as a CPR and return the person's key and derived facts."""
        cpr = parse_cpr(text)
        return Person(
            key=self.key_for(cpr),
            birth_date=cpr.birth_date,
            sex=cpr.sex,
            cpr=cpr.digits if self.store_cpr else None,
        )

    def family_key(self, guardians: Iterable[str | None]) -> str | None:
        """A key shared by children with the same known guardians, or None if none is known.

        Unknown guardians (empty or ``000000-0000``) are left out; a malformed one raises
        :class:`InvalidCPR`.
        """
        known = sorted({parse_cpr(g).digits for g in guardians if g is not None and not is_unknown_cpr(g)})
        if not known:
            return None
        return self._mac("family", "|".join(known))


def mask_cpr(text: str) -> str:
    """Replace anything shaped like a CPR number in ``text``."""
    return _CPR_IN_TEXT.sub("######-####", text)


def looks_like_cpr(text: str) -> bool:
    """Whether ``text`` as a whole is written like a CPR number (DDMMYY-SSSS or 10 digits).

    For arguments where a CPR does not belong (a case number): a longer text that merely holds a
    run of ten digits (a person key's hex, a case number) is not one, unlike for :func:`mask_cpr`.
    """
    return _CPR_SHAPE.match(text.strip()) is not None


REDACTED = "***"
# The password in a URL's userinfo (scheme://user:password@host), also in a URL too broken to parse.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@'\"]*):[^\s'\"/?#]*@")
# A secret given as name=value: a URL's query parameter (client_secret, password, access_token,
# api_key, …) or the same words in a form body or a connection string that ended up in a message.
_SECRET_PARAMETER = re.compile(
    r"(?i)(\b[\w.\-]*(?:secret|passw|pwd|token|key|signature|credential|authorization)[\w.\-]*=)[^&\s'\";,)]+"
)


def redact_secrets(text: str) -> str:
    """Hide the secrets a URL or a message can carry: a userinfo password and secret-named parameters.

    >>> redact_secrets("http://bridge:pw@idp.example/token?client_secret=s3&realm=sbsip")
    'http://bridge:***@idp.example/token?client_secret=***&realm=sbsip'
    """
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text))


def redact(text: str) -> str:
    """What every message bridge prints, logs or stores goes through: CPR numbers and secrets hidden."""
    return mask_cpr(redact_secrets(text))


class CprRedactingFilter(logging.Filter):
    """A handler filter that masks CPR-shaped numbers and secrets (:func:`redact`) in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A log call whose arguments do not fit its format must not crash the caller, and
            # logging's own error report would print the arguments unmasked: keep them, masked.
            message = f"{record.msg} (unformattable log arguments: {record.args!r})"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
