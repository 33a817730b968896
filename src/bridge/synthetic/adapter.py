"""The built-in ``synthetic`` adapter: the ground truth as a source, registered like any plugin.

Each case is rendered to a JSON payload the way a source would send it (CPR numbers
included, defects on the wire) and parsed back through the same boundary validation a
real adapter uses, so the engine, the quarantine and the services are exercised before
any real system is reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field

from bridge.adapter import Adapter, AdapterConfig, Batch, Rejection
from bridge.errors import AdapterError
from bridge.hookspecs import hookimpl
from bridge.model.records import (
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseworkerRecord,
    MeasureRecord,
    Theme,
    rejection_reason,
)
from bridge.privacy import InvalidCPR
from bridge.synthetic.generate import DEFAULT_AS_OF, generate, touch
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth, TruthCase


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
    value = raw["value"]
    if value is not None and not (type(value) is int and 1 <= value <= 5):
        raise ValueError(f"assessment {n}: value {value!r} is outside 1–5")
    return AssessmentRecord(
        theme=theme, value=value, assessed_on=_day(raw["on"], f"assessment {n}"), assessor=raw["by"]
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
            return self._parse(json.loads(payload))
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
            family_key = persons.family_key(data["child"]["guardians"])
        except InvalidCPR as exc:
            raise ValueError(f"guardian CPR: {exc}") from None
        worker = data["caseworker"]
        closed = _day(data["closed"], "closed") if data["closed"] else None
        return CaseRecord(
            source_ref=str(data["id"]),
            municipality=data["municipality"],
            child_key=child.key,
            child_birth_date=child.birth_date,
            child_sex=child.sex,
            child_cpr=child.cpr,
            family_key=family_key,
            family_case_number=data["family_case_number"],
            caseworker=CaseworkerRecord(source_ref=worker["ref"], name=worker["name"], unit=worker["unit"]),
            case_number=data["case_number"],
            kle=data["kle"],
            target_group=data["target_group"],
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
                    end=_day(m["end"], "measure end") if m["end"] else None,
                    has_grant=m["grant"],
                    account_code=m["account"],
                    provider=m["provider"],
                )
                for m in data["measures"]
            ),
            assessments=tuple(_assessment(n, a) for n, a in enumerate(data["assessments"], start=1)),
            events=tuple(
                CaseEventRecord(
                    kind=e["kind"],
                    occurred_on=_day(e["on"], "event"),
                    occurred_at=e.get("at") and datetime.fromisoformat(e["at"]),
                    source_ref=e["ref"],
                )
                for e in data["events"]
            ),
        )

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        truth = self.config.truth(self.context.municipality)
        pending = sorted(filter(_after(cursor), truth.cases), key=_sort_key)
        size = self.config.page_size
        for number, start in enumerate(range(0, len(pending), size)):
            if number == self.config.fail_after_batches:
                raise RuntimeError(f"synthetic source failed after {number} batches (fail_after_batches)")
            if self.config.batch_delay:
                time.sleep(self.config.batch_delay)
            page = pending[start : start + size]
            batch = Batch(cursor=_cursor(page[-1]), expected=len(pending))
            for case in page:
                payload = render(case, truth)
                try:
                    batch.records.append(self.parse_payload(payload))
                except ValueError as exc:
                    batch.rejections.append(Rejection(str(case.id), rejection_reason(exc), payload))
            yield batch


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(SyntheticAdapter)
