"""The CSC Social nightly extract (reference format v1): names, code lists, value rules, CSV reading.

Everything the vendor's specification (``tests/reference/FORMAT.md``) fixes is here, so a
correction of the format is a change to this module: the set and file names, the columns,
the code lists and how each value is written. The adapter decides what a set means; this
module only says how it is spelt.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from zoneinfo import ZoneInfo

from bridge.model.records import EventKind, TargetGroup, Theme

LOCAL = ZoneInfo("Europe/Copenhagen")
SET_NAME = re.compile(r"^extract-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$")
MANIFEST = "manifest.json"

CASES = "cases.csv"
MEASURES = "measures.csv"
ASSESSMENTS = "assessments.csv"
EVENTS = "events.csv"
DELETED = "deleted.csv"
CHILD_FILES = (MEASURES, ASSESSMENTS, EVENTS)
DATA_FILES = (CASES, *CHILD_FILES)
"""The files every set holds; a delta set holds ``deleted.csv`` as well."""

COLUMNS: dict[str, tuple[str, ...]] = {
    CASES: (
        "SagsID",
        "CPR",
        "Kommunekode",
        "Maalgruppe",
        "Sagsbehandler",
        "SagsbehandlerID",
        "Oprettet",
        "Lukket",
        "Status",
        "Familiesag",
        "ForaeldremyndighedCPR1",
        "ForaeldremyndighedCPR2",
        "SenestAendret",
    ),
    MEASURES: (
        "ForanstaltningsID",
        "SagsID",
        "Lov",
        "Paragraf",
        "Stk",
        "Nr",
        "Start",
        "Slut",
        "Bevilget",
        "Kontering",
        "Leverandoer",
        "Beloeb",
    ),
    ASSESSMENTS: ("MaalingsID", "SagsID", "Tema", "Score", "Dato", "Maaler"),
    EVENTS: ("HaendelsesID", "SagsID", "Type", "Dato", "Note"),
    DELETED: ("SagsID",),
}
"""Every column each file must have (required and optional values alike), in the vendor's order."""

KEY = {CASES: "SagsID", MEASURES: "ForanstaltningsID", ASSESSMENTS: "MaalingsID", EVENTS: "HaendelsesID"}
KEY[DELETED] = "SagsID"

REQUIRED: dict[str, frozenset[str]] = {
    CASES: frozenset(
        {"SagsID", "CPR", "Kommunekode", "Maalgruppe", "Oprettet", "Status", "Familiesag", "SenestAendret"}
    ),
    MEASURES: frozenset({"ForanstaltningsID", "SagsID", "Lov", "Paragraf", "Start"}),
    ASSESSMENTS: frozenset({"MaalingsID", "SagsID", "Tema", "Dato"}),
    EVENTS: frozenset({"HaendelsesID", "SagsID", "Type", "Dato"}),
    DELETED: frozenset({"SagsID"}),
}
"""The columns whose value may not be empty (R in the specification)."""

NOTE = "Note"
"""The one column kept verbatim (not trimmed); line breaks inside it become LF."""

TARGET_GROUPS = {
    "Udsatte børn og unge": "udsatte",
    "Børn med funktionsnedsættelse": "handicap",
    "Ungdomskriminalitet": "ungdomskriminalitet",
}
"""Maalgruppe → a key of the adapter's ``target_groups`` setting."""
DEFAULT_TARGET_GROUPS = {
    "udsatte": TargetGroup.udsatte,
    "handicap": TargetGroup.handicap,
    "ungdomskriminalitet": TargetGroup.udsatte,
}
OPEN = "Åben"
CLOSED_STATUSES = frozenset({"Afsluttet", "Henlagt"})
FAMILY_CASE = {"J": True, "N": False}
ACTS = frozenset({"BL", "SEL"})
PARAGRAPH = re.compile(r"^\d{1,3}[a-z]?$")
INTEGER = re.compile(r"^\d+$")

THEMES: dict[str, Theme | None] = {
    "UDVIKLING": Theme.udvikling_adfaerd,
    "FAMILIE": Theme.familieforhold,
    "SKOLE": Theme.skole_beskaeftigelse,
    "SUNDHED": Theme.sundhed,
    "FRITID": Theme.fritid_venskaber,
    "ANDET": None,
}
"""Tema → core theme. ``ANDET`` is a valid code with no core theme: counted, reported, not stored."""

EVENT_TYPES: dict[str, EventKind | None] = {
    "Underretning": EventKind.notification,
    "UnderretningVurderet": EventKind.notification_assessed,
    "UndersoegelseStart": EventKind.investigation_started,
    "UndersoegelseSlut": EventKind.investigation_completed,
    "Handleplan": EventKind.plan_made,
    "Opfoelgning": EventKind.follow_up,
    "Boernesamtale": EventKind.child_conversation,
    "Samtykke": EventKind.consent,
    "Afgoerelse": EventKind.decision,
    "Journalnotat": EventKind.journal_note,
}
"""Type → core event kind; every type the format lists has one (dates only: the extract gives no time of day)."""

_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
_TIMESTAMP = re.compile(r"^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})$")
_AMOUNT = re.compile(r"^-?\d+(,\d{1,2})?$")


def parse_date(text: str) -> date:
    """``dd-mm-yyyy``; raises ``ValueError`` for another shape or a day not on the calendar."""
    match = _DATE.match(text)
    if match is None:
        raise ValueError("is not a date dd-mm-yyyy")
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError("is not a day on the calendar") from None


def parse_timestamp(text: str) -> datetime:
    """``dd-mm-yyyy HH:MM:SS`` in Europe/Copenhagen, as UTC.

    An autumn time that happens twice is the first (summer time, +02:00); a spring time that
    does not exist is read with the offset before the change (+01:00): ``zoneinfo`` with ``fold=0``.
    """
    match = _TIMESTAMP.match(text)
    if match is None:
        raise ValueError("is not a timestamp dd-mm-yyyy HH:MM:SS")
    day, month, year, hour, minute, second = (int(g) for g in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=LOCAL)
    except ValueError:
        raise ValueError("is not a moment on the calendar") from None
    return local.astimezone(UTC)


def parse_amount(text: str) -> Decimal:
    """A decimal comma, an optional ``-``, at most 2 decimals, no thousands separator: ``12500,50``."""
    if _AMOUNT.match(text) is None:
        raise ValueError("is not an amount like 12500,50")
    return Decimal(text.replace(",", "."))


def core_score(csc: int) -> int:
    """CSC counts 1 = alvorlig bekymring … 5 = ingen bekymring; Trivselslinealen the other way."""
    return 6 - csc


def set_moment(name: str) -> datetime | None:
    """When a set's extraction started (its name, local time), or ``None`` for a name that is no set."""
    match = SET_NAME.match(name)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL)
    except ValueError:
        return None


def set_name(moment: datetime) -> str:
    """The folder name of a set extracted at ``moment`` (aware)."""
    return f"extract-{moment.astimezone(LOCAL):%Y%m%d-%H%M%S}"


# --- reading one CSV file ---------------------------------------------------------------------------

UTF8_BOM = codecs.BOM_UTF8
_UNDECODABLE = "bridge-csc-undecodable"
_decoding = threading.local()


def _note_undecodable(error: UnicodeError) -> tuple[str, int]:
    """Remember the first bytes a file's codec could not decode, and go on reading (to hash and count)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    scan: FileScan | None = getattr(_decoding, "scan", None)
    if scan is not None and scan.undecodable is None:
        scan.undecodable = error.object[error.start : error.end].hex(" ")
    return "\ufffd", error.end


codecs.register_error(_UNDECODABLE, _note_undecodable)


class _Hashing(io.RawIOBase):
    """A raw reader that hashes the bytes as they pass, so a file is read once."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


@dataclass
class FileScan:
    """What reading one file found out: its digest, its records, and what is wrong with its form."""

    name: str
    encoding: str = "Windows-1252"
    sha256: str = ""
    rows: int = 0
    undecodable: str | None = None
    """The first bytes that did not decode (hex), if any."""
    header: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


class CsvFile:
    """One extract CSV, read as a stream: header, then records as lists of values.

    Use it as a context manager and iterate :meth:`records`; afterwards :attr:`scan` holds the
    SHA-256 of every byte of the file (BOM included), the number of records, and the first
    bytes that would not decode. Encoding: UTF-8 when the file starts with the BOM, which is
    stripped; Windows-1252 otherwise. Empty lines are not records.
    """

    FIELD_LIMIT = 16 * 1024 * 1024

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scan = FileScan(path.name)
        self._stack: list[io.IOBase] = []

    def __enter__(self) -> CsvFile:
        raw = self.path.open("rb")
        self._stack.append(raw)
        utf8 = raw.read(len(UTF8_BOM)) == UTF8_BOM
        raw.seek(0)
        self._hashing = _Hashing(raw)
        self.scan.encoding = "UTF-8" if utf8 else "Windows-1252"
        self._text = io.TextIOWrapper(
            io.BufferedReader(self._hashing, buffer_size=256 * 1024),
            encoding="utf-8-sig" if utf8 else "cp1252",
            errors=_UNDECODABLE,
            newline="",
        )
        self._stack.append(self._text)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for stream in reversed(self._stack):
            stream.close()

    def records(self) -> Iterator[list[str]]:
        """The header (stored in ``scan.header``) is read first; then each record, as delivered."""
        csv.field_size_limit(self.FIELD_LIMIT)
        _decoding.scan = self.scan
        try:
            reader = csv.reader(self._text, delimiter=";", quotechar='"', doublequote=True, strict=False)
            header_read = False
            for row in reader:
                if not row:
                    continue
                if not header_read:
                    header_read = True
                    self.scan.header = [name.strip(" ") for name in row]
                    self.scan.duplicated = sorted({n for n in self.scan.header if self.scan.header.count(n) > 1})
                    continue
                self.scan.rows += 1
                yield row
            self.scan.sha256 = self._hashing.sha256.hexdigest()
        finally:
            _decoding.scan = None


def clean(column: str, value: str) -> str:
    """A value as the specification reads it: trimmed of spaces, except ``Note`` (line breaks → LF)."""
    if column == NOTE:
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value.strip(" ")
