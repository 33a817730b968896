"""Reading the store back, to compare it with the ground truth independently of the writer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
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


def _aware(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hashes(records: dict[str, CaseRecord] | list[CaseRecord]) -> dict[str, str]:
    items = records.values() if isinstance(records, dict) else records
    return {r.source_ref: r.content_hash() for r in items}


def bridge_cli(*args: str, cwd: Path, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``bridge`` command in a subprocess, as cron would (no terminal)."""
    full_env = {**os.environ, **env}
    full_env.pop("BRIDGE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )
