"""Every command and code example in README.md runs against the demo's store.

The demo is run once (as ``make demo`` does); then each ``sh`` block is run line by line as a
new user would type it, with ``.venv/bin`` on PATH as the README says, each ``python`` block
is run as a script in the demo's folder, and each ``toml`` block is loaded as a configuration.
A line may say the exit code it ends with (``# exit 4``); any other code fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
# `make demo` is what the fixture runs (as `bridge demo`); `make test` is this test suite itself.
NOT_HERE = ("make ",)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text(encoding="utf-8")) if lang == language]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a new user is in after `make demo`: the repository root with bridge-demo/ in it."""
    home = tmp_path_factory.mktemp("readme")
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--dir", str(home / "bridge-demo")],
        cwd=home, env=_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "matches" in done.stdout
    assert "Next steps" in done.stdout
    return home


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _commands() -> list[str]:
    lines = [line.strip() for body in blocks("sh") for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_has_examples_to_run() -> None:
    assert len(_commands()) >= 10
    assert blocks("python")
    assert blocks("toml")


def test_every_command_in_the_readme_runs(demo: Path) -> None:
    cwd = demo
    for line in _commands():
        if line.startswith(NOT_HERE):
            continue
        command, _, comment = line.partition("#")
        wanted = re.search(r"\bexit (\d)", comment)
        words = shlex.split(command)
        if words[0] == "cd":
            cwd = cwd / words[1]
            continue
        if words[0] == "export":
            continue  # PATH: the test puts .venv/bin on it, as this line does
        done = subprocess.run(
            command, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600, check=False
        )
        expected = int(wanted[1]) if wanted else 0
        assert done.returncode == expected, f"{line!r} in {cwd}: exit {done.returncode}\n{done.stderr[-3000:]}"


def test_the_library_examples_run_in_the_demo(demo: Path) -> None:
    for code in blocks("python"):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=demo / "bridge-demo", env=_env(), capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, code + "\n" + done.stderr[-3000:]


def test_the_configuration_examples_are_valid(tmp_path: Path) -> None:
    import tomllib

    for body in blocks("toml"):
        parse_config(tomllib.loads(body), tmp_path, origin="README.md")
