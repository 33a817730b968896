"""The shared HTTP client: which failures are retried, how long it waits, what it says when it gives up."""

from __future__ import annotations

import gzip
import logging
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import respx
import trustme
from hypothesis import given
from hypothesis import strategies as st

from bridge.adapter import RetryPolicy, http_client, raise_for_status, transient_status
from bridge.errors import AdapterError, AuthError, ConfigError, ResponseTooLarge, SourceUnavailable

BASE = "https://sbsys.test"
NOW = 1_700_000_000.0
CPR_IN_BODY = "0101901234"


@dataclass
class Sleeps:
    """Stands in for ``time.sleep``: records the delays asked for instead of waiting."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def upper_bound(low: float, high: float) -> float:
    """A 'random' draw that always takes the top of the jitter range, so delays are predictable."""
    return high


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4, base_delay=0.5, max_delay=30.0, sleep=sleeps, uniform=upper_bound, clock=lambda: NOW
    )


@pytest.fixture
def client(policy: RetryPolicy) -> Iterator[httpx.Client]:
    with http_client(base_url=BASE, retry=policy) as client:
        yield client


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_transient_errors_are_retried_with_exponential_backoff(
    error: type[httpx.TransportError], client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = mock.get("/api/sag/1").mock(side_effect=[error("first"), error("second"), httpx.Response(200)])

    assert client.get("/api/sag/1").status_code == 200
    assert route.call_count == 3
    assert sleeps.delays == [0.5, 1.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(status: int, client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps) -> None:
    route = mock.get("/api/sag/1").mock(
        side_effect=[httpx.Response(status), httpx.Response(status), httpx.Response(200, json={"Id": 1})]
    )

    assert client.get("/api/sag/1").json() == {"Id": 1}
    assert route.call_count == 3
    assert sleeps.delays == [0.5, 1.0]


def test_a_retried_post_sends_the_same_body_again(client: httpx.Client, mock: respx.MockRouter) -> None:
    route = mock.post("/api/sag/search").mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    search = {"NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"}, "Limit": 50, "Skip": 100}

    client.post("/api/sag/search", json=search)

    first, second = (call.request for call in route.calls)
    assert second.content == first.content
    assert httpx.Response(200, content=second.content).json() == search


def test_a_retried_streamed_body_is_replayed(client: httpx.Client, mock: respx.MockRouter) -> None:
    route = mock.post("/api/upload").mock(side_effect=[httpx.ReadError("reset"), httpx.Response(200)])

    client.post("/api/upload", content=iter([b"<Sag>", b"1", b"</Sag>"]))

    assert [call.request.content for call in route.calls] == [b"<Sag>1</Sag>"] * 2


def test_retry_after_in_seconds_is_honoured(client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps) -> None:
    mock.get("/api/sag/1").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)])

    assert client.get("/api/sag/1").status_code == 200
    assert sleeps.delays == [7.0]


def test_retry_after_as_http_date_is_honoured(client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps) -> None:
    retry_at = formatdate(NOW + 42, usegmt=True)
    mock.get("/api/sag/1").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": retry_at}), httpx.Response(200)]
    )

    assert client.get("/api/sag/1").status_code == 200
    assert sleeps.delays == [42.0]


def test_unreadable_retry_after_falls_back_to_backoff(
    client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps
) -> None:
    mock.get("/api/sag/1").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "soon"}), httpx.Response(200)])

    assert client.get("/api/sag/1").status_code == 200
    assert sleeps.delays == [0.5]


def test_retry_after_beyond_the_cap_ends_at_once(
    client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    route = mock.get("/api/sag/1").mock(
        return_value=httpx.Response(429, headers={"Retry-After": str(int(policy.max_retry_after) + 1)})
    )

    with pytest.raises(SourceUnavailable, match=r"rate limited by sbsys\.test; retry later"):
        client.get("/api/sag/1")
    assert route.call_count == 1
    assert sleeps.delays == []


def test_persistent_429_says_rate_limited(
    client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    route = mock.post("/api/sag/search").mock(return_value=httpx.Response(429, headers={"Retry-After": "3"}))

    with pytest.raises(SourceUnavailable, match=r"rate limited by sbsys\.test; retry later") as raised:
        client.post("/api/sag/search", json={})
    assert "POST sbsys.test/api/sag/search" in str(raised.value)
    assert route.call_count == policy.max_attempts
    assert sleeps.delays == [3.0] * (policy.max_attempts - 1)


def test_exhausted_retries_name_the_endpoint_and_not_the_body_or_query(
    client: httpx.Client, mock: respx.MockRouter, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    route = mock.post("/api/sag/search").mock(
        return_value=httpx.Response(503, text=f"<error>CPR {CPR_IN_BODY} locked</error>")
    )

    with pytest.raises(SourceUnavailable) as raised:
        client.post("/api/sag/search", params={"token": "hunter2"}, json={"Limit": 50})

    message = str(raised.value)
    assert "POST sbsys.test/api/sag/search" in message
    assert "503" in message
    assert CPR_IN_BODY not in message
    assert "hunter2" not in message
    assert route.call_count == policy.max_attempts
    assert sleeps.delays == [0.5, 1.0, 2.0]


def test_exhausted_retries_after_connection_errors_name_the_last_error(
    client: httpx.Client, mock: respx.MockRouter, policy: RetryPolicy
) -> None:
    route = mock.get("/api/erindring/sag/7").mock(side_effect=httpx.ConnectError("connection refused"))

    with pytest.raises(SourceUnavailable, match=r"GET sbsys\.test/api/erindring/sag/7 .*ConnectError"):
        client.get("/api/erindring/sag/7")
    assert route.call_count == policy.max_attempts


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, (AuthError, "sbsys.test/api/sag/1 refused our credentials (401 Unauthorized)")),
        (403, (AuthError, "sbsys.test/api/sag/1 refused our credentials (403 Forbidden)")),
        (400, (AdapterError, "GET sbsys.test/api/sag/1 answered 400 Bad Request")),
        (404, (AdapterError, "GET sbsys.test/api/sag/1 answered 404 Not Found")),
        (409, (AdapterError, "GET sbsys.test/api/sag/1 answered 409 Conflict")),
        (422, (AdapterError, "GET sbsys.test/api/sag/1 answered 422 Unprocessable Entity")),
    ],
)
def test_client_errors_are_not_retried(
    status: int,
    expected: tuple[type[AdapterError], str],
    client: httpx.Client,
    mock: respx.MockRouter,
    sleeps: Sleeps,
) -> None:
    error, message = expected
    route = mock.get("/api/sag/1").mock(return_value=httpx.Response(status, text=CPR_IN_BODY))

    response = client.get("/api/sag/1")

    assert route.call_count == 1
    assert sleeps.delays == []
    with pytest.raises(AdapterError) as raised:
        raise_for_status(response, "fetching a case")
    assert type(raised.value) is error
    assert str(raised.value) == f"fetching a case: {message}"


def test_raise_for_status_passes_success_through(client: httpx.Client, mock: respx.MockRouter) -> None:
    mock.get("/api/sag/1").mock(return_value=httpx.Response(200, json={"Id": 1}))

    assert raise_for_status(client.get("/api/sag/1"), "fetching a case").json() == {"Id": 1}


def test_methods_outside_retry_methods_get_one_attempt(mock: respx.MockRouter, sleeps: Sleeps) -> None:
    policy = RetryPolicy(retry_methods=frozenset({"GET"}), sleep=sleeps)
    route = mock.post("/api/sag/search").mock(return_value=httpx.Response(503))

    with http_client(base_url=BASE, retry=policy) as client:
        response = client.post("/api/sag/search", json={})

    assert route.call_count == 1
    assert sleeps.delays == []
    with pytest.raises(SourceUnavailable, match="searching cases"):
        raise_for_status(response, "searching cases")


def test_each_retry_is_logged_without_body_or_query(
    client: httpx.Client, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get("/api/sag/1").mock(
        side_effect=[httpx.Response(502, text=CPR_IN_BODY), httpx.ReadTimeout("slow"), httpx.Response(200)]
    )

    with caplog.at_level(logging.WARNING, logger="bridge.http"):
        client.get("/api/sag/1", params={"token": "hunter2"})

    retries = [r.getMessage() for r in caplog.records if r.name == "bridge.http"]
    assert retries == [
        "GET sbsys.test/api/sag/1: 502 Bad Gateway; retry 1 of 3 in 0.50 s",
        "GET sbsys.test/api/sag/1: ReadTimeout; retry 2 of 3 in 1.00 s",
    ]


SOAP_FAULT = (
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b"<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Ukendt sag</faultstring></soap:Fault>"
    b"</soap:Body></soap:Envelope>"
)


def not_a_soap_fault(response: httpx.Response) -> bool:
    """A SOAP adapter's classifier: a 500 carrying a fault is the service's answer, not an outage."""
    return transient_status(response) and b"Fault>" not in response.content


def test_a_classifier_that_reads_the_body_keeps_a_soap_fault_from_being_retried(
    mock: respx.MockRouter, sleeps: Sleeps
) -> None:
    policy = RetryPolicy(transient=not_a_soap_fault, sleep=sleeps)
    route = mock.post("/soap").mock(return_value=httpx.Response(500, content=SOAP_FAULT))

    with http_client(base_url=BASE, retry=policy) as client:
        response = client.post("/soap", content=b"<request/>")

    assert route.call_count == 1
    assert sleeps.delays == []
    assert response.status_code == 500
    assert response.content == SOAP_FAULT  # the caller reads the fault itself


def test_a_classifier_still_lets_real_outages_be_retried(mock: respx.MockRouter, sleeps: Sleeps) -> None:
    policy = RetryPolicy(transient=not_a_soap_fault, sleep=sleeps, uniform=upper_bound)
    route = mock.post("/soap").mock(
        side_effect=[httpx.Response(500, text="<html>Internal Server Error</html>"), httpx.Response(200)]
    )

    with http_client(base_url=BASE, retry=policy) as client:
        assert client.post("/soap", content=b"<request/>").status_code == 200

    assert route.call_count == 2
    assert sleeps.delays == [0.5]


def test_the_classifier_decides_even_for_a_status_the_default_does_not_retry(
    mock: respx.MockRouter, sleeps: Sleeps
) -> None:
    # A gateway that answers a passing overload with 200 and an error page is read the same way.
    policy = RetryPolicy(transient=lambda r: b"Overloaded" in r.content, sleep=sleeps, uniform=upper_bound)
    mock.get("/api/sag/1").mock(side_effect=[httpx.Response(200, text="Overloaded"), httpx.Response(200, text="ok")])

    with http_client(base_url=BASE, retry=policy) as client:
        assert client.get("/api/sag/1").text == "ok"
    assert sleeps.delays == [0.5]


LIMIT = 1000


def test_an_answer_over_the_limit_is_refused_while_it_streams(mock: respx.MockRouter, policy: RetryPolicy) -> None:
    chunks_read: list[int] = []

    def endless() -> Iterator[bytes]:
        for n in range(10_000):
            chunks_read.append(n)
            yield b"x" * 100

    route = mock.get("/api/fil/7").mock(return_value=httpx.Response(200, content=endless()))

    with (
        http_client(base_url=BASE, retry=policy, max_response_bytes=LIMIT) as client,
        pytest.raises(ResponseTooLarge, match=r"GET sbsys\.test/api/fil/7 answered more than the 1000 bytes"),
    ):
        client.get("/api/fil/7")
    assert len(chunks_read) == 11  # stopped at the first chunk past the limit, not at the end
    assert route.call_count == 1  # not an outage: no retry


def test_a_declared_length_over_the_limit_is_refused_at_once(mock: respx.MockRouter, policy: RetryPolicy) -> None:
    declared = httpx.Response(200, headers={"Content-Length": "5000000"}, content=b"")
    mock.get("/api/fil/7").mock(return_value=declared)

    with (
        http_client(base_url=BASE, retry=policy, max_response_bytes=LIMIT) as client,
        pytest.raises(ResponseTooLarge, match="Content-Length 5000000"),
    ):
        client.get("/api/fil/7")


def test_the_limit_counts_decoded_bytes_so_a_gzip_bomb_is_refused(mock: respx.MockRouter, policy: RetryPolicy) -> None:
    bomb = gzip.compress(b"\0" * 200_000)
    assert len(bomb) < LIMIT
    mock.get("/api/fil/7").mock(return_value=httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb))

    with (
        http_client(base_url=BASE, retry=policy, max_response_bytes=LIMIT) as client,
        pytest.raises(ResponseTooLarge),
    ):
        client.get("/api/fil/7")


def test_an_answer_within_the_limit_arrives_whole_and_decoded(mock: respx.MockRouter, policy: RetryPolicy) -> None:
    body = b'{"Id": 1}' * 100
    mock.get("/api/sag/1").mock(
        return_value=httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body))
    )

    with http_client(base_url=BASE, retry=policy, max_response_bytes=len(body)) as client:
        response = client.get("/api/sag/1")
    assert response.content == body
    assert response.reason_phrase == "OK"


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, jitter=False)

    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


@given(
    base=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
    retry=st.integers(min_value=1, max_value=40),
)
def test_jitter_stays_within_the_policy(base: float, cap: float, retry: int) -> None:
    ranges: list[tuple[float, float]] = []

    def recording_uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    policy = RetryPolicy(base_delay=base, max_delay=cap, uniform=recording_uniform)
    ceiling = min(cap, base * 2 ** (retry - 1))

    assert policy.backoff(retry) == ceiling
    assert ranges == [(0.0, ceiling)]
    drawn = RetryPolicy(base_delay=base, max_delay=cap).backoff(retry)
    assert 0.0 <= drawn <= ceiling


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1.0)


# --- TLS over loopback: CA bundles, verification failures and mutual TLS --------------------------


@dataclass
class TlsServer:
    url: str
    requests: list[str]
    ca_file: Path
    client_cert: tuple[str, str]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Failed handshakes are what some tests provoke."""


def _serve_tls(tmp_path: Path, *, require_client_cert: bool) -> Callable[[], Iterator[TlsServer]]:
    def serve() -> Iterator[TlsServer]:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            ca.configure_trust(context)
        ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
        ca.cert_pem.write_to_path(str(ca_file))
        client = ca.issue_cert("bridge-client")
        client.cert_chain_pems[0].write_to_path(str(cert_file))
        client.private_key_pem.write_to_path(str(key_file))

        server = _QuietServer(("127.0.0.1", 0), _Hello)
        server.requests = []  # type: ignore[attr-defined]
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield TlsServer(
                url=f"https://127.0.0.1:{server.server_address[1]}",
                requests=server.requests,  # type: ignore[attr-defined]
                ca_file=ca_file,
                client_cert=(str(cert_file), str(key_file)),
            )
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    return serve


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    yield from _serve_tls(tmp_path, require_client_cert=False)()


@pytest.fixture
def mtls_server(tmp_path: Path) -> Iterator[TlsServer]:
    yield from _serve_tls(tmp_path, require_client_cert=True)()


def test_a_ca_bundle_path_verifies_an_on_prem_certificate(tls_server: TlsServer, policy: RetryPolicy) -> None:
    with http_client(base_url=tls_server.url, verify=str(tls_server.ca_file), retry=policy) as client:
        assert client.get("/hello").text == "ok"
    assert tls_server.requests == ["/hello"]


def test_an_unverifiable_certificate_fails_at_once(tls_server: TlsServer, policy: RetryPolicy, sleeps: Sleeps) -> None:
    with (
        http_client(base_url=tls_server.url, retry=policy) as client,
        pytest.raises(AdapterError, match=r"TLS certificate of 127\.0\.0\.1 could not be verified"),
    ):
        client.get("/hello")
    assert sleeps.delays == []
    assert tls_server.requests == []


def test_mutual_tls_presents_the_client_certificate(mtls_server: TlsServer, policy: RetryPolicy) -> None:
    with http_client(
        base_url=mtls_server.url, verify=str(mtls_server.ca_file), cert=mtls_server.client_cert, retry=policy
    ) as client:
        assert client.get("/sager").text == "ok"
    assert mtls_server.requests == ["/sager"]


def test_mutual_tls_without_a_client_certificate_is_refused(mtls_server: TlsServer, policy: RetryPolicy) -> None:
    with (
        http_client(base_url=mtls_server.url, verify=str(mtls_server.ca_file), retry=policy) as client,
        pytest.raises(SourceUnavailable, match=r"GET 127\.0\.0\.1:\d+/sager failed after 4 attempt"),
    ):
        client.get("/sager")
    assert mtls_server.requests == []


def test_missing_tls_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle"):
        http_client(base_url=BASE, verify=str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ConfigError, match="client certificate"):
        http_client(base_url=BASE, cert=(str(tmp_path / "c.pem"), str(tmp_path / "c.key")))


def test_memory_stays_bounded_while_a_200_mb_answer_is_refused(mock: respx.MockRouter, policy: RetryPolicy) -> None:
    limit = 1024 * 1024

    def two_hundred_megabytes() -> Iterator[bytes]:
        chunk = b"<FormularData>" + b"x" * 65_522
        for _ in range(200 * 16):
            yield chunk

    mock.get("/api/fil/7").mock(return_value=httpx.Response(200, content=two_hundred_megabytes()))
    tracemalloc.start()
    try:
        with (
            http_client(base_url=BASE, retry=policy, max_response_bytes=limit) as client,
            pytest.raises(ResponseTooLarge),
        ):
            client.get("/api/fil/7")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit  # the limit and a chunk or two, never the 200 MB


def test_a_url_with_credentials_is_redacted_in_the_tls_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "bridge.http")
    with http_client(base_url="https://svc:Hemmelig1@sbsys.test/?client_secret=abc", verify=False):
        pass
    assert "svc:***@sbsys.test" in caplog.text
    assert "Hemmelig1" not in caplog.text
    assert "abc" not in caplog.text


def test_a_base_url_httpx_cannot_parse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="not a valid URL"):
        http_client(base_url="http://[::1")
