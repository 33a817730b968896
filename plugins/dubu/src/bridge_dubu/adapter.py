"""The ``dubu`` adapter: children's cases from DUBU through Serviceplatformen (SF1475, SOAP over mTLS).

Two operations (:mod:`bridge_dubu.wire` holds their names and shapes): ``HentAendredeSager``
lists references to the cases changed at or after an instant, page by page behind continuation
tokens, and ``HentSag`` returns one case with its ICS content. Every call carries the
InvocationContext of the service agreement as a SOAP header and travels over mutual TLS with the
anvendersystem's certificate (:mod:`bridge_dubu.tls`).

**Listing.** Tokens are followed until the service sends none (or an empty one); a page may hold
fewer references than asked for on any page, so page size never ends a listing. A token that
comes back a second time ends the run with an error, since the listing would never end. The
tokens are positions in a list that changes while it is read (a case edited meanwhile moves to
the end, a deleted one leaves a gap), so after a listing the adapter lists the same window again
and fetches what the first reading missed; it stops when a reading finds nothing new, at most
``listing_passes`` times. References older than the instant asked for are left out (a service
that ignores the filter must not make an incremental run re-read everything), and so is a case
whose ``Kommunekode`` is not the source's (a service that ignores the agreement's scope must not
put another municipality's case in this source); the run logs how many of each it left out.

**Faults** are read before anything is retried: HTTP 500 with a SOAP fault is an answer. What
each code does follows the reference README: 1001/1002/2001/2003 end the run, 2002 restarts the
listing from the last instant read, 3001 skips the vanished case, 3002 quarantines the case and
goes on, 5001/5002 are retried with backoff (bounded). Anything that is not a SOAP fault is
transport trouble, retried by the HTTP layer.

**Cursor.** Instants, never strings. Between runs: JSON ``{"since": …}`` — the largest
``SidstAendret`` read, but never past the source's clock at the start of the run (the first
page's ``SvarTidspunkt``), less ``overlap_seconds``. Inclusive semantics and the overlap bring
some cases again; the engine stores an unchanged case once (content hash). Within a run the
cursor also holds the instant to restart the listing from, so a run that dies resumes after its
last committed page.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Self

import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from bridge.adapter import (
    Adapter,
    AdapterConfig,
    Batch,
    Rejection,
    RetryPolicy,
    SourceContext,
    bounded_map,
    http_client,
    raise_for_status,
)
from bridge.adapter.http import transient_status
from bridge.errors import AdapterError, AuthError, SourceUnavailable
from bridge.hookspecs import hookimpl
from bridge.model.records import (
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseStatus,
    CaseworkerRecord,
    EventKind,
    MeasureRecord,
    TargetGroup,
    rejection_reason,
)
from bridge.privacy import InvalidCPR, mask_cpr
from bridge_dubu import wire
from bridge_dubu.tls import ClientIdentity, identity_files, issuer_of, load_client_identity, refused_after_handshake

log = logging.getLogger("bridge.dubu")

_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_KLE_IN_NUMBER = r"^(\d{2}\.\d{2}\.\d{2})-"


class DubuConfig(AdapterConfig):
    """``[sources.settings]`` of a ``dubu`` source."""

    endpoint: str = Field(
        description="the service URL, e.g. https://prod.serviceplatformen.dk/service/DUBU/HentSager/1"
    )
    service_agreement_uuid: str = Field(pattern=_UUID_PATTERN, description="InvocationContext ServiceAgreementUUID")
    user_system_uuid: str = Field(pattern=_UUID_PATTERN, description="InvocationContext UserSystemUUID")
    user_uuid: str = Field(pattern=_UUID_PATTERN, description="InvocationContext UserUUID")
    service_uuid: str = Field(pattern=_UUID_PATTERN, description="InvocationContext ServiceUUID")
    accounting_info: str | None = Field(
        default="bridge", max_length=255, description="InvocationContext AccountingInfo"
    )
    client_cert: Path | None = Field(
        default=None, description="PEM certificate (chain may follow) of the anvendersystem"
    )
    client_key: Path | None = Field(default=None, description="PEM private key file of client_cert")
    client_key_pem: SecretStr | None = Field(default=None, description="the PEM key itself, from a secret reference")
    client_pkcs12: Path | None = Field(default=None, description="PKCS#12 bundle (.p12/.pfx) with certificate and key")
    client_pkcs12_base64: SecretStr | None = Field(default=None, description="the PKCS#12 bundle base64, from a secret")
    client_key_password: SecretStr | None = Field(default=None, description="password of the key or the bundle")
    ca_bundle: Path | None = Field(default=None, description="CA bundle that signs the service's certificate")
    timeout: float = Field(default=60.0, gt=0)
    page_size: int = Field(default=wire.MAX_COUNT, ge=1, le=wire.MAX_COUNT, description="MaksAntal per listing page")
    concurrency: int = Field(default=4, ge=1, le=32, description="cases fetched in parallel")
    overlap_seconds: float = Field(default=600.0, ge=0, description="re-read window before the cursor")
    listing_passes: int = Field(default=3, ge=1, le=10, description="readings of a listing until one finds nothing new")
    max_listing_restarts: int = Field(default=3, ge=0, le=20, description="restarts of a listing after fault 2002")
    max_attempts: int = Field(default=5, ge=1, le=20, description="tries per call, outages and faults 5001/5002")
    retry_base_delay: float = Field(default=0.5, ge=0, description="first backoff in seconds")
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="largest answer read")

    @field_validator("endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("service_agreement_uuid", "user_system_uuid", "user_uuid", "service_uuid")
    @classmethod
    def _lower(cls, value: str) -> str:
        # Serviceplatformen's UUID type accepts lower-case hex only; a pasted upper-case UUID is the same UUID.
        return value.lower()

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        pem = self.client_cert is not None or self.client_key is not None or self.client_key_pem is not None
        bundle = self.client_pkcs12 is not None or self.client_pkcs12_base64 is not None
        if pem and bundle:
            raise ValueError("give the client certificate as PEM (client_cert, client_key) or as PKCS#12, not both")
        if self.client_key is not None and self.client_key_pem is not None:
            raise ValueError("give client_key (a file) or client_key_pem (from a secret), not both")
        if self.client_pkcs12 is not None and self.client_pkcs12_base64 is not None:
            raise ValueError("give client_pkcs12 (a file) or client_pkcs12_base64 (from a secret), not both")
        if pem and (self.client_cert is None or (self.client_key is None and self.client_key_pem is None)):
            raise ValueError("client_cert and client_key (or client_key_pem) go together")
        return self

    @property
    def has_identity(self) -> bool:
        return self.client_cert is not None or self.client_pkcs12 is not None or self.client_pkcs12_base64 is not None

    def invocation_context(self) -> wire.InvocationContext:
        return wire.InvocationContext(
            service_agreement=self.service_agreement_uuid,
            user_system=self.user_system_uuid,
            user=self.user_uuid,
            service=self.service_uuid,
            accounting=self.accounting_info,
        )


class DubuFault(AdapterError):
    """DUBU answered a call with a SOAP fault; the message names the operation, the code and the text."""

    def __init__(self, operation: wire.Operation, fault: wire.Fault, advice: str = "") -> None:
        self.operation = operation
        self.fault = fault
        message = f"DUBU {operation.value} answered with fault {fault.describe()}"
        super().__init__(f"{message}; {advice}" if advice else message)

    @property
    def code(self) -> str | None:
        return self.fault.code


class DubuAuthFault(DubuFault, AuthError):
    """Fault 1002: no service agreement for these UUIDs, or the certificate is not on the anvendersystem."""


_ADVICE = {
    wire.FaultCode.context_invalid: "check the four InvocationContext UUIDs in the source's settings",
    wire.FaultCode.not_authorised: (
        "check service_agreement_uuid, user_system_uuid, user_uuid and service_uuid against the service "
        "agreement, and that the client certificate is registered on the anvendersystem"
    ),
    wire.FaultCode.invalid_request: "the service refused bridge's request; please report this as a bug",
    wire.FaultCode.max_count_invalid: "page_size must be between 1 and 500",
}
_RETRIED_FAULTS = frozenset({wire.FaultCode.internal_error, wire.FaultCode.unavailable})


def _soap_fault_or_outage(response: httpx.Response) -> bool:
    """The retry classifier: an outage status whose body is no SOAP fault (a fault is an answer)."""
    if not transient_status(response):
        return False
    try:
        return wire.parse_fault(response.content) is None
    except wire.WireError:
        return True  # an answer the parser refuses is no fault either: transport trouble


def _describe_cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {mask_cpr(str(exc))}"


# --- the cursor ------------------------------------------------------------------------------------


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _instant(data: dict[str, object], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(key)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(key)
    return parsed


@dataclass(frozen=True)
class _Cursor:
    """Where a run starts and, within a run, where its listing resumes (instants, never strings)."""

    since: datetime | None = None
    resume: datetime | None = None
    started: datetime | None = None
    high: datetime | None = None

    def encode(self) -> str:
        if self.started is None:
            return json.dumps({"since": _stamp(self.since)})
        fields = {"since": self.since, "resume": self.resume, "started": self.started, "high": self.high}
        return json.dumps({key: _stamp(value) for key, value in fields.items()})

    @classmethod
    def decode(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or "since" not in data:
                raise ValueError("no since")
            return cls(
                _instant(data, "since"), _instant(data, "resume"), _instant(data, "started"), _instant(data, "high")
            )
        except (ValueError, TypeError):
            raise AdapterError("the stored cursor is not a dubu cursor; run the sync with --full") from None

    def seen(self, modified: datetime) -> _Cursor:
        return replace(self, high=modified if self.high is None else max(self.high, modified))

    def finished(self, overlap: timedelta, now: datetime) -> _Cursor:
        """The cursor of the next run: the largest instant read, never past this run's start, less the overlap."""
        started = self.started or now
        upto = started if self.high is None else min(started, self.high)
        floor = self.since or wire.FULL_SYNC_FROM
        return _Cursor(since=max(floor, upto - overlap))


# --- a run ----------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one ``fetch`` has read: ``(SagUUID, SidstAendret)`` of every case fetched or skipped,
    and the SagUUIDs of what the service sent that this source did not ask for, by why."""

    done: dict[str, datetime] = field(default_factory=dict)
    left_out: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def leave_out(self, why: str, uuids: Iterable[str]) -> None:
        with self.lock:
            self.left_out.setdefault(why, set()).update(uuids)

    def wanted(self, reference: wire.SagReference) -> bool:
        with self.lock:
            seen = self.done.get(reference.uuid)
            return seen is None or seen < reference.modified

    def record(self, reference: wire.SagReference) -> None:
        with self.lock:
            seen = self.done.get(reference.uuid)
            self.done[reference.uuid] = reference.modified if seen is None else max(seen, reference.modified)


@dataclass(frozen=True)
class _Outcome:
    """What fetching one listed case gave: a record, a rejection, or nothing (the case is gone)."""

    record: CaseRecord | None = None
    rejection: Rejection | None = None


_OLDER = f"listed case(s) changed before the {wire.NAMES.changed_after} asked for"
_FOREIGN = f"case(s) of another municipality ({wire.NAMES.municipality})"


class DubuAdapter(Adapter):
    """Children's cases with their ICS content from DUBU (SF1475 on Serviceplatformen)."""

    name = "dubu"
    description = "DUBU through Serviceplatformen (SF1475, SOAP 1.1 over mutual TLS)"
    Config = DubuConfig
    simulator: ClassVar[str] = "bridge_dubu.simulator:simulate"

    def __init__(self, config: AdapterConfig, context: SourceContext) -> None:
        if not isinstance(config, DubuConfig):
            raise TypeError("the dubu adapter needs a DubuConfig")
        super().__init__(config, context)
        self.settings = config
        self._context = config.invocation_context()
        self._client: httpx.Client | None = None
        endpoint = httpx.URL(config.endpoint)
        # The service path is posted to as it is: a base URL would gain a trailing slash.
        self._origin = str(endpoint.copy_with(path="/", query=None, fragment=None)).rstrip("/")
        self._path = endpoint.raw_path.decode("ascii")
        self._retry = RetryPolicy(
            max_attempts=config.max_attempts, base_delay=config.retry_base_delay, transient=_soap_fault_or_outage
        )
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._answered = False

    # --- calls -----------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            s = self.settings
            with ExitStack() as stack:
                cert = None
                if s.has_identity:
                    cert = stack.enter_context(identity_files(self._identity()))
                else:
                    log.warning(
                        "no client certificate is configured for %s; Serviceplatformen asks for one", s.endpoint
                    )
                self._client = http_client(
                    base_url=self._origin,
                    timeout=s.timeout,
                    verify=True if s.ca_bundle is None else str(s.ca_bundle),
                    cert=cert,
                    retry=self._retry,
                    headers={"Content-Type": wire.CONTENT_TYPE},
                    max_response_bytes=s.max_response_bytes,
                )
        return self._client

    def _explain_refusal(self) -> AuthError | None:
        """Why a first call failed at the connection, if the server refused our TLS client certificate."""
        s = self.settings
        endpoint = httpx.URL(s.endpoint)
        identity = self._identity() if s.has_identity else None
        ca_bundle = None if s.ca_bundle is None else str(s.ca_bundle)
        port = endpoint.port or 443
        said = refused_after_handshake(endpoint.host, port, ca_bundle=ca_bundle, identity=identity, timeout=s.timeout)
        if said is None:
            return None
        where = f"DUBU at {endpoint.host}:{port}"
        if identity is None:
            return AuthError(
                f"{where} refused the connection at the TLS layer ({said}): the service requires a client "
                "certificate (mutual TLS) and none is configured; set client_cert and client_key, or client_pkcs12"
            )
        return AuthError(
            f"{where} refused the client certificate at the TLS layer ({said}): {identity.describe()}, issued by "
            f"{issuer_of(identity)}. Use the certificate registered on the anvendersystem, issued by a CA the "
            "service trusts"
        )

    def _identity(self) -> ClientIdentity:
        s = self.settings

        def secret(value: SecretStr | None) -> str | None:
            return None if value is None else value.get_secret_value()

        return load_client_identity(
            cert=s.client_cert,
            key=s.client_key,
            key_pem=secret(s.client_key_pem),
            pkcs12_file=s.client_pkcs12,
            pkcs12_base64=secret(s.client_pkcs12_base64),
            password=secret(s.client_key_password),
        )

    def _call(self, operation: wire.Operation, body: bytes) -> bytes:
        """POST one SOAP request; the answer's body, or :class:`DubuFault` for a fault.

        Faults 5001/5002 are retried here with the HTTP layer's backoff, bounded by ``max_attempts``;
        outages that are no fault are retried by the HTTP layer itself.
        """
        headers = {"SOAPAction": operation.soap_action}
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                response = self.client.post(self._path, content=body, headers=headers)
            except SourceUnavailable as exc:
                if self._answered:
                    raise
                raise self._explain_refusal() or exc from None
            self._answered = True
            if response.status_code == 200:
                return response.content
            try:
                fault = wire.parse_fault(response.content)
            except wire.WireError:
                fault = None
            if fault is None:
                raise_for_status(response, f"DUBU {operation.value}")
                raise AdapterError(f"DUBU {operation.value} answered {response.status_code} without a SOAP answer")
            if fault.code in _RETRIED_FAULTS and attempt < self._retry.max_attempts:
                delay = self._retry.backoff(attempt)
                log.warning(
                    "DUBU %s answered fault %s; retry %d of %d in %.2f s",
                    operation.value,
                    fault.describe(),
                    attempt,
                    self._retry.max_attempts - 1,
                    delay,
                )
                self._retry.sleep(delay)
                continue
            raise self._fault_error(operation, fault, attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _fault_error(self, operation: wire.Operation, fault: wire.Fault, attempts: int) -> DubuFault:
        code = None
        with suppress(ValueError):
            code = wire.FaultCode(fault.code or "")
        if code is wire.FaultCode.not_authorised:
            return DubuAuthFault(operation, fault, _ADVICE[code])
        if code in _RETRIED_FAULTS:
            return DubuFault(operation, fault, f"still failing after {attempts} attempt(s); run again later")
        return DubuFault(operation, fault, "" if code is None else _ADVICE.get(code, ""))

    def _list(self, changed_after: datetime, token: str | None) -> wire.ListingPage:
        body = wire.render_listing_request(self._context, changed_after, token, self.settings.page_size)
        data = self._call(wire.Operation.list_changed, body)
        try:
            return wire.read_listing(io.BytesIO(data))
        except wire.WireError as exc:
            raise AdapterError(
                f"DUBU {wire.Operation.list_changed.value} answered something unreadable: {exc}"
            ) from None

    def _fetch_case(self, uuid: str) -> bytes | wire.Fault:
        """The raw ``HentSag`` answer for ``uuid``; the fault for the per-case codes 3001 and 3002."""
        try:
            return self._call(wire.Operation.fetch_case, wire.render_case_request(self._context, uuid))
        except DubuFault as exc:
            if exc.code in (wire.FaultCode.case_unknown, wire.FaultCode.case_unavailable):
                return exc.fault
            raise

    # --- Adapter ---------------------------------------------------------------------------------

    def check(self) -> None:
        """One listing call for the last moment: reaches DUBU over mTLS and has the InvocationContext checked."""
        body = wire.render_listing_request(self._context, self.clock().replace(microsecond=0), None, 1)
        self._call(wire.Operation.list_changed, body)

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        state = _Cursor.decode(cursor)
        since = state.since or wire.FULL_SYNC_FROM
        run = _Run()
        # A run resumed after a crash reads again from where it resumed: what the crashed run
        # committed before that is not fetched a second time.
        start = resume = state.resume or since
        for reading in range(1, self.settings.listing_passes + 1):
            missed = 0
            pages = self._pages(state, resume, since)
            for page, state in pages:
                run.leave_out(_OLDER, (r.uuid for r in page.references if r.modified < since))
                references = [r for r in page.references if r.modified >= since and run.wanted(r)]
                if reading > 1 and state.started is not None:
                    # Changed before this run began, yet not read before: the earlier reading skipped it.
                    missed += sum(1 for r in references if r.modified < state.started)
                batch = self._fetch_references(references, run)
                batch.rejections += [
                    Rejection(None, f"DUBU listed a reference that cannot be read: {reason}", payload)
                    for reason, payload in page.broken
                ]
                batch.cursor = state.encode()
                yield batch
            if reading > 1 and missed == 0:
                break
            if reading == self.settings.listing_passes and reading > 1:
                log.warning(
                    "DUBU's listing still showed %d case(s) an earlier reading had skipped; "
                    "the next run lists from the same instant again",
                    missed,
                )
                state = replace(state, high=since)
            # Read the window again: a case changed or removed while the pages were read shifts the
            # positions the tokens stand for, so a first reading may have skipped a case.
            resume = start
        if any(run.left_out.values()):
            log.warning(
                "DUBU sent what this source did not ask for, left out: %s",
                "; ".join(f"{len(uuids)} {why}" for why, uuids in sorted(run.left_out.items()) if uuids),
            )
        yield Batch(cursor=state.finished(timedelta(seconds=self.settings.overlap_seconds), self.clock()).encode())

    def refetch(self, source_refs: Sequence[str]) -> Iterator[Batch]:
        run = _Run()
        references = [wire.SagReference(ref.lower(), wire.FULL_SYNC_FROM) for ref in dict.fromkeys(source_refs)]
        for start in range(0, len(references), self.settings.page_size):
            yield self._fetch_references(references[start : start + self.settings.page_size], run)

    def parse_payload(self, payload: str) -> CaseRecord:
        """Map a quarantined ``HentSag`` answer again.

        A case DUBU did not deliver (fault 3002) was quarantined with its reference only; the
        next sync that lists it, or a refetch, asks DUBU for it again.
        """
        if payload.startswith("{"):
            raise ValueError("DUBU did not deliver this case; it is fetched again when it is asked for anew")
        return self._record(wire.read_case_bytes(payload.encode("utf-8")))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- listing -----------------------------------------------------------------------------------

    def _pages(self, state: _Cursor, resume: datetime, since: datetime) -> Iterator[tuple[wire.ListingPage, _Cursor]]:
        """The listing from ``resume`` on, each page with the cursor after it.

        Follows tokens until none comes back; a token seen before ends the run. Fault 2002
        restarts the listing from the last instant read (at most ``max_listing_restarts`` times).
        The resume instant only advances while the references come in the promised order.
        """
        token: str | None = None
        tokens: set[str] = set()
        restarts = 0
        ordered = True
        last: datetime | None = None
        state = replace(state, resume=resume)
        changed_after = resume
        while True:
            try:
                page = self._list(changed_after, token)
            except DubuFault as exc:
                if exc.code != wire.FaultCode.token_expired or restarts >= self.settings.max_listing_restarts:
                    raise
                restarts += 1
                log.warning("DUBU: %s; restarting the listing from %s", exc, state.resume)
                changed_after, token, tokens = state.resume or since, None, set()
                continue
            if state.started is None:
                state = replace(state, started=(page.answered_at or self.clock()).astimezone(UTC))
            for reference in page.references:
                if last is not None and reference.modified < last:
                    ordered = False  # the service does not keep its order: resume from where this listing began
                last = reference.modified if last is None else max(last, reference.modified)
                if reference.modified >= since:
                    state = state.seen(reference.modified)
            if not ordered:
                state = replace(state, resume=resume)
            elif last is not None:
                state = replace(state, resume=max(state.resume or since, last))
            yield page, state
            if page.token is None:
                return
            if page.token in tokens or page.token == token:
                raise AdapterError(
                    f"DUBU {wire.Operation.list_changed.value} sent a continuation token it had sent before; "
                    "the listing would never end, so the run stops here"
                )
            tokens.add(page.token)
            token = page.token

    # --- cases -------------------------------------------------------------------------------------

    def _fetch_references(self, references: list[wire.SagReference], run: _Run) -> Batch:
        batch = Batch()
        unique = list({r.uuid: r for r in references}.values())
        for outcome in bounded_map(lambda r: self._outcome(r, run), unique, self.settings.concurrency):
            if outcome.record is not None:
                batch.records.append(outcome.record)
            if outcome.rejection is not None:
                batch.rejections.append(outcome.rejection)
        return batch

    def _outcome(self, reference: wire.SagReference, run: _Run) -> _Outcome:
        answer = self._fetch_case(reference.uuid)
        run.record(reference)
        if isinstance(answer, wire.Fault):
            if answer.code == wire.FaultCode.case_unknown:
                log.info("DUBU case %s is gone since it was listed (fault 3001); skipped", reference.uuid)
                return _Outcome()
            reason = f"DUBU could not deliver the case now (fault {answer.describe()})"
            payload = json.dumps({wire.NAMES.case_uuid: reference.uuid, wire.NAMES.error_code: answer.code})
            return _Outcome(rejection=Rejection(reference.uuid, reason, payload))
        try:
            sag = wire.read_case_bytes(answer)
            if sag.uuid != reference.uuid:
                raise wire.WireError(f"{wire.Operation.fetch_case.value} for this case answered another case")
            if sag.municipality != self.context.municipality:
                # The service agreement scopes the listing to the municipality; a server that
                # ignores the scope must not put another municipality's case in this source.
                log.info(
                    "DUBU case %s belongs to another municipality (%s); left out", sag.uuid, wire.NAMES.municipality
                )
                run.record(replace(reference, modified=sag.modified))
                run.leave_out(_FOREIGN, [sag.uuid])
                return _Outcome()
            record = self._record(sag)
        except (ValueError, InvalidCPR, ValidationError) as exc:
            return _Outcome(rejection=Rejection(reference.uuid, rejection_reason(exc), _text(answer)))
        run.record(replace(reference, modified=sag.modified))
        return _Outcome(record=record)

    def _record(self, sag: wire.Sag) -> CaseRecord:
        """Map one case; raises ``ValueError`` (``WireError``, ``InvalidCPR``, pydantic) with the reason."""
        persons = self.context.persons
        child = persons.person(sag.child_cpr)
        if sag.target_group not in wire.TARGET_GROUPS:
            raise wire.WireError(f"{wire.NAMES.target_group} is neither of {', '.join(wire.TARGET_GROUPS)}")
        worker = sag.caseworker
        return CaseRecord(
            source_ref=sag.uuid,
            municipality=self.context.municipality,
            child_key=child.key,
            child_birth_date=child.birth_date,
            child_sex=child.sex,
            child_cpr=child.cpr,
            family_key=persons.family_key(h.cpr for h in sag.custody_holders),
            caseworker=None
            if worker is None
            else CaseworkerRecord(source_ref=caseworker_ref(worker), name=worker.name, unit=worker.unit),
            case_number=sag.number,
            kle=_kle(sag),
            target_group=TargetGroup(sag.target_group),
            opened=sag.opened,
            closed=sag.closed,
            status=_status(sag),
            source_modified=sag.modified,
            measures=tuple(
                MeasureRecord(
                    source_ref=m.uuid,
                    act=m.basis.act,
                    paragraph=m.basis.text(),
                    start=m.start,
                    end=m.end,
                    has_grant=m.granted,
                    account_code=m.account_code,
                    provider=m.provider,
                )
                for m in sag.measures
            ),
            assessments=tuple(
                AssessmentRecord(theme=s.theme, value=s.value, assessed_on=s.assessed_on, assessor=s.assessor)
                for s in sag.scores
            ),
            events=tuple(events(sag)),
        )


def caseworker_ref(worker: wire.Caseworker) -> str:
    """The caseworker's reference: the BrugerUUID, else the initials, else the name (older DUBU answers)."""
    return worker.uuid or worker.initials or worker.name


def _kle(sag: wire.Sag) -> str:
    """``KLEEmne``, else the KLE emne the case number starts with (``27.24.00-G01-41-19``)."""
    if sag.kle is not None:
        return sag.kle
    match = re.match(_KLE_IN_NUMBER, sag.number)
    if match is None:
        raise wire.WireError(f"the case has no {wire.NAMES.kle} and its {wire.NAMES.case_number} names none")
    return match[1]


def _status(sag: wire.Sag) -> CaseStatus:
    """``Status`` when it is a known word; otherwise what the closing date says."""
    if sag.status == wire.STATUS_OPEN:
        return CaseStatus.open
    if sag.status == wire.STATUS_CLOSED:
        return CaseStatus.closed
    return CaseStatus.closed if sag.closed is not None else CaseStatus.open


def _event(kind: EventKind, day: date, ref: str | None, at: datetime | None = None) -> CaseEventRecord:
    return CaseEventRecord(kind=kind, occurred_on=day, occurred_at=at, source_ref=ref)


def events(sag: wire.Sag) -> Iterator[CaseEventRecord]:
    """The case's milestones. Entries without an id in the contract (plans, follow-ups, child
    conversations, consents) have no reference; a consent that was refused is no consent.

    An underretning is two milestones, its receipt and its assessment (``VurderetDato``), each
    with its instant where the answer gives a time of day, so the 24-hour rule can count hours."""
    for n in sag.notifications:
        yield _event(EventKind.notification, n.received.day, n.uuid, n.received.at)
        if n.assessed is not None:
            yield _event(EventKind.notification_assessed, n.assessed.day, n.uuid, n.assessed.at)
    for i in sag.investigations:
        yield _event(EventKind.investigation_started, i.start, i.uuid)
        if i.completed is not None:
            yield _event(EventKind.investigation_completed, i.completed, i.uuid)
    yield from (_event(EventKind.plan_made, p.made, None) for p in sag.plans)
    yield from (_event(EventKind.follow_up, day, None) for day in sag.follow_ups)
    yield from (_event(EventKind.child_conversation, day, None) for day in sag.conversations)
    yield from (_event(EventKind.consent, c.given_on, None) for c in sag.consents if c.given)
    yield from (_event(EventKind.decision, d.decided_on, d.uuid) for d in sag.decisions)


def _text(answer: bytes) -> str:
    return answer.decode("utf-8", errors="replace")


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(DubuAdapter)
