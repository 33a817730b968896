"""The ``sbsys`` adapter: children's cases from SB-SYS through the SBSIP Web API.

What it reads, per children's case (the number interval ``27.24.00-G01`` … ``-G02``):
``GET api/sag/{id}`` (the case, the child and its parents), ``GET api/erindring/sag/{id}``
and ``GET api/sag/{id}/journalarknotes`` (milestones), ``GET api/sag/{id}/dokumenter`` and
``GET api/fil/{id}`` (Trivselslinealen score forms as OS2forms XML), and a search of the
grant cases (KLE 27.27.xx) whose primary party is the child (measures). The payload
shapes live in :mod:`bridge_sbsys.wire`.

**Incremental sync.** Cases are paged with ``Limit``/``Skip`` in ascending ``Id`` order,
filtered on ``SenestAendret`` at or after the cursor's ``since``. The set of matches only
grows while a client pages (an edit moves a case's ``SenestAendret`` forward, never out of
the filter), so offset paging neither skips nor loses a case; one seen twice is stored
once (the engine's content-hash dedup). An edit made to an already-read case during the
run is caught by the next run, because the next ``since`` is at most the run's start on
the source's clock (its HTTP ``Date``) minus the overlap window. A grant case changed on
its own does not move its child's ``SenestAendret``, so an incremental run also pages the
grant cases changed since ``since`` and fetches their children's cases again.

Cursor: JSON ``{"since": …}`` between runs; within a run it also holds the phase and the
offset, so a run that dies resumes after the last committed page.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

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
    paginate_offset,
    raise_for_status,
)
from bridge.errors import AdapterError, AuthError
from bridge.hookspecs import hookimpl
from bridge.model.records import (
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseworkerRecord,
    MeasureRecord,
    rejection_reason,
)
from bridge.privacy import InvalidCPR
from bridge_sbsys import wire

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)


class SbsysConfig(AdapterConfig):
    """``[sources.settings]`` of an ``sbsys`` source."""

    base_url: str = Field(
        description="SBSIP root, with the proxy prefix if there is one, e.g. "
        "https://sbsip.example.dk/convergens-sbsip-sbsys-webapi-proxy/proxy"
    )
    token_url: str | None = Field(default=None, description="Keycloak token endpoint, if not under base_url")
    grant_type: Literal["password", "client_credentials"] = "password"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    username: str | None = Field(default=None, description="service user (password grant)")
    password: SecretStr | None = None
    verify: bool = Field(default=True, description="verify the server's TLS certificate")
    ca_bundle: Path | None = Field(default=None, description="CA bundle for an on-prem CA")
    timeout: float = Field(default=30.0, gt=0)
    page_size: int = Field(default=100, ge=1, le=1000)
    concurrency: int = Field(default=4, ge=1, le=32, description="cases fetched in parallel")
    overlap_seconds: float = Field(default=600.0, ge=0, description="re-read window before the cursor")
    case_numbers_from: str = wire.MAIN_CASES.start
    case_numbers_to: str = wire.MAIN_CASES.stop
    grant_numbers_from: str = wire.GRANT_CASES.start
    grant_numbers_to: str = wire.GRANT_CASES.stop
    max_attempts: int = Field(default=5, ge=1, le=20, description="tries per request, transient faults")
    retry_base_delay: float = Field(default=0.5, ge=0, description="first backoff in seconds")

    @field_validator("base_url", "token_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return None if value is None else value.rstrip("/")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.grant_type == "password" and (not self.username or self.password is None):
            raise ValueError("the password grant needs username and password")
        if self.ca_bundle is not None and not self.verify:
            raise ValueError("ca_bundle is set but verify is false")
        return self

    @property
    def token_endpoint(self) -> str:
        return self.token_url or self.base_url + wire.TOKEN_PATH


class _BearerAuth(httpx.Auth):
    """Keycloak bearer tokens: fetched on first use, renewed before expiry and once on a 401."""

    def __init__(self, fetch: Callable[[], wire.Token], clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self, *, stale: str | None = None) -> str:
        """The current token; a new one if it is about to expire or equals ``stale``."""
        with self._lock:
            if self._token is None or self._token == stale or self._clock() >= self._renew_at:
                issued = self._fetch()
                # Renew a little early so a token does not expire between check and use.
                margin = min(30.0, issued.expires_in / 5)
                self._token, self._renew_at = issued.access_token, self._clock() + issued.expires_in - margin
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(stale=token)}"
            yield request


@dataclass(frozen=True)
class _Cursor:
    since: datetime | None = None
    phase: Literal["cases", "grants"] = "cases"
    skip: int = 0
    started: datetime | None = None
    high: datetime | None = None

    def encode(self) -> str:
        def stamp(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        if self.started is None:
            return json.dumps({"since": stamp(self.since)})
        return json.dumps(
            {
                "since": stamp(self.since),
                "phase": self.phase,
                "skip": self.skip,
                "started": stamp(self.started),
                "high": stamp(self.high),
            }
        )

    @classmethod
    def decode(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)

            def stamp(key: str) -> datetime | None:
                value = data.get(key)
                return None if value is None else datetime.fromisoformat(value)

            return cls(
                stamp("since"), data.get("phase", "cases"), int(data.get("skip", 0)), stamp("started"), stamp("high")
            )
        except (ValueError, TypeError, AttributeError):
            raise AdapterError("the stored cursor is not an sbsys cursor; run the sync with --full") from None

    def seen(self, modified: datetime) -> _Cursor:
        return replace(self, high=modified if self.high is None else max(self.high, modified))

    def finished(self, overlap: timedelta) -> _Cursor:
        """The cursor for the next run: never past this run's start, less the overlap."""
        started = self.started or datetime.now(UTC)
        upto = started if self.high is None else min(started, self.high)
        return _Cursor(since=max(self.since or _EPOCH, upto - overlap))


@dataclass
class _Run:
    """What one ``fetch`` has done: case ids fetched, and person keys of their children."""

    done: set[int] = field(default_factory=set)
    children: set[str] = field(default_factory=set)


class _Pages:
    """The search pages of ``interval`` changed since ``state.since``, from ``state.skip`` on.

    ``state`` is the cursor after the page last yielded (the run's start is taken from the
    first answer's ``Date``), and after the last page once iteration ends.
    """

    def __init__(self, adapter: SbsysAdapter, state: _Cursor, interval: wire.NumberInterval, *, with_parts: bool):
        self.state = state
        self._adapter = adapter
        self._query = wire.SearchQuery(interval, adapter.settings.page_size, 0, modified_since=state.since)
        self._with_parts = with_parts
        self.expected: int | None = None
        """The cases still to read, from the listing's total (for progress)."""

    def _page(self, skip: int, limit: int) -> tuple[list[Mapping[str, Any]], int | None]:
        query = replace(self._query, skip=skip, limit=limit)
        response = self._adapter._search(query, with_parts=self._with_parts)
        if self.state.started is None:
            self.state = replace(self.state, started=_source_time(response))
        items, total = _search_result(response)
        if total is not None and self.expected is None:
            self.expected = max(total - skip, 0)
        return items, total

    def __iter__(self) -> Iterator[list[Mapping[str, Any]]]:
        for items in paginate_offset(self._page, page_size=self._query.limit, start=self.state.skip):
            state = replace(self.state, skip=self.state.skip + len(items))
            for sag in items:
                # A case without a readable SenestAendret is rejected with a reason when fetched.
                with suppress(wire.WireError):
                    state = state.seen(wire.read_modified(sag))
            self.state = state
            yield list(items)


class SbsysAdapter(Adapter):
    """Children's cases, grants, milestones and scores from SB-SYS (SBSIP Web API)."""

    name = "sbsys"
    description = "SB-SYS through the SBSIP Web API (REST/JSON behind Keycloak)"
    Config = SbsysConfig
    simulator: ClassVar[str] = "bridge_sbsys.simulator:simulate"

    def __init__(self, config: AdapterConfig, context: SourceContext) -> None:
        if not isinstance(config, SbsysConfig):
            raise TypeError("the sbsys adapter needs an SbsysConfig")
        super().__init__(config, context)
        self.settings = config
        self._cases = wire.NumberInterval(config.case_numbers_from, config.case_numbers_to)
        self._grants = wire.NumberInterval(config.grant_numbers_from, config.grant_numbers_to)
        self._client: httpx.Client | None = None
        self._auth = _BearerAuth(self._request_token)

    # --- HTTP ------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            s = self.settings
            verify: bool | str = str(s.ca_bundle) if s.ca_bundle is not None else s.verify
            retry = RetryPolicy(max_attempts=s.max_attempts, base_delay=s.retry_base_delay)
            self._client = http_client(base_url=s.base_url, timeout=s.timeout, verify=verify, retry=retry)
        return self._client

    def _request_token(self) -> wire.Token:
        s = self.settings
        form = wire.token_form(
            s.grant_type,
            s.client_id,
            s.client_secret.get_secret_value(),
            s.username,
            None if s.password is None else s.password.get_secret_value(),
        )
        response = self.client.post(s.token_endpoint, data=form)
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"SB-SYS refused the credentials at the token endpoint {s.token_endpoint} "
                f"({response.status_code} {_oauth_error(response)}); check client_id, client_secret"
                + (", username and password" if s.grant_type == "password" else "")
            )
        raise_for_status(response, "SB-SYS token request")
        try:
            return wire.read_token(response.json())
        except (ValueError, wire.WireError) as exc:
            raise AdapterError(f"the SB-SYS token endpoint {s.token_endpoint} answered oddly: {exc}") from None

    def _get(self, path: str, what: str) -> httpx.Response | None:
        """GET with the bearer token; ``None`` for 404 (deleted meanwhile)."""
        response = self.client.get(path, auth=self._auth)
        if response.status_code == 404:
            return None
        return raise_for_status(response, what)

    def _search(self, query: wire.SearchQuery, *, with_parts: bool = False) -> httpx.Response:
        params = wire.INCLUDE_PARTS if with_parts else None
        body = wire.render_search_query(query)
        response = self.client.post(wire.SEARCH_PATH, json=body, params=params, auth=self._auth)
        return raise_for_status(response, "SB-SYS case search")

    def _search_all(self, query: wire.SearchQuery, *, with_parts: bool = False) -> list[Mapping[str, Any]]:
        def page(skip: int, limit: int) -> tuple[list[Mapping[str, Any]], int | None]:
            return _search_result(self._search(replace(query, skip=skip, limit=limit), with_parts=with_parts))

        return [sag for items in paginate_offset(page, page_size=self.settings.page_size) for sag in items]

    # --- Adapter ---------------------------------------------------------------------------

    def check(self) -> None:
        """Authenticate at the token endpoint; read nothing."""
        self._auth.token(stale=None)

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        state = _Cursor.decode(cursor)
        run = _Run()
        if state.phase == "cases":
            pages = _Pages(self, state, self._cases, with_parts=False)
            for page in pages:
                batch = self._fetch_cases(page, pages.state, run)
                batch.expected = pages.expected
                yield batch
            state = replace(pages.state, phase="grants", skip=0)
        if state.since is not None:
            pages = _Pages(self, state, self._grants, with_parts=True)
            for page in pages:
                yield self._fetch_cases(self._cases_of_changed_grants(page, run), pages.state, run)
            state = pages.state
        yield Batch(cursor=state.finished(timedelta(seconds=self.settings.overlap_seconds)).encode())

    def parse_payload(self, payload: str) -> CaseRecord:
        """Map a quarantined bundle (the JSON of everything fetched for one case) again."""
        return self._record(json.loads(payload))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- paging ------------------------------------------------------------------------------

    def _child_key(self, cpr: str | None) -> str | None:
        try:
            return None if cpr is None else self.context.persons.person(cpr).key
        except InvalidCPR:
            return None

    def _cases_of_changed_grants(self, grants: list[Mapping[str, Any]], run: _Run) -> list[Mapping[str, Any]]:
        """The main cases of the children of changed grants that this run has not fetched yet."""
        cprs: dict[str, str] = {}
        for grant in grants:
            cpr = wire.read_child_cpr(grant)
            key = self._child_key(cpr)
            if cpr is not None and key is not None and key not in run.children:
                cprs.setdefault(key, cpr)
        found = bounded_map(
            lambda cpr: self._search_all(wire.SearchQuery(self._cases, self.settings.page_size, 0, primary_cpr=cpr)),
            list(cprs.values()),
            self.settings.concurrency,
        )
        return [sag for sags in found for sag in sags]

    def _fetch_cases(self, sags: list[Mapping[str, Any]], state: _Cursor, run: _Run) -> Batch:
        """Fetch and map the cases of ``sags`` not fetched yet in this run (in parallel)."""
        batch = Batch(cursor=state.encode())
        ids = [i for i in dict.fromkeys(_sag_id(s) for s in sags) if i is not None and i not in run.done]
        for sag_id, bundle in zip(ids, bounded_map(self._bundle, ids, self.settings.concurrency), strict=True):
            run.done.add(sag_id)
            if bundle is None:
                continue  # deleted since the search; a --full sync marks it deleted
            key = self._child_key(wire.read_child_cpr(bundle["sag"]))
            if key is not None:
                run.children.add(key)
            try:
                batch.records.append(self._record(bundle))
            except (ValueError, InvalidCPR, ValidationError) as exc:
                batch.rejections.append(Rejection(str(sag_id), rejection_reason(exc), json.dumps(bundle)))
        return batch

    # --- one case ------------------------------------------------------------------------------

    def _bundle(self, sag_id: int) -> dict[str, Any] | None:
        """Everything SBSIP holds on one case, as received; ``None`` if the case is gone."""
        sag_response = self._get(wire.sag_path(sag_id), "SB-SYS case")
        if sag_response is None:
            return None
        sag = _body(sag_response)
        bundle: dict[str, Any] = {"sag": sag}
        for key, path in (
            ("erindringer", wire.erindringer_path(sag_id)),
            ("journalarknotes", wire.journal_notes_path(sag_id)),
            ("dokumenter", wire.documents_path(sag_id)),
        ):
            response = self._get(path, f"SB-SYS {key}")
            bundle[key] = [] if response is None else _body(response)
        files: dict[str, str] = {}
        try:
            xml_files = list(wire.read_xml_files(bundle["dokumenter"]))
        except wire.WireError:
            xml_files = []  # the case is rejected for its documents when mapped
        for xml_file in xml_files:
            response = self._get(wire.file_path(xml_file.file_id), "SB-SYS file")
            if response is not None:
                files[str(xml_file.file_id)] = response.text
        bundle["filer"] = files
        child = wire.read_child_cpr(sag) if isinstance(sag, Mapping) else None
        bundle["bevillinger"] = (
            []
            if child is None
            else self._search_all(
                wire.SearchQuery(self._grants, self.settings.page_size, 0, primary_cpr=child), with_parts=True
            )
        )
        return bundle

    def _record(self, bundle: Mapping[str, Any]) -> CaseRecord:
        """Map one case's bundle; raises ``ValueError`` (``WireError``, ``InvalidCPR``, pydantic)."""
        raw = bundle["sag"]
        if not isinstance(raw, Mapping):
            raise wire.WireError("the case is not an object")
        sag = wire.read_sag(raw)
        child = wire.read_child(raw)
        persons = self.context.persons
        person = persons.person(child.cpr)
        assessments = []
        files = bundle.get("filer") or {}
        for xml_file in wire.read_xml_files(bundle.get("dokumenter")):
            text = files.get(str(xml_file.file_id))
            if text is None:
                continue  # removed between listing and download
            try:
                form = wire.read_score_form(text.encode())
            except wire.WireError as exc:
                raise wire.WireError(f"document {xml_file.document_id}: {exc}") from None
            if form is None:
                continue
            assessments += [
                AssessmentRecord(theme=s.theme, value=s.value, assessed_on=form.assessed_on, assessor=form.assessor)
                for s in form.scores
            ]
        events = [
            CaseEventRecord(kind=m.kind, occurred_on=m.occurred_on, source_ref=m.ref)
            for m in (
                *wire.read_journal_notes(bundle.get("journalarknotes")),
                *wire.read_erindringer(bundle.get("erindringer")),
            )
        ]
        measures = []
        for raw_grant in bundle.get("bevillinger") or []:
            grant = wire.read_grant(raw_grant)
            if grant.child_cpr is None or not wire.same_person(grant.child_cpr, child.cpr):
                continue  # the search matched on another party; not this child's grant
            measures.append(
                MeasureRecord(
                    source_ref=str(grant.id),
                    act=grant.act,
                    paragraph=grant.paragraph,
                    start=grant.start,
                    end=grant.end,
                    has_grant=grant.has_grant,
                    account_code=grant.account_code,
                    provider=grant.provider,
                )
            )
        worker = sag.caseworker
        return CaseRecord(
            source_ref=str(sag.id),
            municipality=self.context.municipality,
            child_key=person.key,
            child_birth_date=person.birth_date,
            child_sex=person.sex,
            child_cpr=person.cpr,
            family_key=persons.family_key(child.guardians),
            family_case_number=sag.family_case_number,
            caseworker=None
            if worker is None
            else CaseworkerRecord(source_ref=str(worker.id), name=worker.name, unit=worker.unit),
            case_number=sag.number,
            kle=sag.kle,
            target_group=sag.target_group,
            opened=sag.opened,
            closed=sag.closed,
            status=sag.status,
            source_modified=sag.modified,
            measures=tuple(measures),
            assessments=tuple(assessments),
            events=tuple(events),
        )


def _oauth_error(response: httpx.Response) -> str:
    """Keycloak's error code (``invalid_client``, ``invalid_grant``), never the description."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) and error.isidentifier() else response.reason_phrase


def _body(response: httpx.Response) -> Any:
    """The JSON of an answer about one case, or its text if it is not JSON.

    Text goes into the case's bundle as it came, so the case is quarantined with the
    payload (the readers refuse it with a reason) instead of failing the run.
    """
    try:
        return response.json()
    except ValueError:
        return response.text


def _search_result(response: httpx.Response) -> tuple[list[Mapping[str, Any]], int | None]:
    """A search page; an answer that is not a search result ends the run (paging cannot go on)."""
    try:
        return wire.read_search_result(response.json())
    except ValueError as exc:  # WireError, or not JSON at all
        reason = exc if isinstance(exc, wire.WireError) else "not JSON"
        raise AdapterError(
            f"the SB-SYS case search answered something that is not a search result ({reason})"
        ) from None


def _source_time(response: httpx.Response) -> datetime:
    """When the source answered, by its own clock (HTTP ``Date``); our clock if it sent none."""
    header = response.headers.get("Date")
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            pass
        else:  # HTTP dates are GMT; one without a zone is read as such
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return datetime.now(UTC).replace(microsecond=0)


def _sag_id(sag: Mapping[str, Any]) -> int | None:
    try:
        return wire.read_sag_id(sag)
    except wire.WireError:
        return None


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(SbsysAdapter)
