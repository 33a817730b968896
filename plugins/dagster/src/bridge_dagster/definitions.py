"""Dagster definitions built from a ``bridge.toml``: one asset per source, a job and a nightly schedule.

Each materialisation of a source's asset runs that source's sync through the library
(:func:`bridge.sync.run_sync` on the store of ``bridge.open(config)``, the code ``bridge sync``
runs for each source) and maps the outcome the way ``bridge sync`` maps it to an exit code:

=================  ===========  ==================================================================
run                exit code    in Dagster
=================  ===========  ==================================================================
succeeded          0            materialised; the ``quarantine`` check passes
quarantined        4            materialised; the ``quarantine`` check fails with severity WARN
lock held          3            not materialised, the step succeeds: an observation says why
failed             1            ``dagster.Failure``, retried by the asset's ``RetryPolicy``
configuration      2            ``dagster.Failure`` that is not retried (it cannot heal by itself)
=================  ===========  ==================================================================

The metadata are the run ledger's counters and the run's id, never a record or a secret.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

import bridge
from bridge.config import BridgeConfig, SourceSettings, load_config
from bridge.errors import ConfigError, LockHeld, PluginError
from bridge.model.tables import SyncRun
from bridge.privacy import mask_cpr
from bridge.sync import run_sync
from bridge.sync.ledger import QUARANTINED

GROUP = "bridge"
JOB = "bridge_sync"
SCHEDULE = "bridge_nightly_sync"
QUARANTINE_CHECK = "quarantine"
DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "Europe/Copenhagen"
DEFAULT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=300, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Three more attempts, about 5, 10 and 20 minutes apart: a source back after an outage is read the same night."""


class SyncConfig(dg.Config):
    """Run configuration of a source's asset (the Launchpad's ``config``)."""

    full: bool = False
    """Fetch everything and mark cases the source no longer has as deleted (``bridge sync --full``)."""


def asset_key(source: str) -> dg.AssetKey:
    """The asset of the source named ``source`` in bridge.toml: ``bridge/<source>``."""
    return dg.AssetKey([GROUP, source])


def op_name(source: str) -> str:
    """The name of the step that syncs ``source`` (Dagster names allow no ``-``)."""
    return f"sync_{source.replace('-', '_')}"


def definitions_from_config(
    path: str | Path | None = None,
    *,
    cron: str = DEFAULT_CRON,
    timezone: str = DEFAULT_TIMEZONE,
    retry_policy: dg.RetryPolicy = DEFAULT_RETRY_POLICY,
    schedule_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.Definitions:
    """Dagster definitions for every source in ``path`` (default: ``$BRIDGE_CONFIG`` or ``./bridge.toml``).

    One asset per source (``bridge/<source>``, in group ``bridge``), the job ``bridge_sync`` that
    materialises them all, and the schedule ``bridge_nightly_sync`` that runs it at ``cron`` in
    ``timezone``. The schedule starts as ``schedule_status`` says (Dagster's default: stopped
    until someone turns it on). Raises :class:`bridge.errors.ConfigError` for a bad bridge.toml,
    so the code location does not load with a configuration that cannot run.
    """
    config = load_config(Path(path or os.environ.get("BRIDGE_CONFIG") or "bridge.toml"))
    if not config.sources:
        raise ConfigError(f"{config.base_dir / 'bridge.toml'}: no [[sources]] configured, so nothing to schedule")
    steps: dict[str, str] = {}
    for source in config.sources:
        other = steps.setdefault(op_name(source.name), source.name)
        if other != source.name:
            raise ConfigError(
                f"sources {other!r} and {source.name!r} would share the Dagster step {op_name(source.name)!r}; "
                "rename one of them"
            )
    assets = [source_asset(config, source, retry_policy) for source in config.sources]
    job = dg.define_asset_job(
        JOB, selection=dg.AssetSelection.groups(GROUP), description="Sync every configured bridge source."
    )
    schedule = dg.ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=schedule_status,
        description="The nightly sync of every bridge source.",
    )
    return dg.Definitions(assets=assets, jobs=[job], schedules=[schedule])


def source_asset(
    bridge_config: BridgeConfig, source: SourceSettings, retry_policy: dg.RetryPolicy
) -> dg.AssetsDefinition:
    """The asset that syncs ``source`` into the store of ``bridge_config``."""
    key = asset_key(source.name)
    spec = dg.AssetSpec(
        key,
        group_name=GROUP,
        description=f"The cases of {source.municipality_name or source.municipality} from {source.name} "
        f"({source.adapter}), synced into the bridge store.",
        metadata={"source": source.name, "adapter": source.adapter, "municipality": source.municipality},
        kinds={"bridge", source.adapter},
        skippable=True,
    )
    check = dg.AssetCheckSpec(
        QUARANTINE_CHECK, asset=key, description="The run quarantined no record (see `bridge quarantine list`)."
    )

    # can_subset lets a skipped run (lock held) yield neither the asset nor its check.
    @dg.multi_asset(
        name=op_name(source.name), specs=[spec], check_specs=[check], can_subset=True, retry_policy=retry_policy
    )
    def sync_source(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[dg.MaterializeResult[None]]:
        yield from materialise(context, bridge_config, source.name, full=config.full)

    return sync_source


def materialise(
    context: dg.AssetExecutionContext, config: BridgeConfig, source: str, *, full: bool = False
) -> Iterator[dg.MaterializeResult[None]]:
    """Sync ``source`` and tell Dagster the outcome (see the module's table)."""
    key = asset_key(source)
    try:
        opened = bridge.open(config)
    except ConfigError as exc:  # the store cannot be reached: an outage is worth another attempt
        raise dg.Failure(description=f"sync of {source}: {mask_cpr(str(exc))}") from None
    with opened as b:
        before = _newest_run(b, source)
        try:
            run = run_sync(b.store, config, source, full=full)
        except LockHeld as exc:
            context.log.warning(f"{source}: skipped: {exc}")
            context.log_event(dg.AssetObservation(asset_key=key, metadata={"outcome": "skipped", "reason": str(exc)}))
            return
        except (ConfigError, PluginError) as exc:
            raise dg.Failure(
                description=f"sync of {source} cannot start: {mask_cpr(str(exc))}", allow_retries=False
            ) from None
        except Exception as exc:
            raise _failure(b, source, before, exc) from None
    quarantined = run.status == QUARANTINED
    outcome = "quarantined" if quarantined else "succeeded"
    counts = (
        f"fetched {run.fetched}, inserted {run.inserted}, updated {run.updated}, unchanged {run.unchanged}, "
        f"quarantined {run.quarantined}, deleted {run.deleted}"
    )
    if quarantined:
        context.log.warning(
            f"{source}: run {run.id} quarantined {run.quarantined} records ({counts}); "
            f"see `bridge quarantine list --source {source}`"
        )
    else:
        context.log.info(f"{source}: run {run.id} succeeded ({counts})")
    yield dg.MaterializeResult(
        asset_key=key,
        metadata=run_metadata(run, outcome),
        check_results=[
            dg.AssetCheckResult(
                check_name=QUARANTINE_CHECK,
                passed=not quarantined,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"quarantined": dg.MetadataValue.int(run.quarantined), "run_id": _run_id(run)},
            )
        ],
    )


def run_metadata(run: SyncRun, outcome: str) -> dict[str, dg.MetadataValue]:
    """A ledger row as materialisation metadata: counters, duration and run id; no record, no secret."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at is not None else None
    return {
        "outcome": dg.MetadataValue.text(outcome),
        "run_id": _run_id(run),
        "status": dg.MetadataValue.text(run.status),
        "full": dg.MetadataValue.bool(run.full),
        "fetched": dg.MetadataValue.int(run.fetched),
        "inserted": dg.MetadataValue.int(run.inserted),
        "updated": dg.MetadataValue.int(run.updated),
        "unchanged": dg.MetadataValue.int(run.unchanged),
        "quarantined": dg.MetadataValue.int(run.quarantined),
        "deleted": dg.MetadataValue.int(run.deleted),
        "duration_s": dg.MetadataValue.float(duration) if duration is not None else dg.MetadataValue.null(),
    }


def _run_id(run: SyncRun) -> dg.MetadataValue:
    if run.id is None:
        raise ValueError("a ledger row without an id")
    return dg.MetadataValue.int(run.id)


def _failure(b: bridge.Bridge, source: str, before: SyncRun | None, exc: Exception) -> dg.Failure:
    """A retryable failure: the failed run's counters, or why no run began (e.g. the source is unreachable)."""
    failed = _newest_run(b, source)
    if failed is None or (before is not None and failed.id == before.id):
        return dg.Failure(
            description=f"sync of {source} failed before a run began: {mask_cpr(f'{type(exc).__name__}: {exc}')}",
            metadata={"outcome": dg.MetadataValue.text("failed")},
        )
    # The engine ended the run as failed and wrote its reason, masked, to the ledger.
    return dg.Failure(description=f"sync of {source} failed: {failed.error}", metadata=run_metadata(failed, "failed"))


def _newest_run(b: bridge.Bridge, source: str) -> SyncRun | None:
    runs = b.runs(source=source, limit=1)
    return runs[0] if runs else None
