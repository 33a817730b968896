"""Reading the store back, to compare it with a ground truth independently of the writer.

The sync engine writes through :mod:`bridge.sync.writer`; these functions read the tables
with plain SQL and rebuild records, so a writer bug cannot hide itself in the comparison.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from bridge.model.records import (
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseworkerRecord,
    MeasureRecord,
)
from bridge.store import Store

CONTENT_TABLES = ("municipalities", "caseworkers", "cases", "measures", "assessments", "case_events", "quarantine")


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the content tables, sorted, for before/after comparisons."""
    result = {}
    with store.engine.connect() as conn:
        for table in CONTENT_TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            result[table] = sorted((tuple(r) for r in rows), key=repr)
    return result


def stored_records(store: Store, source: str) -> dict[str, CaseRecord]:
    """The live cases of ``source`` rebuilt as records, keyed by source_ref."""
    with store.engine.connect() as conn:
        cases = (
            conn.execute(
                text(
                    "SELECT c.*, w.source_ref AS w_ref, w.name AS w_name, w.unit AS w_unit FROM cases c "
                    "LEFT JOIN caseworkers w ON w.id = c.caseworker_id "
                    "WHERE c.source = :s AND c.deleted_at IS NULL"
                ),
                {"s": source},
            )
            .mappings()
            .all()
        )
        children: dict[str, dict[int, list[Any]]] = {t: defaultdict(list) for t in ("m", "a", "e")}
        for key, table in (("m", "measures"), ("a", "assessments"), ("e", "case_events")):
            for row in conn.execute(select(text("*")).select_from(text(table))).mappings():
                children[key][row["case_id"]].append(row)
    records = {}
    for c in cases:
        records[c["source_ref"]] = CaseRecord(
            source_ref=c["source_ref"],
            municipality=c["municipality"],
            child_key=c["child_key"],
            child_birth_date=c["child_birth_date"],
            child_sex=c["child_sex"],
            child_cpr=c["child_cpr"],
            family_key=c["family_key"],
            family_case_number=c["family_case_number"],
            caseworker=CaseworkerRecord(source_ref=c["w_ref"], name=c["w_name"], unit=c["w_unit"])
            if c["w_ref"]
            else None,
            case_number=c["case_number"],
            kle=c["kle"],
            target_group=c["target_group"],
            opened=c["opened"],
            closed=c["closed"],
            status=c["status"],
            source_modified=_aware(c["source_modified"]),
            measures=tuple(
                MeasureRecord(
                    source_ref=m["source_ref"],
                    act=m["act"],
                    paragraph=m["paragraph"],
                    start=m["start"],
                    end=m["end"],
                    has_grant=bool(m["has_grant"]),
                    account_code=m["account_code"],
                    provider=m["provider"],
                )
                for m in children["m"][c["id"]]
            ),
            assessments=tuple(
                AssessmentRecord(
                    theme=a["theme"], value=a["value"], assessed_on=a["assessed_on"], assessor=a["assessor"]
                )
                for a in children["a"][c["id"]]
            ),
            events=tuple(
                CaseEventRecord(
                    kind=e["kind"],
                    occurred_on=e["occurred_on"],
                    occurred_at=None if e["occurred_at"] is None else _aware(e["occurred_at"]),
                    source_ref=e["source_ref"],
                )
                for e in children["e"][c["id"]]
            ),
        )
    return records


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"source_modified is not a time: {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hashes(records: Mapping[str, CaseRecord] | Iterable[CaseRecord]) -> dict[str, str]:
    """``source_ref -> content hash`` of records: equal hashes, equal stored content."""
    items = records.values() if isinstance(records, Mapping) else records
    return {r.source_ref: r.content_hash() for r in items}


def unresolved_quarantine(store: Store, source: str) -> dict[str | None, str]:
    """``source_ref -> reason`` of the source's quarantined records not yet resolved."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_ref, reason FROM quarantine WHERE source = :s AND resolved_at IS NULL"), {"s": source}
        ).all()
    return {ref: reason for ref, reason in rows}  # noqa: C416 - rows are Row objects, not pairs, to mypy


def cpr_leaks(store: Store, cprs: Iterable[str], *, also: Iterable[str] = ()) -> list[str]:
    """Where a CPR of ``cprs`` appears: the store outside quarantine payloads, or the texts ``also``.

    Returns the places (table or text index), never the CPR, so a failing assertion does
    not print person data. Both spellings are looked for (``DDMMYY-SSSS`` and 10 digits).
    """
    content = dump(store)
    del content["quarantine"]
    with store.engine.connect() as conn:
        content["quarantine"] = [
            tuple(r) for r in conn.execute(text("SELECT source, source_ref, reason FROM quarantine")).all()
        ]
        content["sync_runs"] = [tuple(r) for r in conn.execute(text("SELECT * FROM sync_runs")).all()]
    places = {
        **{table: json.dumps(rows, default=str) for table, rows in content.items()},
        **{f"text {n}": t for n, t in enumerate(also)},
    }
    found = []
    for cpr in cprs:
        for spelling in {cpr, cpr.replace("-", "")}:
            found += [place for place, blob in places.items() if spelling in blob]
    return sorted(set(found))
