"""A source that sends what a test scripts: records built from raw dicts, rejections, failures.

Register it with ``with registered(ScriptedPlugin()):`` and name a script in its settings;
``SCRIPTS[name]`` is a list of steps, each a batch (a list of record dicts and ``Rejection``s)
or an exception to raise at that point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bridge import hookimpl
from bridge.adapter import Adapter, AdapterConfig, Batch, Rejection
from bridge.model.records import CaseRecord, rejection_reason

Step = list[dict[str, Any] | Rejection] | BaseException
SCRIPTS: dict[str, list[Step]] = {}


class ScriptedConfig(AdapterConfig):
    script: str


class Scripted(Adapter):
    name = "scripted"
    Config = ScriptedConfig

    def check(self) -> None:
        pass

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        assert isinstance(self.config, ScriptedConfig)
        for number, step in enumerate(SCRIPTS[self.config.script], start=1):
            if isinstance(step, BaseException):
                raise step
            batch = Batch(cursor=f"{number}")
            for item in step:
                if isinstance(item, Rejection):
                    batch.rejections.append(item)
                    continue
                try:
                    batch.records.append(CaseRecord.model_validate(item))
                except ValueError as exc:
                    batch.rejections.append(Rejection(item.get("source_ref"), rejection_reason(exc), repr(item)))
            yield batch


class ScriptedPlugin:
    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(Scripted)


def case(ref: str, **changes: Any) -> dict[str, Any]:
    """A valid case record as a raw dict, with ``changes``."""
    return {
        "source_ref": ref,
        "municipality": "461",
        "child_key": f"{int(ref):032x}",
        "child_birth_date": "2015-03-01",
        "child_sex": "F",
        "family_key": "f" * 32,
        "caseworker": {"source_ref": "cw1", "name": "Karen Jensen", "unit": "Børn og unge"},
        "case_number": f"27.24.00-G01-{ref}-24",
        "kle": "27.24.00",
        "target_group": "udsatte",
        "opened": "2024-01-10",
        "status": "open",
        "source_modified": "2024-06-01T10:00:00+00:00",
        "measures": [
            {"source_ref": f"m{ref}", "act": "BL", "paragraph": "32", "start": "2024-02-01", "has_grant": True,
             "provider": "Opholdsstedet Solsikken"}
        ],
        "assessments": [{"theme": "sundhed", "value": 3, "assessed_on": "2024-03-01", "assessor": "Ole Hansen"}],
        **changes,
    }  # fmt: skip
