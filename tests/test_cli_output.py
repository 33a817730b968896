"""What the CLI writes: outside text is never read as markup, cron gets only JSON lines on stderr,
``--format json`` gives a result for failures too, and ``--version``."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.cli import output as cli_output
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync import ledger
from bridge.synthetic.adapter import SyntheticConfig
from tests.conftest import TEST_SECRET
from tests.leakscan import LeakScan
from tests.storecheck import bridge_cli
from tests.test_cli_sync import env_for

OUTSIDE = "HTTP 403 Forbidden [/policy] from [bold]proxy[/] — pattern ^[a-z0-9]$"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stdout and stderr as a colour terminal, both written into one buffer."""
    screen = io.StringIO()
    for name, stderr in (("console", False), ("err_console", True)):
        monkeypatch.setattr(
            cli_output, name, cli_output.make_console(stderr=stderr, file=screen, force_terminal=True, width=200)
        )
    monkeypatch.setattr(cli_output.mode, "json_lines", False)
    monkeypatch.setattr(cli_output.mode, "json_result", False)
    return screen


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as ended:
        main(args)
    return int(ended.value.code or 0)


def _plain(screen: io.StringIO) -> str:
    """The screen without colour codes."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())


def test_failure_messages_keep_their_brackets(terminal: io.StringIO) -> None:
    cli_output.fail(OUTSIDE)
    cli_output.notice(OUTSIDE, label="failed")
    assert _plain(terminal).count(OUTSIDE) == 2


def test_a_log_line_on_a_terminal_keeps_its_brackets(terminal: io.StringIO) -> None:
    # A run's failure is logged with the server's reason phrase in it, e.g. "403 Forbidden [/policy]".
    cli_output.configure_logging(False, json_lines=False)
    try:
        logging.getLogger("bridge.sync").error("sync of x failed (run 1): %s", OUTSIDE)
    finally:
        cli_output.configure_logging(False)
    assert OUTSIDE in _plain(terminal)


def test_a_source_named_like_markup_is_a_usage_error_not_a_traceback(
    terminal: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bridge.toml").write_text(
        '[[sources]]\nname = "a"\nadapter = "synthetic"\nmunicipality = "461"\n', encoding="utf-8"
    )
    assert _run(["sync", "[/bold]"]) == 2
    assert "[/bold]" in _plain(terminal)
    assert "Traceback" not in _plain(terminal)


def test_runs_shows_a_stored_error_that_looks_like_markup(
    terminal: io.StringIO, store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = ledger.start_run(store, "odense", full=False, cursor=None)
    ledger.finish_run(store, run_id, ledger.FAILED, error=OUTSIDE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    assert _run(["runs"]) == 0
    assert OUTSIDE in _plain(terminal)
    assert "odense" in _plain(terminal)


def test_version() -> None:
    done = bridge_cli("--version", cwd=Path.cwd(), env={})
    assert done.returncode == 0
    assert done.stdout.strip() == "bridge 0.1.0"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


CONFIG = """
[[sources]]
name = "good"
adapter = "synthetic"
municipality = "461"
[sources.settings]
seed = 5
caseworkers = 2
invalid = 2

[[sources]]
name = "down"
adapter = "sbsys"
municipality = "751"
[sources.settings]
base_url = "http://127.0.0.1:{port}"
grant_type = "client_credentials"
client_id = "bridge"
client_secret_env = "DOWN_SECRET"
max_attempts = 1
"""


def test_under_cron_stderr_is_json_lines_and_a_failed_source_has_its_json_result(
    store: Store, store_url: str, tmp_path: Path, persons: Pseudonymizer, leak_scan: LeakScan
) -> None:
    (tmp_path / "bridge.toml").write_text(CONFIG.format(port=_closed_port()), encoding="utf-8")
    env = {**env_for(store_url), "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET, "DOWN_SECRET": "s3cret-value"}
    leak_scan.forbid_truth(SyntheticConfig(seed=5, caseworkers=2, invalid=2).truth("461"), persons)
    leak_scan.forbid("s3cret-value", TEST_SECRET)
    leak_scan.watch(store)
    done = bridge_cli("sync", "--format", "json", cwd=tmp_path, env=env)
    leak_scan.said("stdout", done.stdout)
    leak_scan.said("stderr", done.stderr)
    assert done.returncode == 1, done.stderr
    result = {r["source"]: r for r in json.loads(done.stdout)}
    assert result["down"]["status"] == "failed"
    assert "127.0.0.1" in result["down"]["error"]
    assert result["good"]["status"] == "quarantined"
    assert result["good"]["inserted"] > 0
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON, or this fails
    assert lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    finished = {line["source"]: line for line in lines if line.get("status") in ("failed", "quarantined")}
    assert set(finished) == {"good", "down"}
    for line in finished.values():
        assert {"run_id", "source", "status", "fetched", "inserted", "updated", "unchanged", "quarantined",
                "deleted", "duration_s"} <= set(line)  # fmt: skip
    assert finished["good"]["run_id"] == result["good"]["run"]
    assert finished["good"]["inserted"] == result["good"]["inserted"]
    assert "s3cret-value" not in done.stderr + done.stdout

    checked = bridge_cli("check", "--format", "json", cwd=tmp_path, env=env)
    assert checked.returncode == 1
    assert {c["source"]: c["status"] for c in json.loads(checked.stdout)} == {"good": "ok", "down": "failed"}
    said = [json.loads(line) for line in checked.stderr.splitlines()]  # the ok/failed lines are JSON too
    assert {(line.get("source"), line.get("status")) for line in said} >= {("good", "ok"), ("down", "failed")}


def test_a_usage_error_under_cron_is_a_json_line_and_a_json_result(tmp_path: Path) -> None:
    done = bridge_cli("--format", "json", "runs", "--no-such-option", cwd=tmp_path, env={})
    assert done.returncode == 2
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["level"] == "error"
    assert "--no-such-option" in line["message"]
    assert json.loads(done.stdout) == {"status": "error", "error": line["message"], "exit_code": 2}


def test_progress_knows_the_total_when_the_source_says(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.config import parse_config
    from bridge.sync import BatchDone, run_sync

    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", TEST_SECRET)
    settings = {"seed": 3, "caseworkers": 2, "page_size": 10}
    source = {"name": "syn", "adapter": "synthetic", "municipality": "461", "settings": settings}
    config = parse_config({"sources": [source]}, tmp_path)
    seen: list[BatchDone] = []
    run = run_sync(store, config, "syn", on_batch=seen.append)
    assert len(seen) > 2
    assert {done.expected for done in seen} == {run.fetched}
    assert seen[-1].fetched == run.fetched
