"""The sync engine: batches, cursors, upserts, quarantine, run ledger, locking."""

from bridge.sync.engine import BatchDone, SourceOutcome, SyncResult, exit_code, run_sync, sync_sources
from bridge.sync.writer import store_records

__all__ = ["BatchDone", "SourceOutcome", "SyncResult", "exit_code", "run_sync", "store_records", "sync_sources"]
