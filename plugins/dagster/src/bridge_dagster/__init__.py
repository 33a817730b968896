"""bridge on Dagster: ``definitions_from_config("bridge.toml")`` gives one asset per configured source.

In a code location (``dagster dev -m my_location``)::

    from bridge_dagster import definitions_from_config

    defs = definitions_from_config("/etc/bridge/bridge.toml")
"""

from bridge_dagster.definitions import (
    DEFAULT_CRON,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEZONE,
    JOB,
    QUARANTINE_CHECK,
    SCHEDULE,
    SyncConfig,
    asset_key,
    definitions_from_config,
    op_name,
)

__all__ = [
    "DEFAULT_CRON",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEZONE",
    "JOB",
    "QUARANTINE_CHECK",
    "SCHEDULE",
    "SyncConfig",
    "asset_key",
    "definitions_from_config",
    "op_name",
]
