"""The sync engine: batches, cursors, upserts, quarantine, run ledger, locking."""

from bridge.sync.engine import BatchDone, exit_code, run_sync
from bridge.sync.writer import store_records

__all__ = ["BatchDone", "exit_code", "run_sync", "store_records"]
