"""The CSC Social adapter: nightly extract sets from a drop folder (reference format v1).

The vendor uploads sets into a folder over SFTP (``tests/reference/FORMAT.md``). Each run
looks at every set in name order, checks it in the specification's order (manifest, ledger,
files, digests and row counts, encoding and columns), and applies each valid one as **one
transaction** with its place in the ledger: the batches of a set ``continue`` each other
and only the last carries the cursor, so the sync engine commits the set's rows, its
deletions and the ledger together, or nothing. The ledger of applied sets (name, full or
delta, the manifest's ``files`` map) *is* the cursor. From an empty ledger (a first run,
``--full``) reading begins at the newest full set that applies, and it and the deltas right
after it are one transaction that writes each case once, from the newest of them.

Files are streamed: each CSV is read once through the ``csv`` module over a decoding stream
that hashes the bytes as they pass, and its rows are staged in a temporary SQLite file (never
in the drop folder), from which case images are put together. Memory does not grow with the
size of a set. Nothing in the drop folder is ever written, moved or deleted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import sqlite3
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator

from bridge.adapter import Adapter, AdapterConfig, Batch, Kept, Rejection
from bridge.errors import AdapterError
from bridge.hookspecs import hookimpl
from bridge.model.records import CaseRecord, TargetGroup, rejection_reason
from bridge_csc_social import rows, wire
from bridge_csc_social.rows import RowProblem

log = logging.getLogger("bridge.csc_social")

APPLIED = "applied"
SKIPPED_IN_PROGRESS = "skipped_in_progress"
SKIPPED_ALREADY_APPLIED = "skipped_already_applied"
PENDING = "pending"
SUPERSEDED = "superseded"
REJECTED = "rejected"

BAD_MANIFEST = "bad_manifest"
CONFLICT = "conflict"
MISSING_FILE = "missing_file"
MANIFEST_MISMATCH = "manifest_mismatch"
ENCODING = "encoding"
MISSING_COLUMN = "missing_column"
OUT_OF_ORDER = "out_of_order"
NO_BASELINE = "no_baseline"

LEDGER_FORMAT = "csc-ledger-1"
DETAILED = 62
"""How many of the most recent applied sets the ledger keeps with their whole ``files`` map (two months)."""
MAX_MANIFEST_BYTES = 1024 * 1024
_LISTED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.csv$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CscSocialConfig(AdapterConfig):
    drop: Path
    """The drop folder the vendor uploads extract sets into (read only)."""
    kle: str = Field(default="27.24.00", pattern=r"^\d{2}\.\d{2}\.\d{2}$")
    """The KLE emne given to every case: the extract carries none (modelled)."""
    target_groups: dict[str, TargetGroup] = Field(default_factory=lambda: dict(wire.DEFAULT_TARGET_GROUPS))
    """Maalgruppe → target group, keyed ``udsatte``, ``handicap``, ``ungdomskriminalitet``."""
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    """Case images per batch; a set is one transaction however many batches it takes."""

    @field_validator("target_groups")
    @classmethod
    def _every_group(cls, value: dict[str, TargetGroup]) -> dict[str, TargetGroup]:
        missing = sorted(set(wire.DEFAULT_TARGET_GROUPS) - set(value))
        unknown = sorted(set(value) - set(wire.DEFAULT_TARGET_GROUPS))
        if missing or unknown:
            raise ValueError(f"needs exactly the keys {', '.join(sorted(wire.DEFAULT_TARGET_GROUPS))}")
        return value


# --- the ledger (the cursor) ------------------------------------------------------------------------

Files = dict[str, dict[str, Any]]


def files_digest(files: Files) -> str:
    """A digest of a manifest's ``files`` map: equal maps, equal digests."""
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class AppliedSet:
    name: str
    full: bool
    files: Files | None
    """The manifest's ``files`` map; ``None`` for an older set the ledger keeps by digest only."""
    digest: str

    @classmethod
    def of(cls, name: str, full: bool, files: Files) -> AppliedSet:
        return cls(name, full, files, files_digest(files))


@dataclass
class Ledger:
    """The sets applied so far, in name order; encoded as the source's cursor.

    The most recent :data:`DETAILED` sets keep their whole ``files`` map, so a conflicting
    re-delivery is told file by file; older ones keep a digest of it, which is enough to know a
    re-delivery again and keeps the cursor (stored with every run) small over the years.
    """

    applied: list[AppliedSet] = field(default_factory=list)

    @classmethod
    def decode(cls, cursor: str | None) -> Ledger:
        if cursor is None:
            return cls()
        try:
            data = json.loads(cursor)
            if data.get("format") != LEDGER_FORMAT:
                raise ValueError("not a CSC Social ledger")
            applied = []
            for name, full, files in data["applied"]:
                if isinstance(files, str):
                    applied.append(AppliedSet(name, bool(full), None, files))
                else:
                    applied.append(AppliedSet.of(name, bool(full), dict(files)))
            return cls(applied)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AdapterError(f"the stored cursor is not a CSC Social ledger ({exc}); sync with --full") from None

    def encode(self) -> str:
        older = len(self.applied) - DETAILED
        applied = [
            [s.name, s.full, s.digest if i < older or s.files is None else s.files] for i, s in enumerate(self.applied)
        ]
        return json.dumps({"format": LEDGER_FORMAT, "applied": applied}, sort_keys=True, separators=(",", ":"))

    def find(self, name: str) -> AppliedSet | None:
        return next((s for s in self.applied if s.name == name), None)

    @property
    def last(self) -> str | None:
        return max((s.name for s in self.applied), default=None)

    @property
    def last_full(self) -> str | None:
        return max((s.name for s in self.applied if s.full), default=None)

    def with_set(self, applied: AppliedSet) -> Ledger:
        return Ledger(sorted([*self.applied, applied], key=lambda s: s.name))


# --- what a run found --------------------------------------------------------------------------------


@dataclass
class SetStatus:
    """One line of the run report: a set, its status, and what the operator needs to know."""

    name: str
    status: str
    detail: str = ""
    klass: str | None = None
    """The rejection class, for ``rejected``."""
    counts: Counter[str] = field(default_factory=Counter)
    """For ``applied``: case images, deletions, quarantined rows, and rows kept out (``ANDET`` …)."""

    @property
    def label(self) -> str:
        return f"{REJECTED}:{self.klass}" if self.status == REJECTED else self.status


class SetRejected(Exception):
    def __init__(self, klass: str, message: str) -> None:
        super().__init__(message)
        self.klass = klass


@dataclass
class Manifest:
    extract: str
    created: datetime
    full: bool
    files: Files


def read_manifest(folder: Path) -> Manifest:
    """The set's manifest, checked (``bad_manifest`` otherwise)."""
    path = folder / wire.MANIFEST
    name = folder.name

    def bad(what: str) -> SetRejected:
        return SetRejected(BAD_MANIFEST, f"{name}/{wire.MANIFEST}: {what}")

    if not stat.S_ISREG(path.lstat().st_mode):
        raise bad("is not a regular file")
    with path.open("rb") as handle:
        raw = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise bad(f"is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad("is not a JSON object")
    for key, kind in (("extract", str), ("created", str), ("full", bool), ("files", dict)):
        if key not in data:
            raise bad(f"key {key!r} is missing")
        if not isinstance(data[key], kind):
            raise bad(f"key {key!r} is not a {kind.__name__}")
    if data["extract"] != name:
        raise bad(f"'extract' is {data['extract']!r}, not the folder's name")
    try:
        created = datetime.fromisoformat(data["created"])
    except ValueError:
        raise bad(f"'created' {data['created']!r} is not an ISO 8601 time") from None
    if created.tzinfo is None:
        raise bad(f"'created' {data['created']!r} has no UTC offset")
    files: Files = {}
    for listed, entry in data["files"].items():
        if not _LISTED_NAME.match(listed):
            raise bad(f"'files' lists {listed!r}, which is not the plain name of a .csv file")
        if not isinstance(entry, dict):
            raise bad(f"'files.{listed}' is not an object")
        count, digest = entry.get("rows"), entry.get("sha256")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise bad(f"'files.{listed}.rows' is not a whole number ≥ 0")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise bad(f"'files.{listed}.sha256' is not a lowercase hex SHA-256")
        files[listed] = {"rows": count, "sha256": digest}
    return Manifest(name, created, data["full"], files)


def _differences(old: Files, new: Files) -> str:
    changed = []
    for listed in sorted(old.keys() | new.keys()):
        if listed not in new:
            changed.append(f"{listed} no longer listed")
        elif listed not in old:
            changed.append(f"{listed} newly listed")
        elif old[listed] != new[listed]:
            parts = [
                f"{key} {old[listed][key]} → {new[listed][key]}"
                for key in ("rows", "sha256")
                if old[listed][key] != new[listed][key]
            ]
            changed.append(f"{listed}: {', '.join(parts)}")
    return "; ".join(changed)


# --- staging a set ------------------------------------------------------------------------------------


class _Stage:
    """A set's rows in a temporary SQLite file, so case images can be put together in bounded memory."""

    def __init__(self, directory: Path) -> None:
        self.db = sqlite3.connect(directory / "stage.db", isolation_level=None)
        self.db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8000;"
            "CREATE TABLE rows (file TEXT, seq INTEGER, sags TEXT, rid TEXT, raw TEXT, width_ok INTEGER);"
        )
        self.headers: dict[str, list[str]] = {}

    def close(self) -> None:
        self.db.close()

    def add(self, file: str, batch: list[tuple[str, int, str, str, str, int]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", batch)
        self.db.execute("COMMIT")

    def index(self) -> None:
        self.db.executescript(
            "CREATE INDEX rows_by_case ON rows (file, sags, seq); CREATE INDEX rows_by_id ON rows (file, rid);"
        )

    def duplicated(self) -> set[tuple[str, str]]:
        query = "SELECT file, rid FROM rows WHERE rid != '' GROUP BY file, rid HAVING COUNT(*) > 1"
        return {(f, r) for f, r in self.db.execute(query)}

    def cases(self) -> set[str]:
        """The SagsIDs the set's cases.csv and deleted.csv name."""
        query = "SELECT DISTINCT sags FROM rows WHERE file IN (?, ?) AND sags != ''"
        return {sags for (sags,) in self.db.execute(query, (wire.CASES, wire.DELETED))}

    def rows_of(self, files: Sequence[str]) -> Iterator[tuple[str, int, str, str, bool]]:
        marks = ", ".join("?" for _ in files)
        query = f"SELECT file, seq, sags, raw, width_ok FROM rows WHERE file IN ({marks}) ORDER BY sags, file, seq"
        for file, seq, sags, raw, width_ok in self.db.execute(query, tuple(files)):
            yield file, seq, sags, raw, bool(width_ok)


@dataclass
class _Row:
    file: str
    seq: int
    sags: str
    raw: list[str]
    width_ok: bool
    values: dict[str, str]

    @property
    def rid(self) -> str:
        return self.values.get(wire.KEY[self.file], "")


class CscSocialAdapter(Adapter):
    name = "csc_social"
    description = "CSC Social nightly extract sets from a drop folder (reference format v1)"
    Config = CscSocialConfig
    config: CscSocialConfig
    simulator: ClassVar[str] = "bridge_csc_social.simulator:simulate"

    report: list[SetStatus]
    """The statuses of the last :meth:`fetch`, one per set, in name order."""

    def check(self) -> None:
        drop = self.config.drop
        if not drop.is_dir():
            raise AdapterError(f"the drop folder {drop} is not there (or is not a folder)")
        if not os.access(drop, os.R_OK | os.X_OK):
            raise AdapterError(f"the drop folder {drop} cannot be read by this user")
        sets = sum(1 for _ in self._folders())
        log.info("the drop folder %s holds %d extract sets", drop, sets)

    def parse_payload(self, payload: str) -> CaseRecord:
        """A row is part of a case image, so it is not replayed alone: a corrected delivery settles it."""
        raise NotImplementedError(
            "the csc_social adapter does not replay quarantined rows: a row belongs to its case image in a set; "
            "ask the vendor for a corrected delivery, and the next sync settles the case's entries"
        )

    def _folders(self) -> Iterator[Path]:
        """The set folders in name order; anything else is ignored, a symlink refused (and logged)."""
        try:
            entries = sorted(os.scandir(self.config.drop), key=lambda e: e.name)
        except OSError as exc:
            raise AdapterError(f"cannot read the drop folder {self.config.drop}: {exc.strerror}") from None
        for entry in entries:
            if wire.set_moment(entry.name) is None:
                continue
            if entry.is_symlink():
                log.warning("%s in the drop folder is a symbolic link; it is not read", entry.name)
                continue
            if not entry.is_dir(follow_symlinks=False):
                log.warning("%s in the drop folder is not a folder; it is not read", entry.name)
                continue
            yield Path(entry.path)

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        ledger = Ledger.decode(cursor)
        folders = list(self._folders())
        for start in self._starts(folders, ledger):
            first = start or 0
            self.report = [
                SetStatus(f.name, SUPERSEDED, f"{folders[first].name}, a later full set, is applied")
                for f in folders[:first]
            ]
            if (yield from self._sets(folders[first:], ledger, baseline=start is not None)):
                break
        self._tell()

    def _starts(self, folders: Sequence[Path], ledger: Ledger) -> list[int | None]:
        """Where to begin: with an empty ledger, at the newest full set that applies (``None``: the first set).

        A first run, or ``--full``, does not go through history a later full set supersedes
        (FORMAT.md §7). The full sets are tried newest first: one that is rejected is passed by
        for the one before it; without any, the sets are read from the first as usual.
        """
        if ledger.applied:
            return [None]
        fulls: list[int | None] = []
        for n, folder in enumerate(folders):
            if os.path.lexists(folder / wire.MANIFEST):
                try:
                    if read_manifest(folder).full:
                        fulls.append(n)
                except SetRejected:
                    continue  # reported where the sets are read
        return [*reversed(fulls), None]

    def _sets(self, folders: Sequence[Path], ledger: Ledger, *, baseline: bool) -> Generator[Batch, None, bool]:
        """Read ``folders`` in order; ``False`` (nothing yielded) when the ``baseline`` full set first is rejected."""
        if baseline:
            read = yield from self._baseline(folders, ledger)
            if read is None:
                return False
            consumed, ledger = read
            folders = folders[consumed:]
        held_by: SetStatus | None = None  # the earliest unapplied set that holds later deltas back
        for folder in folders:
            status = SetStatus(folder.name, "")
            self.report.append(status)
            try:
                manifest = self._admit(folder, ledger, status, held_by)
                if manifest is None:
                    if status.status == SKIPPED_IN_PROGRESS and held_by is None:
                        held_by = status
                    continue
                applied = AppliedSet.of(folder.name, manifest.full, manifest.files)
                after = ledger.with_set(applied)
                yield from self._apply(folder, manifest, after.encode(), status)
            except SetRejected as exc:
                status.status, status.klass, status.detail = REJECTED, exc.klass, str(exc)
                if ledger.find(folder.name) is None and held_by is None:
                    held_by = status
                continue
            ledger = after
            status.status = APPLIED
            if manifest.full:
                for earlier in self.report[:-1]:
                    if ledger.find(earlier.name) is None and earlier.status != SUPERSEDED:
                        earlier.status, earlier.klass = SUPERSEDED, None
                        earlier.detail = f"{folder.name}, a full set, was applied after it"
            held_by = None
        return True

    def _baseline(self, folders: Sequence[Path], ledger: Ledger) -> Generator[Batch, None, tuple[int, Ledger] | None]:
        """A read from an empty ledger: the full set ``folders[0]`` and the deltas that follow it, in one transaction.

        Each case is written once, from the newest set of them that holds or deletes it, so a
        ``--full`` re-sync of an unchanged drop changes nothing (applied one by one, the full
        set would set every case a delta changed back to its old image first). Returns how many
        sets were applied and the ledger after them; ``None``, having yielded nothing, when the
        full set is rejected. The first set that is not a delta that applies ends the group; the
        usual reading goes on from it.
        """
        with ExitStack() as stack:
            group: list[tuple[Manifest, _Stage, SetStatus]] = []
            for folder in folders:
                status = SetStatus(folder.name, "")
                try:
                    manifest = self._admit(folder, ledger, status, None)
                    if manifest is None or (group and manifest.full):
                        break
                    stage = _Stage(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bridge-csc-"))))
                    stack.callback(stage.close)
                    self._scan(folder, manifest, stage)
                except SetRejected:
                    if not group:
                        return None
                    break  # read again, and reported, where the usual reading goes on
                ledger = ledger.with_set(AppliedSet.of(folder.name, manifest.full, manifest.files))
                group.append((manifest, stage, status))
            later: set[str] = set()
            superseded: list[frozenset[str]] = []
            for _, stage, _ in reversed(group):
                superseded.insert(0, frozenset(later))
                later |= stage.cases()
            for n, ((manifest, stage, status), skip) in enumerate(zip(group, superseded, strict=True)):
                self.report.append(status)
                cursor = ledger.encode() if n == len(group) - 1 else None
                yield from _SetImages(self, status.name, manifest, stage, status).batches(cursor, True, skip)
                status.status = APPLIED
            return len(group), ledger

    def _admit(self, folder: Path, ledger: Ledger, status: SetStatus, held_by: SetStatus | None) -> Manifest | None:
        """Checks 1–3 and the ledger's order; the manifest of a set to read, or ``None`` (status set)."""
        name = folder.name
        if not os.path.lexists(folder / wire.MANIFEST):
            status.status, status.detail = SKIPPED_IN_PROGRESS, "no manifest.json yet: still being uploaded"
            return None
        manifest = read_manifest(folder)
        known = ledger.find(name)
        if known is not None:
            if known.digest == files_digest(manifest.files):
                status.status = SKIPPED_ALREADY_APPLIED
                return None
            differs = (
                _differences(known.files, manifest.files)
                if known.files is not None
                else f"its files map has the digest {files_digest(manifest.files)}, the applied one {known.digest}"
            )
            raise SetRejected(
                CONFLICT,
                f"{name}: was applied with another manifest; a different set under the same name is never "
                f"applied by itself ({differs})",
            )
        last_full, last = ledger.last_full, ledger.last
        if last_full is not None and name < last_full:
            status.status = SUPERSEDED
            status.detail = f"{last_full}, a later full set, is applied"
            return None
        if last is not None and name < last:
            raise SetRejected(OUT_OF_ORDER, f"{name}: arrived after {last}, which is applied; it sorts before it")
        if held_by is not None and not manifest.full:
            status.status = PENDING
            status.detail = f"waits for {held_by.name} ({held_by.label})"
            return None
        if last is None and not manifest.full:
            raise SetRejected(NO_BASELINE, f"{name}: a delta set, but no full set has been applied from this source")
        return manifest

    def _apply(self, folder: Path, manifest: Manifest, cursor: str, status: SetStatus) -> Iterator[Batch]:
        with tempfile.TemporaryDirectory(prefix="bridge-csc-") as scratch:
            stage = _Stage(Path(scratch))
            try:
                self._scan(folder, manifest, stage)
                yield from _SetImages(self, folder.name, manifest, stage, status).batches(cursor, manifest.full)
            finally:
                stage.close()

    def _scan(self, folder: Path, manifest: Manifest, stage: _Stage) -> None:
        """Checks 4–6, reading every listed file once; the rows of the data files are staged meanwhile."""
        name = folder.name
        required = [*wire.DATA_FILES, *([] if manifest.full else [wire.DELETED])]
        for listed in [*required, *sorted(manifest.files)]:
            if listed not in manifest.files:
                raise SetRejected(MISSING_FILE, f"{name}/{listed}: a required file is not listed in the manifest")
            path = folder / listed
            if not os.path.lexists(path):
                raise SetRejected(MISSING_FILE, f"{name}/{listed}: listed in the manifest but not in the folder")
            if not stat.S_ISREG(path.lstat().st_mode):
                raise SetRejected(MISSING_FILE, f"{name}/{listed}: is not a regular file (a link?); it is not read")
        order = [*required, *sorted(set(manifest.files) - set(required))]
        try:
            ordered = [_stage_file(folder / listed, stage) for listed in order]
        except OSError as exc:
            raise AdapterError(f"{name}/{Path(exc.filename or '').name}: cannot be read: {exc.strerror}") from None
        for scan in ordered:
            promised = manifest.files[scan.name]
            if scan.sha256 != promised["sha256"]:
                raise SetRejected(
                    MANIFEST_MISMATCH,
                    f"{name}/{scan.name}: sha256 is {scan.sha256}, the manifest says {promised['sha256']} "
                    f"({scan.rows} records read, the manifest's total is {promised['rows']}): "
                    "a truncated or partial upload?",
                )
            if scan.rows != promised["rows"]:
                raise SetRejected(
                    MANIFEST_MISMATCH,
                    f"{name}/{scan.name}: {scan.rows} records read, the manifest's total is {promised['rows']}",
                )
        for scan in ordered:
            if scan.undecodable is not None:
                raise SetRejected(
                    ENCODING, f"{name}/{scan.name}: bytes {scan.undecodable} will not decode as {scan.encoding}"
                )
            columns = wire.COLUMNS.get(scan.name)
            if columns is None:
                continue
            if scan.duplicated:
                raise SetRejected(MISSING_COLUMN, f"{name}/{scan.name}: column {scan.duplicated[0]!r} appears twice")
            missing = [c for c in columns if c not in scan.header]
            if missing:
                raise SetRejected(MISSING_COLUMN, f"{name}/{scan.name}: required column {missing[0]!r} missing")
        stage.index()

    def _tell(self) -> None:
        """Log the run report: one line per set (those already applied summed up), and fail on a rejection."""
        skipped = [s for s in self.report if s.status == SKIPPED_ALREADY_APPLIED]
        if skipped:
            log.info(
                "%d sets already applied (%s … %s): skipped",
                len(skipped),
                skipped[0].name,
                skipped[-1].name,
                extra={"fields": {"status": SKIPPED_ALREADY_APPLIED, "sets": len(skipped)}},
            )
        for status in self.report:
            if status.status == SKIPPED_ALREADY_APPLIED:
                continue
            text = status.detail
            if status.status == APPLIED:
                text = _applied_summary(status.counts)
            level = logging.WARNING if status.status == REJECTED or status.counts["kept_out"] else logging.INFO
            log.log(
                level,
                "%s: %s%s",
                status.name,
                status.label,
                f" — {text}" if text else "",
                extra={"fields": {"set": status.name, "status": status.label, **status.counts}},
            )
        rejected = [s for s in self.report if s.status == REJECTED]
        if rejected:
            lines = "; ".join(s.detail for s in rejected)
            raise AdapterError(f"{len(rejected)} extract set(s) rejected, nothing of them applied: {lines}")


def _applied_summary(counts: Counter[str]) -> str:
    text = (
        f"{counts['images']} case images, {counts['deletions']} deletions listed, "
        f"{counts['quarantined']} rows quarantined"
    )
    kept = [
        f"{counts[key]} {what}"
        for key, what in (
            ("theme_andet", "assessments on theme ANDET"),
        )
        if counts[key]
    ]
    if kept:
        text += f"; not stored, bridge has no place for them: {', '.join(kept)}"
    if counts["assessments_held_back"]:
        text += f"; {counts['assessments_held_back']} valid assessments held back with a quarantined one of their case"
    return text


_STAGE_BATCH = 5000


def _stage_file(path: Path, stage: _Stage) -> wire.FileScan:
    """Read one listed file to its end (digest, records, decoding); stage the rows of a data file."""
    columns = wire.COLUMNS.get(path.name)
    with wire.CsvFile(path) as csv_file:
        pending: list[tuple[str, int, str, str, str, int]] = []
        sags_at = key_at = -1
        for raw in csv_file.records():
            if columns is None:
                continue
            if not pending and csv_file.scan.rows == 1:
                header = csv_file.scan.header
                stage.headers[path.name] = header
                sags_at = header.index("SagsID") if "SagsID" in header else -1
                key_at = header.index(wire.KEY[path.name]) if wire.KEY[path.name] in header else -1
            sags = raw[sags_at].strip(" ") if 0 <= sags_at < len(raw) else ""
            rid = raw[key_at].strip(" ") if 0 <= key_at < len(raw) else ""
            width_ok = int(len(raw) == len(csv_file.scan.header))
            pending.append((path.name, csv_file.scan.rows, sags, rid, json.dumps(raw, ensure_ascii=False), width_ok))
            if len(pending) >= _STAGE_BATCH:
                stage.add(path.name, pending)
                pending = []
        if pending:
            stage.add(path.name, pending)
        if columns is not None and path.name not in stage.headers:
            stage.headers[path.name] = csv_file.scan.header
        return csv_file.scan


class _SetImages:
    """Put a staged set together as case images and yield them as batches of one transaction."""

    def __init__(self, adapter: CscSocialAdapter, name: str, manifest: Manifest, stage: _Stage, status: SetStatus):
        self.adapter = adapter
        self.name = name
        self.manifest = manifest
        self.stage = stage
        self.status = status
        self.duplicated = stage.duplicated()
        context = adapter.context
        self.persons = context.persons
        self.settings = rows.Settings(context.municipality, adapter.config.kle, adapter.config.target_groups)

    def _row(self, file: str, seq: int, sags: str, raw_json: str, width_ok: bool) -> _Row:
        raw = json.loads(raw_json)
        header = self.stage.headers[file]
        values: dict[str, str] = {}
        if width_ok:
            values = {column: wire.clean(column, raw[header.index(column)]) for column in wire.COLUMNS[file]}
        else:
            key = wire.KEY[file]
            if key in header and header.index(key) < len(raw):
                values[key] = raw[header.index(key)].strip(" ")
        return _Row(file, seq, sags, raw, width_ok, values)

    def _problem(self, row: _Row) -> RowProblem | None:
        """Malformed or duplicate: what a row's form says before its values are read."""
        if not row.width_ok:
            width = len(self.stage.headers[row.file])
            return RowProblem(rows.MALFORMED, f"{len(row.raw)} fields, the header has {width}")
        if row.rid and (row.file, row.rid) in self.duplicated:
            return RowProblem(rows.DUPLICATE, f"{wire.KEY[row.file]} {row.rid!r} appears more than once in the file")
        return None

    def _rejection(self, row: _Row, problem: RowProblem, case_ref: str | None) -> Rejection:
        self.status.counts["quarantined"] += 1
        header = self.stage.headers[row.file]
        delivered: dict[str, Any] = dict(zip(header, row.raw, strict=False)) if row.width_ok else {"fields": row.raw}
        payload = json.dumps({"file": row.file, "row": delivered}, ensure_ascii=False, sort_keys=True)
        where = f"{self.name}/{row.file} record {row.seq} ({wire.KEY[row.file]} {row.rid or '?'})"
        return Rejection(case_ref, f"{problem.klass}: {where}: {problem.message}", payload)

    def _deleted(self, batch: Batch) -> set[str]:
        gone: set[str] = set()
        if wire.DELETED not in self.manifest.files:
            return gone
        for file, seq, sags, raw, width_ok in self.stage.rows_of([wire.DELETED]):
            row = self._row(file, seq, sags, raw, width_ok)
            try:
                problem = self._problem(row)
                if problem is not None:
                    raise problem
                gone.add(rows.deleted_ref(row.values))
            except RowProblem as exc:
                batch.rejections.append(self._rejection(row, exc, row.values.get("SagsID") or None))
        return gone

    def batches(self, cursor: str | None, snapshot: bool, superseded: frozenset[str] = frozenset()) -> Iterator[Batch]:
        """The set's case images; the last batch ends the transaction with ``cursor`` (``None``: a later set does).

        ``snapshot``: the transaction holds every case of the source. Cases in ``superseded``
        are left out: a later set of the same transaction holds or deletes them.
        """
        batch = Batch(continues=True)
        gone = self._deleted(batch)
        self.status.counts["deletions"] = len(gone)
        cases = itertools.groupby(
            (self._row(*r) for r in self.stage.rows_of([wire.CASES])), key=lambda r: r.sags
        )
        children = itertools.groupby(
            (self._row(*r) for r in self.stage.rows_of(wire.CHILD_FILES)), key=lambda r: r.sags
        )
        for sags, case_rows, child_rows in _merge(cases, children):
            if sags in gone or sags in superseded:
                continue  # deleting wins over an upsert in the same set; a later set has the case
            self._image(sags, case_rows, child_rows, batch)
            if len(batch.records) + len(batch.rejections) >= self.adapter.config.batch_size:
                yield batch
                batch = Batch(continues=True)
        batch.continues = cursor is None
        batch.cursor = cursor
        batch.deleted = sorted(gone)
        batch.snapshot = snapshot
        yield batch

    def _image(self, sags: str, case_rows: list[_Row], child_rows: list[_Row], batch: Batch) -> None:
        """One case image: the case with its valid rows; what fails is quarantined and keeps its stored version.

        A quarantined case row holds back its whole image (the stored one stays). A quarantined
        measure or event keeps its stored row. A quarantined assessment holds back the case's
        assessments: the store has no reference for one assessment, so all keep their stored version.
        """
        failures: list[tuple[_Row, RowProblem]] = []
        fields: dict[str, Any] | None = None
        for row in case_rows:
            problem = self._problem(row) or (
                RowProblem(rows.DUPLICATE, f"SagsID {sags!r} appears more than once in the file")
                if len(case_rows) > 1
                else None
            )
            if problem is None:
                try:
                    fields = rows.case_fields(row.values, self.settings, self.persons)
                except RowProblem as exc:
                    problem = exc
            if problem is not None:
                failures.append((row, problem))
        parts: dict[str, list[dict[str, Any]]] = {wire.MEASURES: [], wire.ASSESSMENTS: [], wire.EVENTS: []}
        failed: dict[str, set[str]] = {wire.MEASURES: set(), wire.ASSESSMENTS: set(), wire.EVENTS: set()}
        for row in child_rows:
            problem = self._problem(row)
            if problem is None:
                try:
                    part = _CHILD_PARSERS[row.file](row.values)
                except RowProblem as exc:
                    problem = exc
            if problem is None and not case_rows:
                problem = RowProblem(rows.ORPHAN, f"SagsID {sags!r} is not in this set's {wire.CASES}")
            elif problem is None and fields is None:
                problem = RowProblem(rows.PARENT_QUARANTINED, f"its case {sags!r} is quarantined")
            if problem is not None:
                failures.append((row, problem))
                failed[row.file].add(row.rid)
            elif part is None:
                self.status.counts["kept_out"] += 1
                self.status.counts[_KEPT_OUT[row.file]] += 1
            else:
                parts[row.file].append(part)
        batch.rejections.extend(self._rejection(row, problem, sags if case_rows else None) for row, problem in failures)
        if fields is None:
            return
        kept = Kept(frozenset(failed[wire.MEASURES]), frozenset(failed[wire.EVENTS]), bool(failed[wire.ASSESSMENTS]))
        if kept.assessments:
            self.status.counts["assessments_held_back"] += len(parts[wire.ASSESSMENTS])
            parts[wire.ASSESSMENTS] = []
        try:
            record = CaseRecord.model_validate(
                {
                    **fields,
                    "measures": parts[wire.MEASURES],
                    "assessments": parts[wire.ASSESSMENTS],
                    "events": parts[wire.EVENTS],
                }
            )
        except ValidationError as exc:
            problem = RowProblem(rows.INVALID_VALUE, rejection_reason(exc))
            batch.rejections.append(self._rejection(case_rows[0], problem, sags))
            return
        self.status.counts["images"] += 1
        batch.records.append(record)
        if kept != Kept():
            batch.kept[sags] = kept


_CHILD_PARSERS: dict[str, Callable[[Mapping[str, str]], dict[str, Any] | None]] = {
    wire.MEASURES: rows.measure_fields,
    wire.ASSESSMENTS: rows.assessment_fields,
    wire.EVENTS: rows.event_fields,
}
_KEPT_OUT = {wire.ASSESSMENTS: "theme_andet"}


def _merge(
    cases: Iterator[tuple[str, Iterator[_Row]]], children: Iterator[tuple[str, Iterator[_Row]]]
) -> Iterator[tuple[str, list[_Row], list[_Row]]]:
    """Join two streams of rows grouped by SagsID, both in SagsID order."""
    case = next(cases, None)
    child = next(children, None)
    while case is not None or child is not None:
        if child is None or (case is not None and case[0] < child[0]):
            assert case is not None
            yield case[0], list(case[1]), []
            case = next(cases, None)
        elif case is None or child[0] < case[0]:
            yield child[0], [], list(child[1])
            child = next(children, None)
        else:
            yield case[0], list(case[1]), list(child[1])
            case, child = next(cases, None), next(children, None)


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(CscSocialAdapter)
