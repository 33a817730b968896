"""``bridge demo``: the whole pipeline on synthetic data, in ./bridge-demo/.

Each demo source is synced into ``bridge-demo/bridge.db`` (the SB-SYS source through its
simulator, which bridge serves on loopback whenever it reads that source), the scoring
report is written beside it, and the summary compares the store with the ground truth. The
folder is a working installation afterwards: ``bridge sync``, ``check``, ``cases``, ``scores``
and ``quarantine replay`` work there. Run again, it reuses the folder, and every record is
reported unchanged.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from sqlalchemy import func, select
from sqlmodel import col

from bridge.cli.output import console, notice
from bridge.cli.sources import show_runs
from bridge.config import SimulatedSource, SourceSettings, load_config
from bridge.model.tables import Case
from bridge.privacy import Pseudonymizer
from bridge.store import Store, open_store
from bridge.sync import sync_sources
from bridge.synthetic.truth import GroundTruth

DEMO_CONFIG = """\
# The bridge demo: four synthetic municipalities. Safe to delete.
[privacy]
secret_file = "person-key.secret"   # a random demo secret, made on the first run

# The built-in synthetic source.
[[sources]]
name = "odense-synthetic"
adapter = "synthetic"
municipality = "461"
municipality_name = "Odense"
[sources.settings]
seed = 461
caseworkers = 12
invalid = 5          # deliberately broken records, to show the quarantine

# SB-SYS over the SBSIP Web API. There is no SB-SYS server here: whenever bridge reads this
# source (sync, check, quarantine replay) it serves the SB-SYS simulator on loopback with the
# synthetic municipality below, and stops it afterwards. For a real server, replace
# [sources.simulator] by [sources.settings] with base_url, client_id and client_secret_env.
[[sources]]
name = "aarhus-sbsys"
adapter = "sbsys"
municipality = "751"
municipality_name = "Aarhus"
[sources.simulator]
seed = 751
caseworkers = 8
invalid = 3

# DUBU through Serviceplatformen (SOAP over mutual TLS). Likewise served by its simulator, over
# HTTPS with a test CA and the client certificate it expects, both made afresh each time. For a
# real service, replace [sources.simulator] by [sources.settings] (see `bridge adapters` and the
# bridge-dubu README): endpoint, the four InvocationContext UUIDs, client_cert and client_key.
[[sources]]
name = "aalborg-dubu"
adapter = "dubu"
municipality = "851"
municipality_name = "Aalborg"
[sources.simulator]
seed = 851
caseworkers = 8
invalid = 3
"""

# CSC Social delivers nightly extract sets into a drop folder (over SFTP). The demo writes three
# nights of a synthetic municipality there with the extract simulator: a full set, then deltas.
CSC_SOURCE = "esbjerg-csc"
CSC_DEMO = """
# CSC Social: nightly extract sets in a drop folder, which bridge only reads. The demo wrote three
# nights there (a full set, then two deltas); `bridge sync` applies what is new and skips the rest.
[[sources]]
name = "esbjerg-csc"
adapter = "csc_social"
municipality = "561"
municipality_name = "Esbjerg"
[sources.settings]
drop = {drop}
"""
CSC_TRUTH = SimulatedSource(seed=561, caseworkers=6, invalid=3)


def _csc_drop(drop: Path, persons: Pseudonymizer) -> int:
    """Write the CSC Social demo's nights into ``drop`` (once); the number of cases they leave live."""
    from bridge.simulation import SimulatorRequest, simulator_for

    factory = simulator_for("csc_social")
    with tempfile.TemporaryDirectory() as scratch:
        target = drop if not drop.exists() else Path(scratch) / "drop"  # the same nights, to count them
        request = SimulatorRequest(truth=CSC_TRUTH.truth("561"), directory=target, options={"nights": "3"})
        with factory(request) as running:
            return len(running.handle.expected_records(persons))


def _truth(source: SourceSettings) -> GroundTruth:
    """The ground truth a demo source serves."""
    from bridge.synthetic.adapter import SyntheticConfig

    if source.simulator is not None:
        return source.simulator.truth(source.municipality)
    return SyntheticConfig.model_validate(source.settings).truth(source.municipality)


DEMO_SAMPLE = "Demo-tilsyn"


def _tilsyn(store: Store, directory: Path, as_of: date) -> list[str]:
    """The ledelsestilsyn step: a sample (drawn once), its checklist and sheet, the barometer and the report."""
    from bridge.plugins import get_plugins
    from bridge.reports.audit import barometer_report, sample_report
    from bridge.services import findings, sampling
    from bridge.services.barometer import barometer, default_periods
    from bridge.services.sheet import write_sheet

    sample = next((s for s in sampling.list_samples(store) if s.label == DEMO_SAMPLE), None)
    if sample is None:
        spec = sampling.DrawSpec(sampling.Strategy.per_caseworker, as_of, k=2, label=DEMO_SAMPLE)
        sample = sampling.draw_sample(store, spec, seed="demo", drawn_by="demo")
    findings.fill_sample(store, sample.id, recorded_by="demo")
    sheet = write_sheet(store, sample.id, directory / "tjekskema.xlsx")
    html = get_plugins().report_formats()["html"]
    result = barometer(store, periods=default_periods(as_of), as_of=as_of)
    (directory / "barometer.html").write_bytes(html.render(barometer_report(result)))
    (directory / "tilsyn.html").write_bytes(html.render(sample_report(store, sample.id, today=as_of)))
    verified = sampling.verify(store, sample.id)
    return [
        f"ledelsestilsyn: sample {sample.id} ({sample.sample_size} of {sample.population_size} cases, seed "
        f"{sample.seed}) — {'verified' if verified.confirmed else 'population changed'}",
        f"checklist sheet: {sheet}",
        f"barometer over all {result.cases} cases: {directory / 'barometer.html'}",
        f"audit report: {directory / 'tilsyn.html'}",
    ]


def _compare(store: Store, directory: Path, as_of: date) -> list[str]:
    """The comparison of the demo's municipalities, and an extract per municipality merged back."""
    from bridge.plugins import get_plugins
    from bridge.reports.compare import comparison_report
    from bridge.services import compare
    from bridge.services.periods import Period

    html = get_plugins().report_formats()["html"]
    periods = [Period.parse(str(as_of.year - 1)), Period.parse(str(as_of.year))]
    whole = compare.compare(store, periods=periods, as_of=as_of)
    report = comparison_report(whole)
    (directory / "sammenligning.html").write_bytes(html.render(report))
    extracts = [
        compare.write_extract(
            compare.compare(store, periods=periods, municipalities=[m.code], as_of=as_of),
            m.code,
            directory / "udtraek" / f"{m.code}.json",
        )
        for m in whole.municipalities
    ]
    merged = comparison_report(compare.merge(extracts))
    (directory / "sammenligning-samlet.html").write_bytes(html.render(merged))
    same = "the same figures" if merged.tables == report.tables else "figures that DIFFER"
    return [
        f"comparison of {len(whole.municipalities)} municipalities: {directory / 'sammenligning.html'}",
        f"an extract per municipality in {directory / 'udtraek'}, merged back with {same}: "
        f"{directory / 'sammenligning-samlet.html'}",
    ]


def _workload(store: Store, directory: Path, as_of: date) -> list[str]:
    """The caseload report, and a handover plan with dossiers for the most loaded caseworker who has a team."""
    from bridge.plugins import get_plugins
    from bridge.reports.workload import handover_report, workload_report
    from bridge.services.handover import dossiers, plan_handover
    from bridge.services.workload import workload

    html = get_plugins().report_formats()["html"]
    result = workload(store, on=as_of)
    (directory / "workload.html").write_bytes(html.render(workload_report(result)))
    size = Counter((w.municipality, w.team) for w in result.caseworkers)
    named = Counter((w.municipality, w.name) for w in result.caseworkers)
    leaving = max(
        (w for w in result.caseworkers if size[(w.municipality, w.team)] > 1 and named[(w.municipality, w.name)] == 1),
        key=lambda w: (w.load, w.name),
    )
    plan = plan_handover(store, leaving.name, on=as_of, municipality=leaving.municipality)
    (directory / "handover.html").write_bytes(html.render(handover_report(plan, dossiers(store, plan))))
    return [
        f"workload of {len(result.caseworkers)} caseworkers: {directory / 'workload.html'}",
        f"handover of {leaving.name}'s {len(plan.moves)} cases to {len(plan.receivers)} colleagues, with a dossier "
        f"per case: {directory / 'handover.html'}",
    ]


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo lives.")] = Path("bridge-demo"),
) -> None:
    """Run the whole pipeline on synthetic data in ./bridge-demo/ and print a summary.

    Fully syncs every demo source (starting the SB-SYS and DUBU simulators on loopback), writes the
    scoring report (scores.html), the ledelsestilsyn and the comparison of the municipalities
    (sammenligning.html, and extracts merged back), compares the store with the ground truth,
    and ends with commands to try next. The folder stays a working installation.
    """
    from bridge.plugins import get_plugins
    from bridge.reports.scoring import write_scoring_report
    from bridge.services.cases import find_cases
    from bridge.synthetic.generate import DEFAULT_AS_OF

    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "bridge.toml"
    if not config_path.exists():
        drop = json.dumps(str((directory / "csc-drop").resolve()))
        config_path.write_text(DEMO_CONFIG + CSC_DEMO.format(drop=drop), encoding="utf-8")
    secret_path = directory / "person-key.secret"
    if not secret_path.exists():
        secret_path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        secret_path.chmod(0o600)
    config = load_config(config_path)
    store = open_store(config.database_url())
    expected = 0
    for source in config.sources:
        if source.name == CSC_SOURCE:
            expected += _csc_drop(Path(source.settings["drop"]), config.pseudonymizer())
        else:
            expected += sum(1 for _ in _truth(source).valid_cases())
    notice("syncing " + ", ".join(f"{source.name} ({source.adapter})" for source in config.sources) + " …")
    # The extract source reconciles through its own ledger (a full set marks what it lacks deleted);
    # --full would replay every set in the drop, so it syncs as cron does.
    others = [source.name for source in config.sources if source.name != CSC_SOURCE]
    runs = sync_sources(store, config, others, full=True).runs + sync_sources(store, config, [CSC_SOURCE]).runs
    html = get_plugins().report_formats()["html"]
    report = write_scoring_report(store, directory / "scores.html", html, as_of=DEFAULT_AS_OF)
    tilsyn = _tilsyn(store, directory, DEFAULT_AS_OF) + _compare(store, directory, DEFAULT_AS_OF)
    caseload = _workload(store, directory, DEFAULT_AS_OF)
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Case).where(col(Case.deleted_at).is_(None))).scalar_one()
    example = next(iter(find_cases(store, open_only=True, limit=1)), None)
    store.dispose()
    show_runs("Demo sync", runs, "table")
    summary = Text(f"cases in store: {stored}; ground truth: {expected} — ")
    summary.append(*(("matches", "green") if stored == expected else ("does NOT match", "red")))
    console.print(summary)
    console.print(Text(f"store: {config.database_url()}"))
    console.print(Text(f"scoring report: {report}"))
    case = example.case_number if example else "CASE-NUMBER"
    for line in (*tilsyn, *caseload):
        console.print(Text(line))
    console.print(Text("\nNext steps (the demo folder is a working installation; see README.md):\n", style="bold"))
    for line in (
        f"cd {directory}",
        "bridge cases --open --municipality aarhus   # open cases: case number, caseworker, the child's age",
        f"bridge scores child {case} -o child.html   # one child's scores, as a report",
        "bridge sync                                 # sync again: every record unchanged",
    ):
        console.print(Text(f"  {line}"))
    if stored != expected:
        raise typer.Exit(1)
