"""HTTP: one client factory with bounded retries and bounded answers, shared by every HTTP adapter.

:func:`http_client` sets timeouts, TLS, retries and the size limit once (through
:class:`RetryTransport`); a :class:`RetryPolicy` asks its ``transient`` classifier whether an
answer is an outage to retry; :func:`raise_for_status` turns a failed answer into an error that
names the endpoint.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx

from bridge.errors import AdapterError, AuthError, ConfigError, ResponseTooLarge, SourceUnavailable
from bridge.privacy import redact

_http_log = logging.getLogger("bridge.http")

# Failures where the request may not have reached the application, or its answer was lost:
# timeouts, refused or reset connections, and a server that hung up without answering.
_TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

OUTAGE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses :func:`transient_status` calls a passing outage.

500 is among them besides the gateway codes 502, 503 and 504: on-prem application servers (SB-SYS
behind its proxy) answer a passing overload or a deadlock with a bare 500, and a sync has to
converge through those. A 500 that persists still ends the run once the attempts are spent. A
protocol that reports its own errors as 500 (SOAP faults) gives its policy a classifier that
reads the body instead."""

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest answer :func:`http_client` reads, after content decoding (gzip), unless told otherwise."""

ResponseClassifier = Callable[[httpx.Response], bool]
"""Whether an answer (its body already read) is a passing outage to retry (``True``) or the
source's answer to hand to the caller (``False``), success or not."""


def transient_status(response: httpx.Response) -> bool:
    """The default classifier: an answer is an outage when its status is in :data:`OUTAGE_STATUSES`."""
    return response.status_code in OUTAGE_STATUSES

# bridge only ever reads from sources: its POSTs are searches and token requests, which are safe
# to repeat. An adapter that POSTs something with an effect narrows ``retry_methods``.
_RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How :class:`RetryTransport` retries transient failures.

    ``max_attempts`` counts the first try, so at most ``max_attempts - 1`` retries. Retry *n*
    (from 1) waits ``min(max_delay, base_delay * 2 ** (n - 1))`` seconds; with ``jitter``
    ("full jitter") it waits a uniform random share of that instead, so many clients that
    failed together do not come back together. A ``Retry-After`` the server sends (seconds or
    an HTTP date) is waited for exactly, but one longer than ``max_retry_after`` ends the
    attempts at once: the run stops with :class:`~bridge.errors.SourceUnavailable` and is
    resumed later from its last committed batch.

    ``transient`` is asked about every answer, with its body read, whether it is an outage to
    retry (:data:`ResponseClassifier`); the default, :func:`transient_status`, goes by status. A
    SOAP adapter, whose service reports a fault (a wrong request, an unknown case) as HTTP 500,
    passes one that reads the fault, so only outages are retried::

        RetryPolicy(transient=lambda r: transient_status(r) and not is_soap_fault(r))

    ``sleep``, ``uniform`` and ``clock`` are injectable so tests neither sleep nor guess.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    max_retry_after: float = 120.0
    transient: ResponseClassifier = transient_status
    retry_methods: frozenset[str] = _RETRY_METHODS
    sleep: Callable[[float], None] = time.sleep
    uniform: Callable[[float, float], float] = random.uniform
    clock: Callable[[], float] = time.time
    """Current time as a POSIX timestamp, for ``Retry-After`` given as an HTTP date."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return self.uniform(0.0, ceiling) if self.jitter else ceiling

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the response's ``Retry-After`` asks for; ``None`` if absent or unreadable."""
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - self.clock())


DEFAULT_RETRY = RetryPolicy()


def _where(request: httpx.Request) -> str:
    """Host and path of a request, for messages: no query (it may hold secrets), no body."""
    url = request.url
    host = f"{url.host}:{url.port}" if url.port else url.host
    return redact(f"{host}{url.path}")


def _tls_verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification failure behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport, reads every answer within a size limit and retries what is transient.

    Every answer's body is read here, decoded (gzip) but not parsed, and at most
    ``max_response_bytes`` of it: a larger one raises :class:`~bridge.errors.ResponseTooLarge`
    as soon as the limit is passed (or at once when ``Content-Length`` says so), so a huge or
    endless answer never fills memory.

    Retried: timeouts, connection errors, connections dropped mid-answer, and answers the
    policy's ``transient`` classifier calls an outage — for the policy's ``retry_methods`` only;
    any other method gets one attempt and its response as it is. When the attempts are spent it
    raises :class:`~bridge.errors.SourceUnavailable` naming the method, host and path and the
    last status or error. A TLS certificate that fails verification is not transient: it raises
    :class:`~bridge.errors.AdapterError` at once. Every retry is logged at WARNING on
    ``bridge.http``; bodies and query strings are never logged.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy = DEFAULT_RETRY,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        self._inner = inner
        self.policy = policy
        self.max_response_bytes = max_response_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        method = request.method.upper()
        attempts = policy.max_attempts if method in policy.retry_methods else 1
        if attempts > 1:
            request.read()  # a streamed body must be replayable on the next attempt
        where = _where(request)
        for attempt in range(1, attempts + 1):
            try:
                # Reading here makes a connection dropped mid-body a transient error like any other.
                response = self._read(self._inner.handle_request(request), request, f"{method} {where}")
            except _TRANSIENT_ERRORS as exc:
                tls = _tls_verification_error(exc)
                if tls is not None:
                    raise AdapterError(
                        f"{method} {where}: the TLS certificate of {request.url.host} could not be "
                        f"verified ({tls.verify_message}); configure the CA bundle that signs it"
                    ) from None
                if attempt == attempts:
                    raise SourceUnavailable(
                        f"{method} {where} failed after {attempt} attempt(s): "
                        f"{type(exc).__name__}: {redact(str(exc))}"
                    ) from None
                cause = type(exc).__name__
                delay = policy.backoff(attempt)
            else:
                if attempts == 1 or not policy.transient(response):
                    return response
                status = response.status_code
                cause = f"{status} {response.reason_phrase}"
                wanted = policy.retry_after(response)
                if wanted is not None and wanted > policy.max_retry_after:
                    raise SourceUnavailable(
                        f"{_unavailable(request, status)}: {method} {where} answered {cause} "
                        f"and asks us to wait {wanted:.0f} s"
                    )
                if attempt == attempts:
                    raise SourceUnavailable(
                        f"{_unavailable(request, status)}: {method} {where} answered {cause} after {attempt} attempt(s)"
                    )
                delay = wanted if wanted is not None else policy.backoff(attempt)
            _http_log.warning("%s %s: %s; retry %d of %d in %.2f s", method, where, cause, attempt, attempts - 1, delay)
            policy.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _read(self, response: httpx.Response, request: httpx.Request, what: str) -> httpx.Response:
        """``response`` with its body read and decoded, refusing more than ``max_response_bytes``."""
        limit = self.max_response_bytes
        too_large = f"{what} answered more than the {limit} bytes accepted"
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge(f"{too_large} (Content-Length {declared})")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ResponseTooLarge(too_large)
        finally:
            response.close()
        # The body is decoded now: the headers must no longer announce an encoding or a length.
        headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=bytes(body),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def _unavailable(request: httpx.Request, status: int) -> str:
    if status == 429:
        return f"rate limited by {request.url.host}; retry later"
    return f"{request.url.host} is unavailable"


def _ssl_context(verify: bool | str, cert: tuple[str, str] | None) -> ssl.SSLContext:
    try:
        if isinstance(verify, str):
            bundle = Path(verify)
            if bundle.is_dir():
                context = ssl.create_default_context(capath=str(bundle))
            else:
                context = ssl.create_default_context(cafile=str(bundle))
        else:
            context = httpx.create_ssl_context(verify=verify)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read the CA bundle {verify}: {exc}") from None
    if cert is not None:
        certfile, keyfile = cert
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the client certificate {certfile} with key {keyfile}: {exc}") from None
    return context


def http_client(
    *,
    base_url: str,
    timeout: float = 30.0,
    verify: bool | str = True,
    cert: tuple[str, str] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    proxy: str | None = None,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> httpx.Client:
    """The ``httpx.Client`` every HTTP adapter uses: timeouts, TLS and retries set once.

    - ``timeout``: seconds for connect, read, write and pool wait each.
    - ``verify``: ``True`` (system/certifi CAs), ``False`` (off — logged as a warning), or the
      path of a CA bundle file or directory for on-prem CAs.
    - ``cert``: ``(certificate file, key file)`` for mutual TLS (system certificates).
    - ``retry``: see :class:`RetryPolicy`; it applies to every request through a
      :class:`RetryTransport`.
    - ``proxy``: an explicit HTTP(S) proxy URL. Proxy environment variables are not read.
    - ``max_response_bytes``: the largest answer read (after gzip decoding); a larger one raises
      :class:`~bridge.errors.ResponseTooLarge` while it streams in, before anything parses it.

    An unreadable CA bundle or client certificate, or a ``base_url`` httpx cannot parse, raises
    :class:`~bridge.errors.ConfigError`.
    The caller closes the client (adapters do it in ``Adapter.close``).
    """
    if verify is False:
        _http_log.warning("TLS certificate verification is off for %s", redact(base_url))
    transport = httpx.HTTPTransport(verify=_ssl_context(verify, cert), proxy=proxy)
    try:
        return httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=headers,
            auth=auth,
            event_hooks=event_hooks,
            transport=RetryTransport(transport, retry, max_response_bytes=max_response_bytes),
        )
    except httpx.InvalidURL:
        transport.close()
        raise ConfigError(f"not a valid URL: {redact(base_url)}") from None


def raise_for_status(response: httpx.Response, what: str) -> httpx.Response:
    """Return ``response`` if it is a 2xx; otherwise raise an error naming ``what`` and the endpoint.

    401 and 403 raise :class:`~bridge.errors.AuthError`; 429 and 5xx raise
    :class:`~bridge.errors.SourceUnavailable`; anything else :class:`~bridge.errors.AdapterError`.
    The message holds method, host, path and status — never the body, which may hold CPR numbers.
    """
    if response.is_success:
        return response
    request = response.request
    where = _where(request)
    status = f"{response.status_code} {response.reason_phrase}"
    if response.status_code in (401, 403):
        raise AuthError(f"{what}: {where} refused our credentials ({status})")
    message = f"{what}: {request.method} {where} answered {status}"
    if response.status_code == 429 or response.is_server_error:
        raise SourceUnavailable(message)
    raise AdapterError(message)
