"""How a sync fails: never blocked by text a store cannot hold, never a driver's message with its
parameters, never stopping the other sources; and what it keeps of what it rejects.

On SQLite and PostgreSQL; every test here runs under the leak scan (tests/leakscan.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_, select, text

import bridge
from bridge.adapter import Rejection
from bridge.config import BridgeConfig, parse_config
from bridge.errors import AdapterError, ConfigError
from bridge.model.tables import CASES
from bridge.plugins import registered
from bridge.store import Store, open_store
from bridge.sync import run_sync
from bridge.sync.lock import source_lock
from bridge.sync.writer import QUARANTINE_PAYLOAD_LIMIT, one_of
from tests.leakscan import LeakScan
from tests.scripted import SCRIPTS, ScriptedPlugin, case


@pytest.fixture(autouse=True)
def scripted() -> Iterator[None]:
    with registered(ScriptedPlugin()):
        yield
    SCRIPTS.clear()


def config(*scripts: str, extra: list[dict[str, Any]] | None = None) -> BridgeConfig:
    sources = [
        {"name": name, "adapter": "scripted", "municipality": "461", "settings": {"script": name}} for name in scripts
    ]
    return parse_config({"sources": [*sources, *(extra or [])]}, Path("."))


def _forbid_people(scan: LeakScan, *records: dict[str, Any]) -> None:
    for r in records:
        scan.forbid(r["child_key"], r["family_key"], r["child_birth_date"])


def test_text_with_nul_characters_is_stored_cleaned_not_a_blocked_source(
    store: Store, secret_env: str, leak_scan: LeakScan
) -> None:
    leak_scan.watch(store)
    dirty = case(
        "1",
        case_number="27.24.00-G01-1\x00-24",
        caseworker={"source_ref": "cw\x001", "name": "Karen\x00 Jensen", "unit": None},
        measures=[{"source_ref": "m1", "act": "BL", "paragraph": "32", "start": "2024-02-01", "has_grant": True,
                   "provider": "Solsikken\x00"}],
    )  # fmt: skip
    broken = Rejection("2\x00", "reason with \x00 in it", '{"Id": 2, "Navn": "a\x00b"}')
    SCRIPTS["nul"] = [[dirty, case("3"), broken]]
    _forbid_people(leak_scan, dirty)
    run = run_sync(store, config("nul"), "nul")
    assert (run.status, run.inserted, run.quarantined, run.error) == ("quarantined", 2, 1, None)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT case_number FROM cases WHERE source_ref = '1'")).scalar() == (
            "27.24.00-G01-1-24"
        )
        assert conn.execute(text("SELECT name FROM caseworkers")).scalar() == "Karen Jensen"
        assert conn.execute(text("SELECT provider FROM measures WHERE source_ref = 'm1'")).scalar() == "Solsikken"
        kept = conn.execute(text("SELECT source_ref, reason, payload FROM quarantine")).one()
    assert tuple(kept) == ("2", "reason with  in it", '{"Id": 2, "Navn": "ab"}')


def test_a_database_error_says_what_failed_without_the_statements_parameters(
    store: Store, secret_env: str, leak_scan: LeakScan
) -> None:
    # A municipality the store does not know breaks a foreign key: the driver's message would
    # quote the row (person key, family key, birth date) and SQLAlchemy's the bound parameters.
    records = [case(str(n), municipality="999", caseworker=None) for n in range(1, 11)]
    SCRIPTS["fk"] = [records]
    _forbid_people(leak_scan, *records)
    leak_scan.watch(store)
    with pytest.raises(Exception) as raised:
        run_sync(store, config("fk"), "fk")
    leak_scan.said("exception", str(raised.value))
    [run] = bridge.Bridge(store).runs()
    assert run.status == "failed"
    assert run.error == f"the store refused INSERT on cases ({_driver_error(store)})"
    assert len(run.error) < 100


def _driver_error(store: Store) -> str:
    if store.dialect == "postgresql":
        return "ForeignKeyViolation, 23503"
    return "IntegrityError, SQLITE_CONSTRAINT_FOREIGNKEY"


def test_one_failing_source_never_stops_the_others(store: Store, secret_env: str, leak_scan: LeakScan) -> None:
    leak_scan.watch(store)
    SCRIPTS["crashes"] = [[case("1")], TypeError("'NoneType' object is not subscriptable")]
    SCRIPTS["fine"] = [[case("2"), case("3")]]
    SCRIPTS["busy"] = [[case("4")]]
    opened = bridge.Bridge(store, config("crashes", "fine", "busy"))
    with source_lock(store, "busy"):
        result = opened.sync()
    assert [(o.source, o.run.status if o.run else None, o.exit_code) for o in result.outcomes] == [
        ("crashes", "failed", 1),
        ("fine", "succeeded", 0),
        ("busy", None, 3),
    ]
    assert result.outcomes[0].error == "TypeError: 'NoneType' object is not subscriptable"
    assert result.runs[0].inserted == 1  # the batch before the crash stays committed
    assert "another sync of 'busy' is running" in (result.skipped[0].error or "")
    assert result.exit_code == 1
    assert {c.source_ref for c in opened.cases()} == {"1", "2", "3"}


def test_every_sources_configuration_is_checked_before_any_runs(
    store: Store, secret_env: str, leak_scan: LeakScan
) -> None:
    SCRIPTS["fine"] = [[case("1")]]
    bad_url = {
        "name": "broken-url",
        "adapter": "sbsys",
        "municipality": "751",
        "settings": {"base_url": "http://[::1", "grant_type": "client_credentials", "client_id": "bridge",
                     "client_secret": "hemmeligt-klient-secret"},
    }  # fmt: skip
    leak_scan.forbid("hemmeligt-klient-secret")
    with pytest.raises(ConfigError, match=r"sources\.broken-url\.settings\.base_url: not a valid URL") as raised:
        bridge.Bridge(store, config("fine", extra=[bad_url])).sync()
    leak_scan.said("exception", str(raised.value))
    assert bridge.Bridge(store).runs() == []  # the good source did not run either


def test_a_huge_rejected_payload_is_kept_as_a_prefix_with_the_hash_and_size_of_the_whole(
    store: Store, secret_env: str, leak_scan: LeakScan
) -> None:
    leak_scan.watch(store)
    huge = "<os2formsFormular>" + "x" * (5 * 1024 * 1024) + "</os2formsFormular>"
    SCRIPTS["big"] = [[Rejection("7", "score form too large", huge)], [Rejection("7", "score form too large", huge)]]
    run = run_sync(store, config("big"), "big")
    assert run.quarantined == 2
    [row] = bridge.Bridge(store).quarantined()  # the same payload twice is kept once, by its whole hash
    assert len(row.payload.encode()) == QUARANTINE_PAYLOAD_LIMIT
    assert huge.startswith(row.payload)
    from bridge.sync.writer import payload_hash

    assert row.payload_hash == payload_hash(huge)
    assert f"payload of {len(huge):,} bytes" in row.reason


def test_a_url_with_credentials_in_a_failure_is_redacted_in_the_ledger_and_the_log(
    store: Store, secret_env: str, leak_scan: LeakScan
) -> None:
    leak_scan.watch(store)
    leak_scan.forbid("Hemmelig1", "s3cr3t")
    SCRIPTS["token"] = [AdapterError("POST http://svc:Hemmelig1@idp.test/token?client_secret=s3cr3t answered 400")]
    result = bridge.Bridge(store, config("token")).sync()
    [outcome] = result.outcomes
    assert outcome.error == "POST http://svc:***@idp.test/token?client_secret=*** answered 400"
    assert outcome.run is not None
    assert outcome.run.error == outcome.error


@pytest.mark.parametrize("analysed", [True, False], ids=["with-statistics", "never-analysed"])
def test_postgresql_lookups_by_reference_use_the_index_under_a_generic_plan(
    postgresql_ready: str, analysed: bool
) -> None:
    # psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any
    # parameters (a generic plan), with statistics or (autovacuum off) without: the writer's
    # lookup must use the index either way. The rate as tables fill is `make bench` (pg-scaling).
    store = open_store(postgresql_ready)
    try:
        with store.transaction() as conn:
            conn.execute(text("TRUNCATE cases, municipalities RESTART IDENTITY CASCADE"))
            conn.execute(text("INSERT INTO municipalities (code, name) VALUES ('461', 'Odense')"))
            conn.execute(
                text(
                    "INSERT INTO cases (source, source_ref, municipality, child_key, child_birth_date, child_sex, "
                    "case_number, kle, target_group, opened, status, source_modified, content_hash, synced_at) "
                    "SELECT 'bench', n::text, '461', md5(n::text), DATE '2015-01-01', 'F', 'x', '27.24.00', "
                    "'udsatte', DATE '2024-01-01', 'open', now(), md5(n::text), now() "
                    "FROM generate_series(1, 50000) AS n"
                )
            )
            if analysed:
                conn.execute(text("ANALYZE cases"))
            refs = [str(n) for n in range(1000, 1500)]
            lookup = select(CASES.c.source_ref, CASES.c.content_hash).where(
                and_(CASES.c.source == "bench", one_of(conn, CASES.c.source_ref, refs))
            )
            compiled = lookup.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            names: list[str] = []
            sql = re.sub(r"%\((\w+)\)s", lambda m: names.append(m.group(1)) or f"${len(names)}", compiled.string)
            conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            conn.exec_driver_sql(f"PREPARE lookup AS {sql}")
            arguments = ", ".join(_literal(compiled.params[name]) for name in names)  # EXPLAIN takes no parameters
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE lookup({arguments})"))
            conn.exec_driver_sql("DEALLOCATE lookup")
            conn.execute(text("TRUNCATE cases, municipalities RESTART IDENTITY CASCADE"))
    finally:
        store.dispose()
    assert "Index" in plan, plan
    assert "Seq Scan" not in plan, plan


def _literal(value: object) -> str:
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]"
    return f"'{value}'"
