"""bridge.toml: validation messages that name the key, secret references, the store URL and the person-key secret."""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from bridge.adapter import Adapter, AdapterConfig, Batch
from bridge.config import TEMPLATE, BridgeConfig, load_config, parse_config, resolve_secret_references
from bridge.errors import ConfigError
from bridge.hookspecs import hookimpl
from bridge.plugins import registered

SECRET = "person-key-secret-for-tests"
CLIENT_SECRET = "s3cr3t-client-value"

GOOD = """\
[store]
url = "postgresql+psycopg://bridge@db.example/bridge"

[privacy]
secret_env = "ODENSE_PERSON_KEY"
store_cpr = true

[[sources]]
name = "odense-sbsys"
adapter = "sbsys"
municipality = "461"
municipality_name = "Odense"
[sources.settings]
base_url = "https://sbsip.example.dk"
client_secret_env = "ODENSE_SBSIP_SECRET"

[[sources]]
name = "odense-dubu"
adapter = "dubu"
municipality = "461"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set exactly the BRIDGE_* variables they are about."""
    for name in ("BRIDGE_DATABASE_URL", "BRIDGE_PERSON_KEY_SECRET", "ODENSE_PERSON_KEY"):
        monkeypatch.delenv(name, raising=False)


def write(directory: Path, text: str, name: str = "bridge.toml") -> Path:
    path = directory / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def config_error(directory: Path, text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(write(directory, text))
    return str(raised.value)


def source(**settings: object) -> dict[str, object]:
    return {"name": "vault", "adapter": "test_vault", "municipality": "461", "settings": settings}


# --- load_config --------------------------------------------------------------------------------


def test_a_good_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.base_dir == tmp_path.resolve()
    assert config.store.url == "postgresql+psycopg://bridge@db.example/bridge"
    assert (config.privacy.secret_env, config.privacy.store_cpr, config.privacy.secret_file) == (
        "ODENSE_PERSON_KEY",
        True,
        None,
    )
    assert [s.name for s in config.sources] == ["odense-sbsys", "odense-dubu"]
    sbsys, dubu = config.sources
    assert (sbsys.adapter, sbsys.municipality, sbsys.municipality_name) == ("sbsys", "461", "Odense")
    assert sbsys.settings == {"base_url": "https://sbsip.example.dk", "client_secret_env": "ODENSE_SBSIP_SECRET"}
    assert (dubu.settings, dubu.municipality_name) == ({}, None)
    assert config.source("odense-dubu") is dubu


def test_an_empty_file_is_a_valid_configuration_without_sources(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.sources == []
    assert config.privacy.secret_env == "BRIDGE_PERSON_KEY_SECRET"
    assert config.privacy.store_cpr is False


def test_an_unknown_source_name_lists_the_configured_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no source named 'odense' .*odense-sbsys, odense-dubu"):
        config.source("odense")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "46"\n', "sources.0.municipality"),
        ('[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = 461\n', "sources.0.municipality"),
        ('[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "٤٦١"\n', "sources.0.municipality"),
        ('[[sources]]\nname = "a"\nadapter = "dubu"\n', "sources.0.municipality"),
        ('[[sources]]\nname = "a"\nmunicipality = "461"\n', "sources.0.adapter"),
        ('[[sources]]\nname = "Odense SBSYS"\nadapter = "sbsys"\nmunicipality = "461"\n', "sources.0.name"),
        (
            '[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "461"\n'
            '[[sources]]\nname = "b"\nadapter = "dubu"\nmunicipality = "461"\nmunicipality_name = 7\n',
            "sources.1.municipality_name",
        ),
        ('[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "461"\nbatch_size = 10\n', "sources.0.batch_size"),
        ('[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "461"\nsettings = 3\n', "sources.0.settings"),
        ('[store]\nurll = "sqlite:///x.db"\n', "store.urll"),
        ('[privacy]\nstore_cpr = "maybe"\n', "privacy.store_cpr"),
        ('[privacy]\nsecret = "written-in-the-file"\n', "privacy.secret"),
        ('[stores]\nurl = "sqlite:///x.db"\n', "stores"),
        ('sources = "odense"\n', "sources"),
        ('base_dir = "/etc"\n', "base_dir"),
    ],
)
def test_each_bad_key_is_named_in_the_error(tmp_path: Path, text: str, key: str) -> None:
    message = config_error(tmp_path, text)
    assert str(tmp_path / "bridge.toml") in message
    # The key path stands on a line of its own, followed by what is wrong with it.
    assert any(line.strip().startswith(f"{key}: ") for line in message.splitlines()), message


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[store]\nurll = "x"\n[[sources]]\nname = "a"\nmunicipality = "1"\n')
    keys = [line.strip().split(":")[0] for line in message.splitlines()[1:]]
    assert sorted(keys) == ["sources.0.adapter", "sources.0.municipality", "store.urll"]


def test_a_value_in_a_validation_error_is_not_echoed(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[sources]]\nname = "a"\nadapter = "dubu"\nmunicipality = "0104909989"\n')
    assert "sources.0.municipality" in message
    assert "0104909989" not in message


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    block = '[[sources]]\nname = "{}"\nadapter = "dubu"\nmunicipality = "461"\n'
    message = config_error(tmp_path, block.format("a") + block.format("b") + block.format("a"))
    assert "unique" in message
    assert "repeated: a" in message
    assert "b" not in message.split("repeated:")[1]


def test_a_missing_file_suggests_bridge_init(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "bridge.toml"
    with pytest.raises(ConfigError, match="bridge init") as raised:
        load_config(missing)
    assert str(missing) in str(raised.value)
    assert raised.value.exit_code == 2


def test_the_default_path_is_bridge_toml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^bridge\.toml: no such file"):
        load_config()
    write(tmp_path, GOOD)
    assert load_config().base_dir == tmp_path.resolve()


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[store]\nurl = "sqlite:///x.db"\n[[sources]\nname = "a"\n')
    assert message.startswith(f"{tmp_path / 'bridge.toml'}: not valid TOML")
    assert "line 3" in message


def test_a_directory_in_place_of_the_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bridge.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "bridge.toml")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_bytes('[[sources]]\nname = "a"\nmunicipality_name = "Brøndby"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# --- the template -----------------------------------------------------------------------------------


def test_the_template_parses_and_validates(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(TEMPLATE), tmp_path, "template")
    assert config.privacy.secret_env == "BRIDGE_PERSON_KEY_SECRET"
    assert config.privacy.store_cpr is False
    assert config.store.url is None
    [demo] = config.sources
    assert (demo.name, demo.adapter, demo.municipality) == ("demo", "synthetic", "461")
    assert config.database_url() == f"sqlite:///{tmp_path.resolve() / 'bridge.db'}"


def test_the_templates_commented_sbsys_source_validates_once_uncommented(tmp_path: Path) -> None:
    lines = TEMPLATE.split("# [[sources]]", 1)
    uncommented = lines[0] + "[[sources]]" + "\n".join(line.removeprefix("# ") for line in lines[1].splitlines())
    config = parse_config(tomllib.loads(uncommented), tmp_path, "template")
    assert [s.adapter for s in config.sources] == ["synthetic", "sbsys"]
    assert config.sources[1].settings["client_secret_env"] == "ODENSE_SBSIP_CLIENT_SECRET"


def test_the_template_builds_its_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", SECRET)
    config = load_config(write(tmp_path, TEMPLATE))
    adapter = config.build_adapter(config.source("demo"))
    assert adapter.name == "synthetic"
    assert adapter.context.municipality == "461"


# --- secret references in adapter settings ----------------------------------------------------------


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_password: SecretStr


class VaultConfig(AdapterConfig):
    base_url: str
    client_secret: SecretStr
    port: int = 443
    tls: TlsSettings | None = None


class VaultAdapter(Adapter):
    name = "test_vault"
    Config = VaultConfig
    config: VaultConfig

    def check(self) -> None:
        pass

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        yield Batch()


class VaultPlugin:
    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(VaultAdapter)


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", SECRET)
    with registered(VaultPlugin()):
        yield


def build(config: BridgeConfig) -> VaultAdapter:
    adapter = config.build_adapter(config.sources[0])
    assert isinstance(adapter, VaultAdapter)
    return adapter


@pytest.mark.usefixtures("vault")
def test_env_references_are_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_SECRET", CLIENT_SECRET)
    config = parse_config({"sources": [source(base_url="https://v", client_secret_env="VAULT_SECRET")]}, tmp_path)
    adapter = build(config)
    assert adapter.config.client_secret.get_secret_value() == CLIENT_SECRET
    assert adapter.config.base_url == "https://v"
    assert CLIENT_SECRET not in repr(adapter.config)
    assert (adapter.context.source, adapter.context.municipality) == ("vault", "461")


@pytest.mark.usefixtures("vault")
def test_file_references_are_read_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "client").write_text(f"{CLIENT_SECRET}\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
        [[sources]]
        name = "vault"
        adapter = "test_vault"
        municipality = "461"
        [sources.settings]
        base_url = "https://v"
        client_secret_file = "secrets/client"
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as from cron: the working directory is not the file's
    adapter = build(load_config(path))
    assert adapter.config.client_secret.get_secret_value() == CLIENT_SECRET  # the newline is stripped


@pytest.mark.usefixtures("vault")
def test_references_in_nested_tables_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("VAULT_TLS_PASSWORD", "tls-pass")
    settings = {"base_url": "b", "client_secret_env": "VAULT_SECRET", "tls": {"key_password_env": "VAULT_TLS_PASSWORD"}}
    adapter = build(parse_config({"sources": [source(**settings)]}, tmp_path))
    assert adapter.config.tls is not None
    assert adapter.config.tls.key_password.get_secret_value() == "tls-pass"


@pytest.mark.usefixtures("vault")
def test_a_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_SECRET_MISSING", raising=False)
    config = parse_config({"sources": [source(base_url="b", client_secret_env="VAULT_SECRET_MISSING")]}, tmp_path)
    with pytest.raises(ConfigError) as raised:
        build(config)
    message = str(raised.value)
    assert "sources.vault.settings.client_secret_env" in message
    assert "'VAULT_SECRET_MISSING' is not set" in message


@pytest.mark.usefixtures("vault")
def test_a_missing_settings_file_is_named(tmp_path: Path) -> None:
    config = parse_config({"sources": [source(base_url="b", client_secret_file="nope/client")]}, tmp_path)
    with pytest.raises(ConfigError, match=r"sources\.vault\.settings\.client_secret_file: cannot read .*nope/client"):
        build(config)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"token_env": 5}, r"x\.token_env: must be a string naming the environment variable that holds token"),
        ({"token_file": ["a"]}, r"x\.token_file: must be a string naming the file that holds token"),
        ({"token": "t", "token_env": "VAULT_SECRET"}, r"x\.token_env: x\.token is set as well"),
        ({"nested": {"token_env": 1}}, r"x\.nested\.token_env: must be a string"),
    ],
)
def test_malformed_references_are_config_errors(
    settings: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_SECRET", CLIENT_SECRET)
    with pytest.raises(ConfigError, match=message):
        resolve_secret_references(settings, "x")


def test_settings_without_references_pass_through() -> None:
    settings = {"base_url": "https://v", "page_size": 50, "paths": ["a", "b"], "nested": {"flag": True}}
    assert resolve_secret_references(settings, "x") == settings


@pytest.mark.usefixtures("vault")
def test_invalid_adapter_settings_name_the_key_and_hide_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_PORT", CLIENT_SECRET)  # a secret in the wrong variable must not be printed
    settings = {"client_secret_env": "VAULT_PORT", "port_env": "VAULT_PORT", "extra_key": 1}
    config = parse_config({"sources": [source(**settings)]}, tmp_path)
    with pytest.raises(ConfigError) as raised:
        build(config)
    message = str(raised.value)
    for key in ("sources.vault.settings.base_url", "sources.vault.settings.port", "sources.vault.settings.extra_key"):
        assert f"{key}: " in message
    assert CLIENT_SECRET not in message


def test_an_unknown_adapter_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", SECRET)
    config = parse_config({"sources": [source()]}, tmp_path)
    with pytest.raises(ConfigError, match="no adapter named 'test_vault' is installed"):
        config.build_adapter(config.sources[0])


# --- the store URL --------------------------------------------------------------------------------


def test_database_url_defaults_to_bridge_db_beside_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "")
    monkeypatch.chdir("/")
    assert load_config(path).database_url() == f"sqlite:///{tmp_path.resolve()}/bridge.db"


def test_store_url_wins_over_the_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.database_url() == "postgresql+psycopg://bridge@db.example/bridge"


def test_the_environment_wins_over_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_DATABASE_URL", "postgresql+psycopg://env@127.0.0.1/env")
    assert load_config(write(tmp_path, GOOD)).database_url() == "postgresql+psycopg://env@127.0.0.1/env"
    assert load_config(write(tmp_path, "", "empty.toml")).database_url() == "postgresql+psycopg://env@127.0.0.1/env"


def test_an_empty_environment_variable_does_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_DATABASE_URL", "")
    assert load_config(write(tmp_path, GOOD)).database_url() == "postgresql+psycopg://bridge@db.example/bridge"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/bridge.db", "sqlite:///{dir}/data/bridge.db"),
        ("sqlite:///bridge.db?timeout=30", "sqlite:///{dir}/bridge.db?timeout=30"),
        ("sqlite:////var/lib/bridge/bridge.db", "sqlite:////var/lib/bridge/bridge.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u:p@db/bridge", "postgresql+psycopg://u:p@db/bridge"),
    ],
)
def test_a_relative_sqlite_store_url_is_taken_from_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    path = write(tmp_path, f'[store]\nurl = "{url}"\n')
    monkeypatch.chdir("/")
    assert load_config(path).database_url() == expected.format(dir=tmp_path.resolve())


def test_a_store_url_that_is_no_url_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[store]\nurl = "bridge.db"\n'))
    with pytest.raises(ConfigError, match=r"store\.url: not a database URL"):
        config.database_url()


# --- the person-key secret ------------------------------------------------------------------------


def expected_key(secret: str, digits: str) -> str:
    return hmac.new(secret.encode(), f"person:{digits}".encode(), hashlib.sha256).hexdigest()[:32]


def test_a_missing_secret_names_the_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="set the environment variable BRIDGE_PERSON_KEY_SECRET") as raised:
        config.pseudonymizer()
    assert raised.value.exit_code == 2


def test_a_missing_secret_names_the_configured_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODENSE_PERSON_KEY", "")  # set but empty is as good as missing
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="set the environment variable ODENSE_PERSON_KEY"):
        config.pseudonymizer()


def test_an_empty_bridge_secret_is_missing_not_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", "")
    with pytest.raises(ConfigError, match="no person-key secret"):
        load_config(write(tmp_path, "")).pseudonymizer()


def test_a_short_secret_is_refused_without_showing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", "hunter2")
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "")).pseudonymizer()
    message = str(raised.value)
    assert "BRIDGE_PERSON_KEY_SECRET" in message
    assert "at least 8" in message
    assert "hunter2" not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_the_secret_from_the_environment_keys_persons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", SECRET)
    persons = load_config(write(tmp_path, "")).pseudonymizer()
    person = persons.person("010490-9989")
    assert person.key == expected_key(SECRET, "0104909989")
    assert person.cpr is None


def test_a_configured_variable_and_store_cpr_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODENSE_PERSON_KEY", "odense-secret")
    person = load_config(write(tmp_path, GOOD)).pseudonymizer().person("0104909989")
    assert person.key == expected_key("odense-secret", "0104909989")
    assert person.cpr == "0104909989"


def test_the_secret_file_is_read_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "person-key.secret").write_text("file-secret-value\n", encoding="utf-8")
    path = write(tmp_path, '[privacy]\nsecret_file = "person-key.secret"\n')
    monkeypatch.chdir("/")
    assert load_config(path).pseudonymizer().person("0104909989").key == expected_key("file-secret-value", "0104909989")


def test_a_missing_person_key_file_is_named(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[privacy]\nsecret_file = "person-key.secret"\n'))
    with pytest.raises(ConfigError, match=r"privacy\.secret_file: cannot read .*person-key\.secret"):
        config.pseudonymizer()


def test_an_empty_secret_file_is_refused_and_named(tmp_path: Path) -> None:
    (tmp_path / "person-key.secret").write_text("\n", encoding="utf-8")
    config = load_config(write(tmp_path, '[privacy]\nsecret_file = "person-key.secret"\n'))
    with pytest.raises(ConfigError, match=r"privacy\.secret_file .*at least 8"):
        config.pseudonymizer()


def test_secret_precedence_bridge_variable_then_configured_variable_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_text("from-the-file", encoding="utf-8")
    config = load_config(write(tmp_path, '[privacy]\nsecret_env = "ODENSE_PERSON_KEY"\nsecret_file = "key"\n'))

    def key() -> str:
        return config.pseudonymizer().person("0104909989").key

    assert key() == expected_key("from-the-file", "0104909989")
    monkeypatch.setenv("ODENSE_PERSON_KEY", "from-odense-variable")
    assert key() == expected_key("from-odense-variable", "0104909989")
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", "from-bridge-variable")
    assert key() == expected_key("from-bridge-variable", "0104909989")
