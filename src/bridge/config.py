"""Configuration: ``bridge.toml`` plus ``BRIDGE_*`` environment variables.

Secrets never live in the file. An adapter setting written ``<key>_env = "VAR"`` is read
from the environment variable ``VAR``, and ``<key>_file = "/path"`` from a file (as with
container secrets); the adapter sees ``<key>``. Relative paths in the file (secret files,
a SQLite store) are taken from the directory that holds ``bridge.toml``, so a run from cron
finds the same files as a run from that directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bridge.adapter import Adapter, AdapterConfig, SourceContext
from bridge.errors import ConfigError
from bridge.plugins import get_plugins
from bridge.privacy import Pseudonymizer

if TYPE_CHECKING:
    from bridge.synthetic.truth import GroundTruth

DEFAULT_CONFIG = Path("bridge.toml")
_DEFAULT_SECRET_ENV = "BRIDGE_PERSON_KEY_SECRET"


class Environment(BaseSettings):
    """``BRIDGE_*`` environment variables; they win over the file."""

    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore")

    database_url: str | None = None
    person_key_secret: SecretStr | None = None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default: bridge.db beside bridge.toml")


class PrivacySettings(_Section):
    secret_env: str = _DEFAULT_SECRET_ENV
    secret_file: Path | None = None
    store_cpr: bool = False


class SimulatedSource(_Section):
    """``[sources.simulator]``: serve the adapter's simulator on loopback whenever bridge reads the source.

    For the demo and for trying bridge out: ``bridge sync``, ``check`` and ``quarantine replay``
    start the simulator with a synthetic municipality drawn from these numbers, point the
    adapter at it (in place of ``[sources.settings]``), and stop it when done.
    """

    seed: int = 1
    caseworkers: int = Field(default=10, ge=1)
    cases: int | None = Field(default=None, ge=1, description="default: about 20 per caseworker")
    invalid: int = Field(default=0, ge=0, description="cases broken on purpose, to show the quarantine")
    options: dict[str, str] = Field(default_factory=dict, description="simulator knobs, e.g. latency = '0.02'")

    def truth(self, municipality: str) -> GroundTruth:
        """The synthetic municipality this simulator serves."""
        from bridge.synthetic.generate import generate

        return generate(
            self.seed,
            caseworkers=self.caseworkers,
            cases=self.cases,
            invalid=self.invalid,
            municipality_codes=[municipality],
        )


class SourceSettings(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    adapter: str
    municipality: str = Field(pattern=r"^[0-9]{3}$")
    municipality_name: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    simulator: SimulatedSource | None = None


_PROVISION = r"^(SEL|BL) [0-9]+[a-z]?( .+)?$"


class AssignmentSettings(_Section):
    """``[workload.assignment]``: the municipality's own rule for who takes a new case, if any."""

    rule: str | None = Field(default=None, description="a registered assignment rule: birthday, team, or a plugin's")
    settings: dict[str, Any] = Field(default_factory=dict, description="the rule's settings, checked by the rule")


class WorkloadSettings(_Section):
    """``[workload]``: how an open case is weighted (see :mod:`bridge.services.workload`).

    weight = (udsatte / normtal of the case's target group) × (1 + placement if an open measure is a
    placement + the weight of each open measure + notification if one came within notification_days).
    An udsatte case without extras weighs 1, so a load of 40 is the udsatte benchmark.
    """

    udsatte: float = Field(default=40, gt=0, le=1000, description="normtal: cases per caseworker on udsatte")
    handicap: float = Field(default=55, gt=0, le=1000, description="normtal: cases per caseworker on handicap")
    placement: float = Field(default=0.5, ge=0, le=100, description="added when an open measure is a placement")
    placements: list[str] = Field(
        default_factory=lambda: ["SEL 52 stk. 3 nr. 7", "SEL 58", "BL 46", "BL 47"],
        description="the provisions that are placements (anbringelser): act and paragraph",
    )
    measure: float = Field(default=0.1, ge=0, le=100, description="added per open measure")
    measures: dict[str, float] = Field(
        default_factory=dict, description="a weight per open measure by act and paragraph, instead of `measure`"
    )
    notification: float = Field(default=0.5, ge=0, le=100, description="added after a recent notification")
    notification_days: int = Field(default=90, ge=1, le=3650)
    assignment: AssignmentSettings = Field(default_factory=AssignmentSettings)

    @field_validator("placements")
    @classmethod
    def _provisions(cls, value: list[str]) -> list[str]:
        for provision in value:
            _check_provision(provision)
        return value

    @field_validator("measures")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for provision, weight in value.items():
            _check_provision(provision)
            if not 0 <= weight <= 100:
                raise ValueError(f"{provision!r}: a weight is a number from 0 to 100, not {weight}")
        return value


def _check_provision(provision: str) -> None:
    if not re.match(_PROVISION, provision):
        raise ValueError(
            f"{provision!r} is not an act and paragraph; write it as stored, e.g. 'SEL 52 stk. 3 nr. 7' or 'BL 46'"
        )


class BridgeConfig(_Section):
    store: StoreSettings = Field(default_factory=StoreSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), exclude=True)

    def database_url(self) -> str:
        env = Environment()
        if env.database_url:
            return env.database_url
        if self.store.url:
            return _anchor_sqlite(self.store.url, self.base_dir)
        return f"sqlite:///{(self.base_dir / 'bridge.db').resolve()}"

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} in the configuration (sources: {known})")

    def pseudonymizer(self) -> Pseudonymizer:
        """The person-key maker. A missing secret is a configuration error, never a default."""
        secret, origin = self._secret()
        if secret is None:
            raise ConfigError(
                f"no person-key secret: set the environment variable {self.privacy.secret_env} "
                "(or privacy.secret_file in bridge.toml). It keys the pseudonymisation of CPR numbers "
                "and must stay the same for the life of the store."
            )
        try:
            return Pseudonymizer(SecretStr(secret), store_cpr=self.privacy.store_cpr)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from None

    def _secret(self) -> tuple[str | None, str]:
        """The person-key secret and where it was found. An empty variable counts as unset."""
        env = Environment().person_key_secret
        if env is not None and env.get_secret_value():
            return env.get_secret_value(), f"the environment variable {_DEFAULT_SECRET_ENV}"
        if self.privacy.secret_env != _DEFAULT_SECRET_ENV and os.environ.get(self.privacy.secret_env):
            return os.environ[self.privacy.secret_env], f"the environment variable {self.privacy.secret_env}"
        if self.privacy.secret_file is not None:
            path = self.base_dir / self.privacy.secret_file
            return _read_secret_file(path, "privacy.secret_file"), f"privacy.secret_file ({path})"
        return None, ""

    def check_source(self, source: SourceSettings) -> None:
        """Find every configuration problem of ``source`` without reaching it; raises ``ConfigError``.

        The adapter must be installed, its settings valid (URL settings included, which an
        adapter may only parse when it first connects) and the person-key secret set, so a
        multi-source run fails on its configuration before any source runs.
        """
        cls = get_plugins().adapter(source.adapter)
        self.pseudonymizer()
        if source.simulator is None:
            _check_urls(self._adapter_config(source, cls), f"sources.{source.name}.settings")

    def build_adapter(self, source: SourceSettings) -> Adapter:
        """The configured adapter for ``source``, its settings validated against its ``Config``.

        A source with a ``[sources.simulator]`` gets its simulator started on loopback first;
        closing the adapter stops it.
        """
        if source.simulator is not None:
            from bridge.simulation import simulated_adapter

            return simulated_adapter(self, source, source.simulator)
        cls = get_plugins().adapter(source.adapter)
        adapter_config = self._adapter_config(source, cls)
        context = SourceContext(source=source.name, municipality=source.municipality, persons=self.pseudonymizer())
        return cls(adapter_config, context)

    def _adapter_config(self, source: SourceSettings, cls: type[Adapter]) -> AdapterConfig:
        where = f"sources.{source.name}.settings"
        settings = resolve_secret_references(source.settings, where, base_dir=self.base_dir)
        try:
            return cls.Config.model_validate(settings)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, f"the settings of source {source.name!r}", where)) from None


def _check_urls(settings: AdapterConfig, where: str) -> None:
    """Every ``url`` / ``*_url`` setting must be an http(s) URL with a host that httpx can parse.

    A value like ``http://[::1`` passes an adapter's prefix check but fails only when the client
    is made, mid-run; found here it is a configuration error before anything runs.
    """
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not (name == "url" or name.endswith("_url")) or not isinstance(value, str):
            continue
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError):
            # The parser's message can quote parts of the URL, its password among them.
            raise ConfigError(f"{where}.{name}: not a valid URL (check the brackets, port and characters)") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"{where}.{name}: not an http(s) URL with a host")


def _anchor_sqlite(url: str, base_dir: Path) -> str:
    """``url``, with a relative SQLite file path taken from ``base_dir`` instead of the working directory."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError("store.url: not a database URL (e.g. sqlite:///bridge.db)") from None
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or "uri" in parsed.query
        or Path(database).is_absolute()
    ):
        return url
    return parsed.set(database=str((base_dir / database).resolve())).render_as_string(hide_password=False)


def _read_secret_file(path: Path, key: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None


def resolve_secret_references(
    settings: dict[str, Any], where: str, *, base_dir: Path = Path(".")
) -> dict[str, Any]:
    """Replace ``<key>_env`` and ``<key>_file`` settings by the value they point at.

    Nested tables are resolved too. A relative ``_file`` path is taken from ``base_dir``.
    Errors name the key (``where`` is the path of ``settings``, e.g. ``sources.x.settings``)
    and the variable or file, never the secret.
    """
    resolved: dict[str, Any] = {}
    for key, value in settings.items():
        at = f"{where}.{key}"
        suffix = next((end for end in ("_env", "_file") if key.endswith(end)), None)
        if suffix is None:
            nested = isinstance(value, dict)
            resolved[key] = resolve_secret_references(value, at, base_dir=base_dir) if nested else value
            continue
        target = key.removesuffix(suffix)
        holder = "environment variable" if suffix == "_env" else "file"
        if not isinstance(value, str):
            raise ConfigError(f"{at}: must be a string naming the {holder} that holds {target}")
        if target in settings:
            raise ConfigError(f"{at}: {where}.{target} is set as well; give only one of them")
        if suffix == "_file":
            resolved[target] = _read_secret_file(base_dir / value, at)
        elif value in os.environ:
            resolved[target] = os.environ[value]
        else:
            raise ConfigError(f"{at}: the environment variable {value!r} is not set")
    return resolved


def _describe(exc: ValidationError, origin: str, where: str = "") -> str:
    """One line per problem, each naming the key path (``sources.0.municipality``)."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in (*([where] if where else []), *error["loc"]))
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append(f"{location}: {message}" if location else message)
    return f"invalid configuration in {origin}:\n  " + "\n  ".join(problems)


def parse_config(data: dict[str, Any], base_dir: Path, origin: str = "configuration") -> BridgeConfig:
    """Validate configuration ``data`` (a parsed ``bridge.toml``) read from ``base_dir``."""
    if "base_dir" in data:  # a model field filled from the file's location, not a setting
        raise ConfigError(f"invalid configuration in {origin}:\n  base_dir: Extra inputs are not permitted")
    try:
        config = BridgeConfig.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
    names = [s.name for s in config.sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{origin}: source names must be unique; repeated: {', '.join(duplicates)}")
    return config


def load_config(path: Path | None = None) -> BridgeConfig:
    """Read and validate ``bridge.toml``; errors name the file and the bad key."""
    path = path or DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        demo = path.parent / "bridge-demo" / path.name
        hint = (
            f"the demo's is {demo}: `cd {demo.parent}` or give `--config {demo}`"
            if demo.exists()
            else "create one with `bridge init`, or try `bridge demo`"
        )
        raise ConfigError(f"{path}: no such file ({hint})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path.parent.resolve(), str(path))


TEMPLATE = """\
# bridge configuration. Secrets are never written here: name the environment variable
# (`<key>_env = "VAR"`) or a file (`<key>_file = "/run/secrets/x"`) that holds them.

[store]
# SQLAlchemy URL. Default: bridge.db beside this file. The environment variable
# BRIDGE_DATABASE_URL wins, e.g. postgresql+psycopg://bridge@db.example/bridge
# url = "sqlite:///bridge.db"

[privacy]
# CPR numbers are replaced by keyed hashes (person keys). The key comes from this
# environment variable and must stay the same for the life of the store.
secret_env = "BRIDGE_PERSON_KEY_SECRET"
# Keep CPR numbers in the store as well. Off unless you have a documented need.
store_cpr = false

# How open cases are weighted for `bridge workload` and `bridge handover` (the defaults: an
# udsatte case weighs 1, a handicap case 40/55, so 40 is the benchmark load for both).
# [workload]
# placement = 0.5             # added when an open measure is a placement
# measure = 0.1               # added per open measure
# notification = 0.5          # added after a notification within notification_days = 90
# [workload.assignment]       # who takes a new case when no sibling decides: "birthday" or "team"
# rule = "team"
# settings = { udsatte = "Børn og Unge, Myndighed", handicap = "Børn og Unge, Handicap" }

# One [[sources]] block per fagsystem and municipality. `bridge adapters` lists adapters.
[[sources]]
name = "demo"                 # used in `bridge sync demo` and in the run ledger
adapter = "synthetic"         # built-in synthetic source, for trying bridge out
municipality = "461"          # kommunekode
municipality_name = "Odense"

[sources.settings]
seed = 1
caseworkers = 10

# An SB-SYS source (SBSIP Web API). Uncomment, fill in, and set the secret's variable.
# [[sources]]
# name = "odense-sbsys"
# adapter = "sbsys"
# municipality = "461"
# municipality_name = "Odense"
# [sources.settings]
# base_url = "https://sbsip.example.dk"
# grant_type = "client_credentials"      # or "password" with username and password_env
# client_id = "bridge"
# client_secret_env = "ODENSE_SBSIP_CLIENT_SECRET"
"""
