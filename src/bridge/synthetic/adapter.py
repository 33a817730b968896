"""The built-in ``synthetic`` adapter: the ground truth as a source, registered like any plugin.

Each case is rendered to a JSON payload the way a source would send it (CPR numbers
included, defects on the wire) and parsed back through the same boundary validation a
real adapter uses, so the engine, the quarantine and the services are exercised before
any real system is reached.

The payloads are listed the way a Limit/Skip server lists them, read with
:func:`~bridge.adapter.paginate_offset`, and the listing can behave like a server written
by others (the conformance kit's behaviours): pages capped below the size asked for, a
total that is wrong, records of other municipalities (a filter the server ignores),
optional fields left out, unknown fields and target groups, other field casings, records
repeated across pages, and cases changing while the pages are read.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field

from bridge.adapter import Adapter, AdapterConfig, Batch, Rejection, paginate_offset
from bridge.errors import AdapterError
from bridge.hookspecs import hookimpl
from bridge.model.records import (
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseworkerRecord,
    MeasureRecord,
    TargetGroup,
    Theme,
    rejection_reason,
)
from bridge.privacy import InvalidCPR
from bridge.synthetic.generate import DEFAULT_AS_OF, generate, touch
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase

log = logging.getLogger("bridge.synthetic")

OTHER_MUNICIPALITY = "999"
"""The municipality of the unrelated cases a listing that ignores its filter mixes in."""
UNKNOWN_TARGET_GROUP = "ukendt målgruppe"
"""A target group the adapter was not configured for; read as the default (udsatte)."""


class SyntheticConfig(AdapterConfig):
    """Settings of a synthetic source: the ground truth's parameters and knobs for tests.

    The municipality comes from the source's ``municipality`` in bridge.toml.
    """

    seed: int = 1
    caseworkers: int = Field(default=10, ge=1)
    cases: int | None = Field(default=None, ge=1)
    invalid: int = Field(default=0, ge=0, description="cases broken on purpose, to exercise the quarantine")
    as_of: date = DEFAULT_AS_OF
    page_size: int = Field(default=200, ge=1)
    touched: int = Field(default=0, ge=0, description="rounds of changes since as_of, one day apart")
    touch_count: int = Field(default=5, ge=1, description="cases changed per round")
    batch_delay: float = Field(default=0.0, ge=0, description="seconds to wait before each batch (tests)")
    fail_after_batches: int | None = Field(
        default=None, ge=0, description="raise RuntimeError after yielding this many batches (crash tests)"
    )
    page_cap: int | None = Field(default=None, ge=1, description="the listing serves at most this many per page")
    total_skew: int = Field(default=0, description="the listing reports its total off by this many")
    unrelated: int = Field(default=0, ge=0, description="cases of another municipality mixed into each page")
    sparse: bool = Field(default=False, description="optional fields left out instead of sent empty")
    unknown: bool = Field(default=False, description="unknown fields, and unknown target groups for udsatte")
    casing: bool = Field(default=False, description="every other case's field names in Title_Case")
    duplicates: bool = Field(default=False, description="every fifth case listed again on the next page")
    change_while_paging: int = Field(
        default=0, ge=0, description="cases changed (the next touch round) once the first page is read"
    )

    def truth(self, municipality: str) -> GroundTruth:
        """The ground truth this configuration serves for ``municipality``."""
        truth = generate(
            self.seed,
            caseworkers=self.caseworkers,
            cases=self.cases,
            invalid=self.invalid,
            as_of=self.as_of,
            municipality_codes=[municipality],
        )
        for round_ in range(1, self.touched + 1):
            at = datetime.combine(self.as_of + timedelta(days=round_), datetime.min.time(), tzinfo=UTC)
            touch(truth, self.touch_count, round_, at + timedelta(hours=12))
        return truth


def _sort_key(case: TruthCase) -> tuple[datetime, int]:
    return (case.modified, case.id)


def _cursor(case: TruthCase) -> str:
    """``<modified ISO>|<id>`` of the last case in a batch: the next fetch starts after it."""
    return f"{case.modified.isoformat()}|{case.id}"


def _after(cursor: str | None) -> Callable[[TruthCase], bool]:
    if cursor is None:
        return lambda _case: True
    moment, _, ident = cursor.rpartition("|")
    try:
        bound = (datetime.fromisoformat(moment), int(ident))
    except ValueError:
        raise AdapterError(
            f"the synthetic source cannot resume from cursor {cursor!r}: expected <modified>|<id>"
        ) from None
    if bound[0].tzinfo is None:
        raise AdapterError(f"the synthetic source cannot resume from cursor {cursor!r}: the time has no zone")
    return lambda case: _sort_key(case) > bound


def render(case: TruthCase, truth: GroundTruth) -> str:
    """The case as the synthetic source sends it: raw values, CPR numbers and defects included."""
    worker = truth.caseworkers[case.caseworker_ref]
    opened = BROKEN_DATE_TEXT if case.defect is Defect.broken_date else case.opened.isoformat()
    payload = {
        "id": case.id,
        "municipality": case.municipality,
        "child": {"cpr": case.child.cpr, "guardians": case.child.guardians},
        "caseworker": {"ref": worker.ref, "name": worker.name, "unit": worker.unit},
        "case_number": case.case_number,
        "family_case_number": case.family_case_number,
        "kle": case.kle,
        "target_group": case.target_group.value,
        "opened": opened,
        "closed": case.closed.isoformat() if case.closed else None,
        "modified": case.modified.isoformat(),
        "measures": [
            {
                "ref": m.ref,
                "act": m.act.value,
                "paragraph": m.paragraph,
                "start": m.start.isoformat(),
                "end": m.end.isoformat() if m.end else None,
                "grant": m.has_grant,
                "account": m.account_code,
                "provider": m.provider,
            }
            for m in case.measures
        ],
        "assessments": [
            {"theme": a.theme, "value": a.value, "on": a.assessed_on.isoformat(), "by": a.assessor}
            for a in case.assessments
        ],
        "events": [
            {"kind": e.kind.value, "on": e.occurred_on.isoformat(), "at": e.at and e.at.isoformat(), "ref": e.ref}
            for e in case.events
        ],
    }
    return json.dumps(payload, ensure_ascii=False)


def _day(text: Any, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: {text!r} is not a date") from None


def _assessment(n: int, raw: dict[str, Any]) -> AssessmentRecord:
    try:
        theme = Theme(raw["theme"])
    except ValueError:
        raise ValueError(f"assessment {n}: unknown theme {raw['theme']!r}") from None
    value = raw.get("value")  # absent or null: ikke vurderet
    if value is not None and not (type(value) is int and 1 <= value <= 5):
        raise ValueError(f"assessment {n}: value {value!r} is outside 1–5")
    return AssessmentRecord(
        theme=theme, value=value, assessed_on=_day(raw["on"], f"assessment {n}"), assessor=raw.get("by")
    )


class SyntheticAdapter(Adapter):
    """Serves the synthetic ground truth, paged by modification time like a real source."""

    name = "synthetic"
    description = "Synthetic ground truth (for demos and tests)"
    Config = SyntheticConfig
    config: SyntheticConfig

    def check(self) -> None:
        """Nothing to reach: the synthetic source is always there."""

    def parse_payload(self, payload: str) -> CaseRecord:
        """Validate one rendered case; ``ValueError`` with a reason that holds no CPR if it is bad."""
        try:
            return self._parse(_fold(json.loads(payload)))
        except (KeyError, TypeError, AttributeError) as exc:
            # A payload that is not a synthetic case at all (hand-edited, truncated).
            raise ValueError(f"not a synthetic case payload ({type(exc).__name__}: {exc})") from None

    def _parse(self, data: dict[str, Any]) -> CaseRecord:
        persons = self.context.persons
        try:
            child = persons.person(data["child"]["cpr"])
        except InvalidCPR as exc:
            raise ValueError(f"child CPR: {exc}") from None
        try:
            family_key = persons.family_key(data["child"].get("guardians", []))
        except InvalidCPR as exc:
            raise ValueError(f"guardian CPR: {exc}") from None
        worker = data["caseworker"]
        closed = _day(data["closed"], "closed") if data.get("closed") else None
        # An unknown target group is defaulted (and counted by fetch), never a reason to quarantine.
        group = data["target_group"] if data["target_group"] in set(TargetGroup) else TargetGroup.udsatte
        return CaseRecord(
            source_ref=str(data["id"]),
            municipality=data["municipality"],
            child_key=child.key,
            child_birth_date=child.birth_date,
            child_sex=child.sex,
            child_cpr=child.cpr,
            family_key=family_key,
            family_case_number=data.get("family_case_number"),
            caseworker=CaseworkerRecord(source_ref=worker["ref"], name=worker["name"], unit=worker.get("unit")),
            case_number=data["case_number"],
            kle=data["kle"],
            target_group=group,
            opened=_day(data["opened"], "opened"),
            closed=closed,
            status="closed" if closed else "open",
            source_modified=datetime.fromisoformat(data["modified"]),
            measures=tuple(
                MeasureRecord(
                    source_ref=m["ref"],
                    act=m["act"],
                    paragraph=m["paragraph"],
                    start=_day(m["start"], "measure start"),
                    end=_day(m["end"], "measure end") if m.get("end") else None,
                    has_grant=m["grant"],
                    account_code=m.get("account"),
                    provider=m.get("provider"),
                )
                for m in data.get("measures", [])
            ),
            assessments=tuple(_assessment(n, a) for n, a in enumerate(data.get("assessments", []), start=1)),
            events=tuple(
                CaseEventRecord(
                    kind=e["kind"],
                    occurred_on=_day(e["on"], "event"),
                    occurred_at=e.get("at") and datetime.fromisoformat(e["at"]),
                    source_ref=e["ref"],
                )
                for e in data.get("events", [])
            ),
        )

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        config = self.config
        truth = config.truth(self.context.municipality)
        listing = _Listing(truth, sorted(filter(_after(cursor), truth.cases), key=_sort_key), config)
        seen: set[str] = set()
        skipped: Counter[str] = Counter()
        pages = paginate_offset(listing.page, page_size=config.page_size)
        for number, page in enumerate(pages):
            if number == config.fail_after_batches:
                raise RuntimeError(f"synthetic source failed after {number} batches (fail_after_batches)")
            if config.batch_delay:
                time.sleep(config.batch_delay)
            batch = Batch(expected=pages.total)
            for payload in page:
                self._take(payload, batch, seen, skipped)
            batch.cursor = listing.cursor_after() or cursor
            cursor = batch.cursor
            yield batch
        if skipped:
            log.warning(
                "the synthetic source sent %s",
                ", ".join(f"{n} {what}" for what, n in sorted(skipped.items())),
                extra={"fields": {"source": self.context.source, **skipped}},
            )

    def _take(self, payload: str, batch: Batch, seen: set[str], skipped: Counter[str]) -> None:
        """Map one listed payload into ``batch``: unrelated and repeated cases are left out and counted."""
        data = json.loads(payload)
        folded = _fold(data) if isinstance(data, dict) else {}
        ref = str(folded.get("id"))
        if folded.get("municipality") != self.context.municipality:
            skipped["cases of other municipalities (a filter the listing ignored)"] += 1
            return
        if ref in seen:
            skipped["repeated cases"] += 1
            return
        seen.add(ref)
        if str(folded.get("target_group")) not in set(TargetGroup):
            skipped["cases of an unknown target group, read as udsatte"] += 1
        try:
            batch.records.append(self.parse_payload(payload))
        except ValueError as exc:
            batch.rejections.append(Rejection(ref, rejection_reason(exc), payload))


def _renamed(value: Any, rename: Callable[[str], str]) -> Any:
    """``value`` with every field name passed through ``rename``."""
    if isinstance(value, Mapping):
        return {rename(str(k)): _renamed(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, rename) for v in value]
    return value


def _fold(value: Any) -> Any:
    """Field names in one casing: sources differ in how they spell them."""
    return _renamed(value, str.casefold)


def _without_empty(value: Any) -> Any:
    """Optional fields left out, as sources do, instead of sent as null or empty lists."""
    if isinstance(value, Mapping):
        return {k: _without_empty(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


class _Listing:
    """The cases after a cursor, as a Limit/Skip server with the configured behaviours lists them."""

    def __init__(self, truth: GroundTruth, pending: list[TruthCase], config: SyntheticConfig) -> None:
        self.truth = truth
        self.config = config
        entries: list[tuple[TruthCase, bool]] = []  # (case, unrelated)
        for n, case in enumerate(pending):
            entries.append((case, False))
            if config.duplicates and n >= 2 and (n - 2) % 5 == 4:
                # Listed again two places later: the server's order is not stable across pages.
                entries.append((pending[n - 2], False))
            if config.unrelated and n % max(config.page_size, 1) == 0:
                entries += [(other, True) for other in pending[n : n + config.unrelated]]
        self.entries = entries
        self._keys = {id(case): _sort_key(case) for case, _ in entries}
        """Listing order is fixed when the listing starts; a case changed meanwhile keeps its place."""
        self._changed = False
        self._last: list[tuple[TruthCase, bool]] = []

    def page(self, offset: int, limit: int) -> tuple[Sequence[str], int]:
        config = self.config
        if offset > 0 and config.change_while_paging and not self._changed:
            self._changed = True
            round_ = config.touched + 1
            at = datetime.combine(config.as_of + timedelta(days=round_), datetime.min.time(), tzinfo=UTC)
            touch(self.truth, config.change_while_paging, round_, at + timedelta(hours=12))
        size = min(limit, config.page_cap or limit)
        window = self.entries[offset : offset + size]
        self._last = window
        return [self._render(case, unrelated) for case, unrelated in window], len(self.entries) + config.total_skew

    def cursor_after(self) -> str | None:
        """The cursor after the page last served: the latest listing key of its own cases."""
        own = [self._keys[id(case)] for case, unrelated in self._last if not unrelated]
        if not own:
            return None
        modified, ident = max(own)
        return f"{modified.isoformat()}|{ident}"

    def _render(self, case: TruthCase, unrelated: bool) -> str:
        data = json.loads(render(case, self.truth))
        config = self.config
        if unrelated:
            data["municipality"] = OTHER_MUNICIPALITY
        if config.unknown:
            data["sagstype"] = {"kode": "B1", "tekst": "ikke modelleret"}
            if data["target_group"] == TargetGroup.udsatte:
                data["target_group"] = UNKNOWN_TARGET_GROUP
        if config.sparse:
            data = _without_empty(data)
        if config.casing and case.id % 2:
            data = _renamed(data, str.title)
        return json.dumps(data, ensure_ascii=False)


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(SyntheticAdapter)
