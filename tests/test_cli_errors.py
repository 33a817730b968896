"""Error messages a new user meets: one readable line, no library noise, the right exit code."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from bridge.config import TEMPLATE, load_config, parse_config
from bridge.errors import ConfigError
from bridge.services.periods import Period
from tests.storecheck import bridge_cli


def test_a_reversed_period_says_so_without_pydantic_noise() -> None:
    with pytest.raises(ConfigError) as raised:
        Period.parse("2024-06-30..2023-07-01")
    message = str(raised.value)
    assert message == "period '2024-06-30..2023-07-01' ends before it starts: write the earlier day first"
    for noise in ("pydantic", "https://", "Value error", "validation error"):
        assert noise not in message


def test_configuration_errors_have_no_value_error_prefix(tmp_path: Path) -> None:
    data = {"sources": [{"name": "a", "adapter": "synthetic", "municipality": "46"}], "privacy": {"secret_env": 5}}
    with pytest.raises(ConfigError) as raised:
        parse_config(data, tmp_path)
    assert "Value error" not in str(raised.value)
    assert "sources.0.municipality: String should match pattern '^[0-9]{3}$'" in str(raised.value)


def test_the_init_templates_sbsys_block_works_when_uncommented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = TEMPLATE.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [[sources]]"))
    opened = [*lines[:start], *(line.removeprefix("# ") for line in lines[start:])]
    (tmp_path / "bridge.toml").write_text("\n".join(opened), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", "a-secret-of-some-length")
    monkeypatch.setenv("ODENSE_SBSIP_CLIENT_SECRET", "client-secret")
    config = load_config(tmp_path / "bridge.toml")
    assert [s.adapter for s in config.sources] == ["synthetic", "sbsys"]
    adapter = config.build_adapter(config.source("odense-sbsys"))
    adapter.close()
    assert tomllib.loads("\n".join(opened))["sources"][1]["settings"]["grant_type"] == "client_credentials"


def test_a_missing_config_points_at_the_demo(tmp_path: Path) -> None:
    (tmp_path / "bridge-demo").mkdir()
    (tmp_path / "bridge-demo" / "bridge.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--config .*bridge-demo/bridge\.toml"):
        load_config(tmp_path / "bridge.toml")


SBSYS_SOURCE = """
[[sources]]
name = "first"
adapter = "synthetic"
municipality = "461"

[[sources]]
name = "odense"
adapter = "sbsys"
municipality = "461"
[sources.settings]
base_url = "{url}"
grant_type = "client_credentials"
client_id = "bridge"
client_secret_env = "ODENSE_SECRET"
"""


@pytest.mark.parametrize(
    ("database", "url", "said"),
    [
        ("sqlite:////proc/bridge/bridge.db", "https://sbsip.example", "cannot create the store's directory"),
        ("postgresql://bridge:Hemmelig7@[::1/bridge", "https://sbsip.example", "not a database URL"),
        ("", "http://[::1", "sources.odense.settings.base_url: not a valid URL"),
    ],
)  # fmt: skip
def test_every_configuration_problem_is_one_line_exit_2_before_any_source_runs(
    tmp_path: Path, database: str, url: str, said: str
) -> None:
    (tmp_path / "bridge.toml").write_text(SBSYS_SOURCE.format(url=url), encoding="utf-8")
    env = {"BRIDGE_PERSON_KEY_SECRET": "a-secret-of-some-length", "ODENSE_SECRET": "klient-hemmelighed"}
    if database:
        env["BRIDGE_DATABASE_URL"] = database
    done = bridge_cli("sync", cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert said in json.loads(line)["message"]
    for secret in ("Hemmelig7", "klient-hemmelighed"):
        assert secret not in done.stderr + done.stdout
    assert not (tmp_path / "bridge.db").exists()  # the first source did not run
