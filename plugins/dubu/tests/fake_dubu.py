"""A hand-driven DUBU for unit tests (respx): scripted answers per operation, requests recorded."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import respx
from pydantic import SecretStr
from tests.conftest import TEST_SECRET

from bridge.adapter import SourceContext
from bridge.privacy import Pseudonymizer
from bridge_dubu import wire
from bridge_dubu.adapter import DubuAdapter, DubuConfig
from bridge_dubu.simulator import TEST_CONTEXT, TlsMaterial

REFERENCE = Path(__file__).parent / "reference"
ENDPOINT = "https://dubu.test" + wire.SERVICE_PATH
MUNICIPALITY = "851"


def sample(name: str) -> bytes:
    return (REFERENCE / name).read_bytes()


def reference_validator() -> ModuleType:
    """The reference folder's ``validate.py``, which checks envelopes against the contract's schemas."""
    spec = importlib.util.spec_from_file_location("dubu_reference_validate", REFERENCE / "validate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def persons() -> Pseudonymizer:
    return Pseudonymizer(SecretStr(TEST_SECRET))


def make_adapter(tls: TlsMaterial | None = None, **settings: Any) -> DubuAdapter:
    values: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "service_agreement_uuid": TEST_CONTEXT.service_agreement,
        "user_system_uuid": TEST_CONTEXT.user_system,
        "user_uuid": TEST_CONTEXT.user,
        "service_uuid": TEST_CONTEXT.service,
        "retry_base_delay": 0,
        **settings,
    }
    if tls is not None:
        values |= {"client_cert": str(tls.client_cert), "client_key": str(tls.client_key), "ca_bundle": str(tls.ca)}
    return DubuAdapter(DubuConfig.model_validate(values), SourceContext("dubu-test", MUNICIPALITY, persons()))


Answer = Callable[[wire.Request], httpx.Response]


def soap(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": wire.CONTENT_TYPE})


class FakeDubu:
    """Answers each call with the next scripted answer for its operation; records what was asked."""

    def __init__(self) -> None:
        self.answers: dict[wire.Operation, list[Answer | httpx.Response | bytes]] = {op: [] for op in wire.Operation}
        self.requests: list[wire.Request] = []
        self.raw: list[httpx.Request] = []
        self.default: dict[wire.Operation, Answer] = {}

    def then(self, operation: wire.Operation, *answers: Answer | httpx.Response | bytes) -> FakeDubu:
        self.answers[operation].extend(answers)
        return self

    def listed(self, operation: wire.Operation = wire.Operation.list_changed) -> list[wire.Request]:
        return [r for r in self.requests if r.operation is operation]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.raw.append(request)
        call = wire.read_request(request.content)
        self.requests.append(call)
        assert call.operation is not None, "the adapter sent no known operation"
        queue = self.answers[call.operation]
        answer = queue.pop(0) if queue else self.default.get(call.operation)
        if answer is None:
            raise AssertionError(f"no scripted answer left for {call.operation.value}")
        if isinstance(answer, bytes):
            return soap(answer)
        if isinstance(answer, httpx.Response):
            return answer
        return answer(call)


@contextmanager
def mocked(fake: FakeDubu) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(ENDPOINT).mock(side_effect=fake.handle)
        yield router


def listing(*references: wire.SagReference, token: str | None = None, style: wire.Style | None = None) -> bytes:
    return wire.render_listing(wire.ListingPage(tuple(references), token, None), style or wire.Style())


def fault(code: wire.FaultCode, text: str | None = None) -> httpx.Response:
    return soap(wire.render_fault(code, text), 500)
