"""Reading the store back (now :mod:`bridge.testing.storecheck`), and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bridge.testing.storecheck import CONTENT_TABLES, dump, hashes, stored_records

__all__ = ["CONTENT_TABLES", "bridge_cli", "dump", "hashes", "stored_records"]


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
