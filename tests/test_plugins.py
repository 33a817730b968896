"""The plugin system: hooks, the register callback, entry points and the allow-list."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from bridge import hookspecs
from bridge.adapter import Adapter, AdapterConfig, Batch
from bridge.config import parse_config
from bridge.errors import ConfigError, PluginError
from bridge.hookspecs import hookimpl
from bridge.plugins import (
    ALLOW_LIST_ENV,
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    get_plugins,
    make_plugin_manager,
    registered,
)
from bridge.privacy import Pseudonymizer
from bridge.reports.formats import Report, ReportFormat, Table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"
TEST_SOURCES = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "plugins").glob("*/tests/**/*.py")]
PLUGIN_ENTRY_POINTS = {
    "dubu": "bridge_dubu.adapter",
    "csc_social": "bridge_csc_social.adapter",
    "sbsys": "bridge_sbsys.adapter",
}

HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("bridge_"))


# --- every hook is documented and tested -------------------------------------------------------


def test_hookspecs_declare_hooks() -> None:
    assert "bridge_register_adapters" in HOOKS
    assert "bridge_register_report_formats" in HOOKS
    for name in HOOKS:  # each is a real hook specification, not just a function
        assert getattr(make_plugin_manager().hook, name).has_spec()


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_states_its_contract(hook: str) -> None:
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    assert len(doc.split()) >= 20, f"{hook} needs a docstring that states its contract"
    for parameter in inspect.signature(fn).parameters:
        assert parameter in doc, f"the docstring of {hook} does not say what {parameter!r} is"
    assert re.search(r"return", doc, re.IGNORECASE), f"the docstring of {hook} does not say what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_in_the_plugin_docs(hook: str) -> None:
    headings = re.findall(r"^#{2,4} .*$", DOCS.read_text(encoding="utf-8"), re.MULTILINE)
    assert any(f"`{hook}(" in heading for heading in headings), f"docs/plugins.md has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_by_a_test(hook: str) -> None:
    implementing = [p for p in TEST_SOURCES if re.search(rf"^\s*def {hook}\(", p.read_text(encoding="utf-8"), re.M)]
    assert implementing, f"no test implements {hook}"


# --- test plugins ---------------------------------------------------------------------------------


class Unnamed(Adapter):
    """A complete adapter but for its name."""

    def check(self) -> None:
        pass

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        yield Batch(cursor="end")


class ProbeAdapter(Unnamed):
    name = "probe"
    description = "an adapter that exists only in this test"


@dataclass(eq=False)  # pluggy tells plugins apart by equality: two instances are two plugins
class AdapterPlugin:
    """A plugin object registering the given adapters (or anything else) through the callback."""

    things: tuple[Any, ...]

    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        for thing in self.things:
            register(thing)


def adapters_from(*things: Any) -> dict[str, Any]:
    with registered(AdapterPlugin(things)) as plugins:
        return plugins.adapters()


def test_a_plugin_registered_in_a_test_shows_up_and_is_gone_after() -> None:
    assert "probe" not in get_plugins().adapters()
    with registered(AdapterPlugin((ProbeAdapter,))) as plugins:
        assert plugins is get_plugins()
        info = get_plugins().adapters()["probe"]
        assert info.adapter is ProbeAdapter
        assert info.description == "an adapter that exists only in this test"
        assert get_plugins().adapter("probe") is ProbeAdapter
    assert "probe" not in get_plugins().adapters()
    with pytest.raises(ConfigError, match="no adapter named 'probe'"):
        get_plugins().adapter("probe")


def test_registered_unregisters_even_when_the_block_fails() -> None:
    plugin = AdapterPlugin((ProbeAdapter,))
    with pytest.raises(RuntimeError), registered(plugin):
        raise RuntimeError("boom")
    assert not get_plugins().pm.is_registered(plugin)
    assert "probe" not in get_plugins().adapters()


def test_a_plugin_module_registers_too() -> None:
    module = ModuleType("probe_plugin_module")

    @hookimpl
    def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
        register(ProbeAdapter)

    module.bridge_register_adapters = bridge_register_adapters  # type: ignore[attr-defined]
    with registered(module):
        assert get_plugins().adapters()["probe"].adapter is ProbeAdapter
    assert "probe" not in get_plugins().adapters()


def test_registering_a_non_adapter_is_refused() -> None:
    class NotAnAdapter:
        name = "nope"

    with pytest.raises(PluginError, match=r"NotAnAdapter.*does not subclass bridge\.adapter\.Adapter"):
        adapters_from(NotAnAdapter)
    with pytest.raises(PluginError, match="does not subclass"):
        adapters_from(ProbeAdapter(AdapterConfig(), None))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [None, "", "Probe", "probe-adapter", "1probe", "probe adapter", 42])
def test_an_adapter_without_a_valid_name_is_refused(name: object) -> None:
    attributes: dict[str, object] = {"__module__": __name__} | ({} if name is None else {"name": name})
    nameless = type("Nameless", (Unnamed,), attributes)
    with pytest.raises(PluginError, match=r"test_plugins\.Nameless needs a lower-case `name`"):
        adapters_from(nameless)


def test_an_adapter_without_a_pydantic_config_is_refused() -> None:
    class BadConfig(ProbeAdapter):
        name = "bad_config"
        Config = dict  # type: ignore[assignment]

    with pytest.raises(PluginError, match=r"'bad_config' .* needs a pydantic `Config`"):
        adapters_from(BadConfig)


def test_an_adapter_that_leaves_out_abstract_methods_is_refused() -> None:
    class Unfinished(Adapter):
        name = "unfinished"

        def check(self) -> None:
            pass

    with pytest.raises(PluginError, match=r"'unfinished' .*Unfinished.* does not implement fetch"):
        adapters_from(Unfinished)


@pytest.mark.parametrize("declared", ["bridge_x.simulator", "not a path:sim", ":simulate", 42])
def test_an_adapter_declaring_a_malformed_simulator_is_refused(declared: object) -> None:
    class Simulated(ProbeAdapter):
        name = "simulated"
        simulator = declared  # type: ignore[assignment]

    with pytest.raises(PluginError, match=r"'simulated' .*declares simulator"):
        adapters_from(Simulated)


def test_two_adapters_with_the_same_name_are_refused() -> None:
    class Twin(ProbeAdapter):
        pass  # inherits name "probe"

    with pytest.raises(PluginError, match="registered twice") as raised:
        adapters_from(ProbeAdapter, Twin)
    message = str(raised.value)
    assert "'probe'" in message
    assert "ProbeAdapter" in message
    assert "Twin" in message


def test_two_plugins_registering_the_same_name_are_refused() -> None:
    with (
        registered(AdapterPlugin((ProbeAdapter,))),
        registered(AdapterPlugin((ProbeAdapter,))),
        pytest.raises(PluginError, match="adapter name 'probe' is registered twice"),
    ):
        get_plugins().adapters()
    assert "probe" not in get_plugins().adapters()


def test_an_adapter_name_taken_by_an_installed_adapter_is_refused() -> None:
    clash = type("Clash", (ProbeAdapter,), {"name": "synthetic"})
    with pytest.raises(PluginError, match=r"'synthetic' is registered twice") as refused:
        adapters_from(clash)
    # pluggy calls the newest plugin first, so name both sides without assuming an order
    assert "bridge.synthetic.adapter.SyntheticAdapter" in str(refused.value)
    assert "Clash" in str(refused.value)


def test_a_misspelt_hook_is_an_error_and_leaves_nothing_registered() -> None:
    class Misspelt:
        @hookimpl
        def bridge_register_adapter(self, register: Callable[[type[Adapter]], None]) -> None:
            register(ProbeAdapter)

    plugin = Misspelt()
    with pytest.raises(PluginError, match="bridge_register_adapter"), registered(plugin):
        pass
    assert not get_plugins().pm.is_registered(plugin)
    get_plugins().pm.check_pending()  # the manager is left clean for everyone else


def test_a_hook_with_an_unknown_parameter_is_an_error() -> None:
    class WrongParameter:
        @hookimpl
        def bridge_register_adapters(self, register: Callable[[type[Adapter]], None], extra: int) -> None:
            register(ProbeAdapter)

    with pytest.raises(PluginError, match="extra"), registered(WrongParameter()):
        pass


def test_registering_the_same_plugin_twice_is_an_error() -> None:
    plugin = AdapterPlugin((ProbeAdapter,))
    with registered(plugin), pytest.raises(PluginError, match="cannot be registered"), registered(plugin):
        pass
    assert not get_plugins().pm.is_registered(plugin)


# --- adapter info: distribution and version ----------------------------------------------------


def test_an_adapter_defined_outside_any_distribution_says_so() -> None:
    info = adapters_from(ProbeAdapter)["probe"]
    assert (info.distribution, info.version) == ("(not installed)", "-")


def test_an_adapter_shipped_in_the_bridge_distribution_reports_bridge_and_its_version() -> None:
    shipped = type("Shipped", (ProbeAdapter,), {"__module__": "bridge.synthetic.shipped", "name": "shipped"})
    info = adapters_from(shipped)["shipped"]
    assert info.distribution == "bridge"
    assert info.version == importlib.metadata.version("bridge")


def test_the_builtin_synthetic_adapter_reports_bridge_and_its_version() -> None:
    info = get_plugins().adapters()["synthetic"]
    assert info.distribution == "bridge"
    assert info.version == importlib.metadata.version("bridge")
    assert info.adapter.__module__ == "bridge.synthetic.adapter"
    assert info.description


# --- report formats ---------------------------------------------------------------------------------


class Plain:
    name = "test_plain"
    suffix = "txt"

    def render(self, report: Report) -> bytes:
        return "\n".join(t.title for t in report.tables).encode()


@dataclass(eq=False)
class FormatPlugin:
    formats: tuple[Any, ...]

    @hookimpl
    def bridge_register_report_formats(self, register: Callable[[ReportFormat], None]) -> None:
        for fmt in self.formats:
            register(fmt)


def test_report_formats_register_through_the_callback() -> None:
    fmt = Plain()
    with registered(FormatPlugin((fmt,))):
        formats = get_plugins().report_formats()
        assert formats["test_plain"] is fmt
        report = Report(kind="test", title="t", tables=[Table("one", ["a"], [[1]]), Table("two", ["b"], [])])
        assert formats["test_plain"].render(report) == b"one\ntwo"
    assert "test_plain" not in get_plugins().report_formats()


def test_duplicate_report_format_names_are_refused() -> None:
    with (
        pytest.raises(PluginError, match="report format name 'test_plain' is registered twice"),
        registered(FormatPlugin((Plain(), Plain()))),
    ):
        get_plugins().report_formats()


@pytest.mark.parametrize("missing", ["name", "suffix", "render"])
def test_an_incomplete_report_format_is_refused(missing: str) -> None:
    members: dict[str, Any] = {"name": "test_partial", "suffix": "txt", "render": Plain.render}
    del members[missing]
    partial = type("Partial", (), members)()
    with pytest.raises(PluginError, match="is not a report format"), registered(FormatPlugin((partial,))):
        get_plugins().report_formats()


# --- entry points and the allow-list -------------------------------------------------------------


def entry_point_plugins(pm: Any) -> set[str]:
    return {name for name, _ in pm.list_name_plugin() if name not in BUILTIN_PLUGINS}


def test_the_three_adapter_distributions_advertise_entry_points() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert found.items() >= PLUGIN_ENTRY_POINTS.items()


def test_without_an_allow_list_every_entry_point_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_LIST_ENV, raising=False)
    pm = make_plugin_manager()
    assert entry_point_plugins(pm) >= set(PLUGIN_ENTRY_POINTS)
    assert all(pm.get_plugin(name) is not None for name in BUILTIN_PLUGINS)


def test_the_allow_list_loads_only_the_entry_points_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_LIST_ENV, " sbsys , not_installed ")
    for module in ("bridge_dubu.adapter", "bridge_csc_social.adapter"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    pm = make_plugin_manager()
    assert entry_point_plugins(pm) == {"sbsys"}
    assert pm.get_plugin("sbsys") is sys.modules["bridge_sbsys.adapter"]
    # Left out means not even imported: a distrusted plugin runs no code.
    assert "bridge_dubu.adapter" not in sys.modules
    assert "bridge_csc_social.adapter" not in sys.modules
    assert all(pm.get_plugin(name) is not None for name in BUILTIN_PLUGINS)


def test_an_empty_allow_list_loads_no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_LIST_ENV, "")
    pm = make_plugin_manager()
    assert entry_point_plugins(pm) == set()
    assert all(pm.get_plugin(name) is not None for name in BUILTIN_PLUGINS)


def test_a_missing_adapter_message_names_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_LIST_ENV, "dubu")
    with pytest.raises(ConfigError, match=f"no adapter named 'casefile'.*{ALLOW_LIST_ENV}='dubu'"):
        get_plugins().adapter("casefile")


@dataclass
class FakeEntryPoint:
    """What the plugin loader reads of an entry point."""

    name: str
    value: str
    target: Callable[[], object]
    group: ClassVar[str] = ENTRY_POINT_GROUP

    def load(self) -> object:
        return self.target()


def with_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> None:
    monkeypatch.delenv(ALLOW_LIST_ENV, raising=False)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps if group == ENTRY_POINT_GROUP else ())


def test_an_entry_point_that_fails_to_import_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise ImportError("No module named 'bridge_nexus_deps'")

    with_entry_points(monkeypatch, FakeEntryPoint("nexus", "bridge_nexus.adapter", broken))
    with pytest.raises(PluginError, match=r"plugin 'nexus' \(bridge_nexus\.adapter\) failed to load: No module"):
        make_plugin_manager()


def test_an_entry_point_with_a_misspelt_hook_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    typo = ModuleType("bridge_typo")
    typo.bridge_register_adaptors = hookimpl(lambda register: None)  # type: ignore[attr-defined]
    with_entry_points(monkeypatch, FakeEntryPoint("typo", "bridge_typo", lambda: typo))
    with pytest.raises(PluginError, match="'typo' implements a hook bridge does not have"):
        make_plugin_manager()


def test_entry_point_plugins_are_registered_under_their_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = AdapterPlugin((ProbeAdapter,))
    with_entry_points(monkeypatch, FakeEntryPoint("probe_dist", "probe_dist:plugin", lambda: plugin))
    pm = make_plugin_manager()
    assert pm.get_plugin("probe_dist") is plugin


# --- the documented example runs ----------------------------------------------------------------


def example_module(tmp_path: Path) -> ModuleType:
    """The adapter module printed in docs/plugins.md, imported from the page's text."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- example-module -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "docs/plugins.md lost its example module"
    path = tmp_path / "casefile_example.py"
    path.write_text(found.group(1), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("casefile_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["casefile_example"] = module  # dataclass and pydantic look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["casefile_example"]
    return module


def test_the_documented_example_adapter_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "doc-example-secret"
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", secret)
    export = tmp_path / "cases.json"
    row = {
        "case_number": "27.24.00-G01-1-24",
        "kle": "27.24.00",
        "target_group": "udsatte",
        "opened": "2024-02-01",
        "closed": None,
    }
    rows = [
        {
            **row,
            "id": 2,
            "cpr": "020315-4002",
            "guardians": ["010185-1234", "000000-0000"],
            "modified": "2024-03-02T08:00:00+00:00",
        },
        {
            **row,
            "id": 1,
            "cpr": "010315-4001",
            "guardians": ["000000-0000", "010185-1234"],
            "modified": "2024-03-01T08:00:00+00:00",
        },
        {**row, "id": 3, "cpr": "310215-4003", "modified": "2024-03-03T08:00:00+00:00"},  # 31 February
        {**row, "id": 4, "cpr": "040316-4004", "closed": "2024-05-01", "modified": "2024-03-04T08:00:00+00:00"},
    ]
    export.write_text(json.dumps(rows), encoding="utf-8")
    config = parse_config(
        {
            "sources": [
                {
                    "name": "doc",
                    "adapter": "casefile",
                    "municipality": "461",
                    "settings": {"export": str(export), "batch_size": 2},
                }
            ]
        },
        tmp_path,
    )
    persons = Pseudonymizer(SecretStr(secret))
    with registered(example_module(tmp_path)) as plugins:
        assert plugins.adapters()["casefile"].description
        adapter = config.build_adapter(config.source("doc"))
        adapter.check()
        batches = list(adapter.fetch(None))
        resumed = list(adapter.fetch(batches[0].cursor))
    assert "casefile" not in get_plugins().adapters()

    assert [len(b.records) + len(b.rejections) for b in batches] == [2, 2]
    records = [r for b in batches for r in b.records]
    assert [r.source_ref for r in records] == ["1", "2", "4"]
    children = ("010315-4001", "020315-4002", "040316-4004")
    assert [r.child_key for r in records] == [persons.person(c).key for c in children]
    assert records[0].family_key == records[1].family_key == persons.family_key(["010185-1234"])
    assert records[2].status == "closed"
    assert all(r.child_cpr is None for r in records)
    rejection = batches[1].rejections[0]
    assert rejection.source_ref == "3"
    assert "310215" not in rejection.reason
    assert json.loads(rejection.payload)["id"] == 3
    assert [r.source_ref for b in resumed for r in b.records] == ["4"]
    assert [j.source_ref for b in resumed for j in b.rejections] == ["3"]
