"""The Adapter base: what a source-system plugin implements.

An adapter knows one wire format and nothing about the store. It is built from its
pydantic ``Config`` (secrets as ``SecretStr``) and a :class:`SourceContext`, and yields
:class:`Batch` es: validated records, rejections with reasons, and the cursor to resume
after the batch. The sync engine commits each batch with its cursor in one transaction.

Below the base, in their own sections, the tools adapters share so each wire format is read
the same way: :func:`http_client` (timeouts, TLS, bounded retries through
:class:`RetryTransport`) with :func:`raise_for_status`; hardened XML parsing
(:func:`parse_xml`, :func:`iter_xml_elements`); and paging (:func:`paginate_offset`,
:func:`bounded_map`).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import ssl
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from itertools import islice
from pathlib import Path
from typing import IO, Any, ClassVar, TypedDict, TypeVar

import httpx
from lxml import etree
from pydantic import BaseModel, ConfigDict

from bridge.errors import AdapterError, AuthError, ConfigError, SourceUnavailable
from bridge.model.records import CaseRecord
from bridge.privacy import Pseudonymizer, mask_cpr


class AdapterConfig(BaseModel):
    """Base of every adapter's ``Config``. Unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the source sent that could not be accepted.

    ``payload`` is the raw text as received, so the record can be replayed once the
    cause is fixed. ``reason`` must not contain person data.
    """

    source_ref: str | None
    reason: str
    payload: str


@dataclass(slots=True)
class Batch:
    """Records and rejections, plus the cursor that resumes *after* them."""

    records: list[CaseRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What core tells an adapter about the source it serves."""

    source: str
    """The source's name in ``bridge.toml`` (e.g. ``odense-sbsys``)."""
    municipality: str
    """Kommunekode, 3 digits."""
    persons: Pseudonymizer
    """Turns CPR numbers into person and family keys; adapters never keep the CPR."""


class Adapter(ABC):
    """Base class of source-system adapters.

    Subclasses set ``name`` (lower case, used in ``bridge.toml``), ``Config`` and a one-line
    ``description``, and register the class through the ``bridge_register_adapters`` hook.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig

    def __init__(self, config: AdapterConfig, context: SourceContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def check(self) -> None:
        """Reach the source and authenticate, fetching no data.

        Raises :class:`bridge.errors.AdapterError` (or ``AuthError``) with a message that
        names what failed (host, endpoint) and holds no secret.
        """

    @abstractmethod
    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        """Yield batches of everything changed after ``cursor`` (``None``: everything).

        The cursor of each batch must be safe to resume from once that batch and all
        before it are stored. Memory must stay bounded: yield as you read.
        """

    def parse_payload(self, payload: str) -> CaseRecord:
        """Parse one quarantined payload again (``bridge quarantine replay``).

        Raise ``ValueError`` (or a pydantic ``ValidationError``) with the reason if it is
        still not acceptable. Adapters that cannot replay leave this as it is.
        """
        raise NotImplementedError(f"the {self.name} adapter cannot replay quarantined records")

    def close(self) -> None:  # noqa: B027 - optional hook: adapters without connections keep it
        """Release connections. Called once after ``fetch`` is done or abandoned."""


# ---------------------------------------------------------------------------------------------
# HTTP: one client factory with bounded retries, shared by every HTTP adapter
# ---------------------------------------------------------------------------------------------

_http_log = logging.getLogger("bridge.http")

# Failures where the request may not have reached the application, or its answer was lost:
# timeouts, refused or reset connections, and a server that hung up without answering.
_TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

# 500 is retried besides the gateway codes DESIGN §5 lists: on-prem application servers (SB-SYS
# behind its proxy) answer a passing overload or a deadlock with a bare 500, and a sync has to
# converge through those. A 500 that persists still ends the run once the attempts are spent.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

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

    ``sleep``, ``uniform`` and ``clock`` are injectable so tests neither sleep nor guess.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = _RETRY_STATUSES
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
    return mask_cpr(f"{host}{url.path}")


def _tls_verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification failure behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport and retries what :class:`RetryPolicy` calls transient.

    Retried: timeouts, connection errors, dropped connections, and the policy's
    ``retry_statuses`` — for the policy's ``retry_methods`` only; any other method gets one
    attempt and its response as it is. When the attempts are spent it raises
    :class:`~bridge.errors.SourceUnavailable` naming the method, host and path and the last
    status or error. A TLS certificate that fails verification is not transient: it raises
    :class:`~bridge.errors.AdapterError` at once. Every retry is logged at WARNING on
    ``bridge.http``; bodies and query strings are never logged.
    """

    def __init__(self, inner: httpx.BaseTransport, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._inner = inner
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        method = request.method.upper()
        attempts = policy.max_attempts if method in policy.retry_methods else 1
        if attempts > 1:
            request.read()  # a streamed body must be replayable on the next attempt
        where = _where(request)
        for attempt in range(1, attempts + 1):
            try:
                response = self._inner.handle_request(request)
                if attempts > 1:
                    response.read()  # a connection dropped mid-body is transient too: retry it here
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
                        f"{type(exc).__name__}: {mask_cpr(str(exc))}"
                    ) from None
                cause = type(exc).__name__
                delay = policy.backoff(attempt)
            else:
                status = response.status_code
                if status not in policy.retry_statuses or attempts == 1:
                    return response
                response.close()
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
) -> httpx.Client:
    """The ``httpx.Client`` every HTTP adapter uses: timeouts, TLS and retries set once.

    - ``timeout``: seconds for connect, read, write and pool wait each.
    - ``verify``: ``True`` (system/certifi CAs), ``False`` (off — logged as a warning), or the
      path of a CA bundle file or directory for on-prem CAs.
    - ``cert``: ``(certificate file, key file)`` for mutual TLS (system certificates).
    - ``retry``: see :class:`RetryPolicy`; it applies to every request through a
      :class:`RetryTransport`.
    - ``proxy``: an explicit HTTP(S) proxy URL. Proxy environment variables are not read.

    An unreadable CA bundle or client certificate raises :class:`~bridge.errors.ConfigError`.
    The caller closes the client (adapters do it in ``Adapter.close``).
    """
    if verify is False:
        _http_log.warning("TLS certificate verification is off for %s", mask_cpr(base_url))
    transport = httpx.HTTPTransport(verify=_ssl_context(verify, cert), proxy=proxy)
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        auth=auth,
        event_hooks=event_hooks,
        transport=RetryTransport(transport, retry),
    )


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


# ---------------------------------------------------------------------------------------------
# XML: hardened lxml parsing (DESIGN §6: no entities, no network, size limits)
# ---------------------------------------------------------------------------------------------

MAX_XML_BYTES = 10 * 1024 * 1024

# A DOCTYPE can only come before the root element, after an optional BOM, XML declaration,
# comments and processing instructions. Matching there (not anywhere) keeps text such as
# "<!DOCTYPE" inside a CDATA section from being mistaken for one.
_DOCTYPE_IN_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.DOTALL)


class _Hardening(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    dtd_validation: bool


# One set of flags for whole-document and streaming parsers (lxml's iterparse takes no parser).
_HARDENING: _Hardening = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
}


class XmlRejected(ValueError):
    """An XML document refused before or while parsing; the message says why and holds no content."""


def safe_xml_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """An lxml parser that resolves no entities, loads no DTD and touches no network.

    ``huge_tree`` stays off unless a trusted caller needs libxml2's size limits lifted.
    """
    return etree.XMLParser(**_HARDENING, huge_tree=huge_tree)


def _reject_doctype(tree: etree._ElementTree) -> None:
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejected("the document declares a DOCTYPE; DTDs and entity declarations are not accepted")


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse a whole document with :func:`safe_xml_parser` and return its root.

    Raises :class:`XmlRejected` if ``data`` is longer than ``max_bytes``, declares a DOCTYPE
    (so no external entity is read and no entity bomb expands), or is not well-formed.
    """
    if len(data) > max_bytes:
        raise XmlRejected(f"the document is {len(data)} bytes, more than the {max_bytes} accepted")
    if _DOCTYPE_IN_PROLOG.match(data):
        raise XmlRejected("the document declares a DOCTYPE; DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"not well-formed XML: {mask_cpr(str(exc))}") from None
    # The byte scan above cannot see a DOCTYPE in a non-ASCII-compatible encoding (UTF-16);
    # libxml2 does, without having expanded anything.
    _reject_doctype(root.getroottree())
    return root


def iter_xml_elements(
    source: IO[bytes] | str | os.PathLike[str], tag: str, *, huge_tree: bool = False
) -> Iterator[etree._Element]:
    """Stream the elements named ``tag`` (lxml syntax: ``{ns}name``, ``{*}name``) from ``source``.

    Parsed with the same hardening as :func:`safe_xml_parser`. Each element is complete when
    yielded and is cleared when the caller asks for the next one, and the siblings before it are
    dropped from the tree: copy what you need before moving on. Memory stays bounded by one
    element plus its ancestors.
    Raises :class:`XmlRejected` for a DOCTYPE or a document that is not well-formed.
    """
    events = etree.iterparse(source, events=("end",), tag=tag, **_HARDENING, huge_tree=huge_tree)
    checked = False
    try:
        for _event, element in events:
            if not checked:
                _reject_doctype(element.getroottree())
                checked = True
            # The siblings before this element were yielded and cleared already (or were never
            # asked for); dropping them before yielding keeps the tree at one element per level.
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
            yield element
            element.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"not well-formed XML: {mask_cpr(str(exc))}") from None
    if not checked and events.root is not None:
        _reject_doctype(events.root.getroottree())


# ---------------------------------------------------------------------------------------------
# Paging and bounded concurrency
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")
R = TypeVar("R")


def paginate_offset(
    fetch_page: Callable[[int, int], tuple[Sequence[T], int | None]],
    *,
    page_size: int,
    start: int = 0,
) -> Iterator[Sequence[T]]:
    """Yield the pages of a Limit/Skip API until it runs out.

    ``fetch_page(offset, limit)`` returns the page's items and the total the source reports
    (``None`` if it reports none). Paging stops after an empty page, a short page, or once the
    offset reaches the total of the latest page — a total that changes between pages is
    followed, not trusted from the first page. Offset paging can skip or repeat an item the
    source inserts or deletes meanwhile; adapters cover that with an overlap and dedup.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    offset = start
    while True:
        items, total = fetch_page(offset, page_size)
        if not items:
            return
        yield items
        offset += len(items)
        if len(items) < page_size or (total is not None and offset >= total):
            return


def bounded_map(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> Generator[R, None, None]:
    """Yield ``fn(item)`` for each item, in input order, with at most ``concurrency`` calls running.

    Items are read lazily: at most ``2 * concurrency`` are submitted ahead of the one being
    yielded, so memory stays bounded however many items there are, and workers keep busy while
    one slow call holds up the order. An exception from ``fn`` is raised when its turn comes;
    work not yet started is then cancelled, as it is when the caller closes the generator early.
    ``fn`` runs in worker threads (an ``httpx.Client`` is safe to share between them).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    pending: deque[Future[R]] = deque()
    remaining = iter(items)
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bridge-map")
    try:
        pending.extend(executor.submit(fn, item) for item in islice(remaining, 2 * concurrency))
        while pending:
            result = pending.popleft().result()
            pending.extend(executor.submit(fn, item) for item in islice(remaining, 1))
            yield result
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
