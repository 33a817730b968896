"""The ``sbsys`` adapter: children's cases from SB-SYS through the SBSIP Web API.

What it reads, per children's case (the number interval ``27.24.00-G01`` … ``-G02``):
``GET api/sag/{id}`` (the case, the child and its parents), ``GET api/erindring/sag/{id}``
and ``GET api/sag/{id}/journalarknotes`` (milestones), ``GET api/sag/{id}/dokumenter`` and
``GET api/fil/{id}`` (Trivselslinealen score forms as OS2forms XML), and a search of the
grant cases (KLE 27.27.xx) whose primary party is the child (measures). The payload
shapes live in :mod:`bridge_sbsys.wire`.

**Incremental sync.** Cases are paged with ``Limit``/``Skip`` in ascending ``Id`` order,
filtered on ``SenestAendret`` at or after the cursor's ``since``, to an empty page (never to
a short one: installations cap ``Limit``); a total that cannot be reconciled with what
arrives fails the run. An edit moves a case's ``SenestAendret`` forward, never out of the
filter, so edits do not shift the offsets; a deletion does, and a listing whose total falls
while it is read is read again (cases already fetched are not fetched twice). Every result
is checked client-side against the interval asked for. A case is stored complete or not at
all: when it or one of its parts cannot be read it is quarantined as incomplete, and the
next run fetches it again (:meth:`SbsysAdapter.refetch`). An edit made to an already-read case during the
run is caught by the next run, because the next ``since`` is at most the run's start on
the source's clock (its HTTP ``Date``) minus the overlap window. A grant case changed on
its own does not move its child's ``SenestAendret``, so an incremental run also pages the
grant cases changed since ``since`` and fetches their children's cases again.

Cursor: JSON ``{"since": …}`` between runs; within a run it also holds the phase and the
offset, so a run that dies resumes after the last committed page.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
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
    PagingMismatch,
    Rejection,
    RetryPolicy,
    SourceContext,
    bounded_map,
    http_client,
    paginate_offset,
    raise_for_status,
)
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
from bridge.privacy import InvalidCPR
from bridge_sbsys import wire

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
_MAX_REREADS = 3
"""Times a listing whose offsets shifted is read again in one run before the run gives up."""

log = logging.getLogger("bridge.sbsys")


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
    incomplete_retries: int = Field(
        default=1, ge=0, le=5, description="times a case whose parts failed is fetched again in the same run"
    )
    target_groups: dict[str, TargetGroup] = Field(
        default_factory=lambda: {name: group for group, (_, name) in wire.TEMPLATES.items()},
        description="MODELLED: case template name (SagSkabelon.Navn) -> target group",
    )
    target_group_keywords: dict[str, TargetGroup] = Field(
        default_factory=lambda: dict(wire.TEMPLATE_KEYWORDS),
        description="a word in a template name not in target_groups -> target group (case-insensitive)",
    )
    default_target_group: TargetGroup = Field(
        default=TargetGroup.udsatte, description="the target group of a case whose template names none (counted)"
    )
    milestone_headings: dict[str, EventKind] = Field(
        default_factory=lambda: dict(wire.HEADING_KINDS),
        description="MODELLED: journal-note heading -> milestone; other notes are journal notes",
    )
    milestone_reminders: dict[str, EventKind] = Field(
        default_factory=lambda: dict(wire.REMINDER_KINDS),
        description="MODELLED: erindring type -> milestone when completed; other types are not events",
    )
    grant_fields: wire.GrantFields = Field(
        default_factory=wire.GrantFields, description="MODELLED: the fields of a grant case's details"
    )

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
    first answer's ``Date``), and after the last page once iteration ends. When the listing's
    total falls while it is read (a case deleted meanwhile moves the offsets, so one may be
    skipped), the listing is read again from the start; cases already fetched in the run are
    not fetched again.
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
        for _ in range(_MAX_REREADS + 1):
            pages = paginate_offset(self._page, page_size=self._query.limit, start=self.state.skip)
            for items in pages:
                state = replace(self.state, skip=self.state.skip + len(items))
                for sag in items:
                    # A case without a readable SenestAendret is rejected with a reason when fetched.
                    with suppress(wire.WireError):
                        state = state.seen(wire.read_modified(sag))
                self.state = state
                yield list(items)
            if not pages.shifted:
                return
            log.info("the SB-SYS listing shrank while it was read; reading it again so no case is skipped")
            self.state = replace(self.state, skip=0)
        raise AdapterError(
            f"the SB-SYS listing kept shrinking while it was read ({_MAX_REREADS + 1} times); run the sync again"
        )


class _Gone(Exception):
    """SB-SYS answered 404 for a case asked for by reference: it no longer has it."""


class _Incomplete(Exception):
    """A case SB-SYS did not deliver whole; ``bundle`` is what arrived. The message holds no person data."""

    def __init__(self, reason: str, bundle: Mapping[str, Any]) -> None:
        super().__init__(reason)
        self.bundle = bundle


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
        self.counts: Counter[str] = Counter()
        """What the last fetch defaulted or left out, by what; logged at its end (never a quarantine)."""

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

    def _get(self, path: str, what: str, bundle: Mapping[str, Any]) -> httpx.Response:
        """GET with the bearer token; see :func:`_checked`."""
        return _checked(self.client.get(path, auth=self._auth), what, bundle)

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
        self.counts.clear()
        if state.phase == "cases":
            pages = _Pages(self, state, self._cases, with_parts=False)
            for page in pages:
                batch = self._fetch_cases(self._in(self._cases, page, state.since), pages.state, run)
                batch.expected = pages.expected
                yield batch
            state = replace(pages.state, phase="grants", skip=0)
        if state.since is not None:
            pages = _Pages(self, state, self._grants, with_parts=True)
            for page in pages:
                changed = self._in(self._grants, page, state.since)
                yield self._fetch_cases(self._cases_of_changed_grants(changed, run), pages.state, run)
            state = pages.state
        self._report()
        yield Batch(cursor=state.finished(timedelta(seconds=self.settings.overlap_seconds)).encode())

    def refetch(self, source_refs: Sequence[str]) -> Iterator[Batch]:
        """Fetch cases again by reference (incomplete ones, replays); a case SB-SYS answers 404 for is gone."""
        ids = [int(ref) for ref in dict.fromkeys(source_refs) if ref.isdigit()]
        run = _Run()
        size = self.settings.page_size
        for start in range(0, len(ids), size):
            batch = self._fetch_cases([{"Id": i} for i in ids[start : start + size]], None, run, listed=False)
            yield batch
        self._report()

    def parse_payload(self, payload: str) -> CaseRecord:
        """Map a quarantined bundle (the JSON of everything fetched for one case) again."""
        try:
            bundle = json.loads(payload)
        except (ValueError, RecursionError):
            raise ValueError("the quarantined payload is not a case bundle") from None
        if not isinstance(bundle, dict) or "sag" not in bundle:
            raise ValueError("the quarantined payload is not a case bundle")
        return self._record(bundle)

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

    def _in(
        self, interval: wire.NumberInterval, sags: list[Mapping[str, Any]], since: datetime | None = None
    ) -> list[Mapping[str, Any]]:
        """The results of a search that match what it asked for: a server may ignore its filters.

        Their number must be in ``interval`` and, when the search asked for changes since
        ``since``, their ``SenestAendret`` not before it (one that does not read is kept: the
        case is rejected with the reason when fetched).
        """
        inside = [sag for sag in sags if wire.read_number(sag) in interval]
        if len(inside) < len(sags):
            self.counts["search results outside the number interval asked for, left out"] += len(sags) - len(inside)
        if since is None:
            return inside
        recent = [sag for sag in inside if (when := _modified(sag)) is None or when >= since]
        if len(recent) < len(inside):
            self.counts["search results changed before the time asked for, left out"] += len(inside) - len(recent)
        return recent

    def _report(self) -> None:
        """Log what was defaulted or left out (modelled values the source did not match): counted, not quarantined."""
        if self.counts:
            log.warning(
                "SB-SYS source %s: %s",
                self.context.source,
                "; ".join(f"{n} {what}" for what, n in sorted(self.counts.items())),
                extra={"fields": {"source": self.context.source, "counts": dict(self.counts)}},
            )

    def _cases_of_changed_grants(self, grants: list[Mapping[str, Any]], run: _Run) -> list[Mapping[str, Any]]:
        """The main cases of the children of changed grants that this run has not fetched yet."""
        cprs: dict[str, str] = {}
        for grant in grants:
            cpr = wire.read_child_cpr(grant)
            key = self._child_key(cpr)
            if cpr is not None and key is not None and key not in run.children:
                cprs.setdefault(key, cpr)

        def cases_of(cpr: str) -> list[Mapping[str, Any]]:
            found = self._search_all(wire.SearchQuery(self._cases, self.settings.page_size, 0, primary_cpr=cpr))
            # A server that ignores the party filter answers with other children's cases.
            return [sag for sag in found if wire.same_person(wire.read_child_cpr(sag) or "", cpr)]

        found = bounded_map(cases_of, list(cprs.values()), self.settings.concurrency)
        return self._in(self._cases, [sag for sags in found for sag in sags])

    def _fetch_cases(
        self, sags: list[Mapping[str, Any]], state: _Cursor | None, run: _Run, *, listed: bool = True
    ) -> Batch:
        """Fetch and map the cases of ``sags`` not fetched yet in this run (in parallel).

        ``listed``: the cases came from a search, so a 404 for one is a failed request (it is
        quarantined as incomplete and asked for again), not a sign that it is gone.
        """
        batch = Batch(cursor=None if state is None else state.encode())
        ids = [i for i in dict.fromkeys(_sag_id(s) for s in sags) if i is not None and i not in run.done]
        fetched = bounded_map(lambda i: self._complete_bundle(i, listed=listed), ids, self.settings.concurrency)
        for sag_id, outcome in zip(ids, fetched, strict=True):
            run.done.add(sag_id)
            if isinstance(outcome, _Gone):
                continue
            if isinstance(outcome, _Incomplete):
                batch.rejections.append(Rejection.incomplete(str(sag_id), str(outcome), _dumps(outcome.bundle)))
                continue
            sag = outcome["sag"]
            key = self._child_key(wire.read_child_cpr(sag))
            if key is not None:
                run.children.add(key)
            if wire.read_number(sag) not in self._cases:
                # Not a children's case by its number (the search's filter was not honoured, or
                # the case was renumbered): not ours to store, nothing wrong with it.
                self.counts["cases outside the case number interval, left out"] += 1
                continue
            try:
                batch.records.append(self._record(outcome))
            except (ValueError, InvalidCPR, ValidationError) as exc:
                batch.rejections.append(Rejection(str(sag_id), rejection_reason(exc), _dumps(outcome)))
        return batch

    # --- one case ------------------------------------------------------------------------------

    def _complete_bundle(self, sag_id: int, *, listed: bool) -> dict[str, Any] | _Gone | _Incomplete:
        """The case's bundle, fetched again up to ``incomplete_retries`` times while it comes incomplete."""
        retries = self.settings.incomplete_retries
        while True:
            try:
                return self._bundle(sag_id, listed=listed)
            except _Gone as gone:
                return gone
            except _Incomplete as incomplete:
                if retries == 0:
                    return incomplete
                retries -= 1

    def _bundle(self, sag_id: int, *, listed: bool) -> dict[str, Any]:
        """Everything SBSIP holds on one case, as received; raises :class:`_Incomplete` unless it all came.

        Raises :class:`_Gone` when SB-SYS answers 404 for a case asked for by reference only.
        """
        # The id keeps the payloads of two cases that failed alike apart (the quarantine keeps a payload once).
        bundle: dict[str, Any] = {"id": sag_id, "sag": None}
        response = self.client.get(wire.sag_path(sag_id), auth=self._auth)
        if response.status_code == 404 and not listed:
            raise _Gone
        sag = _body(_checked(response, "SB-SYS case", bundle), "the case", bundle)
        bundle["sag"] = sag
        if not isinstance(sag, Mapping):
            raise _Incomplete("SB-SYS answered the case with something that is not an object", bundle)
        answered = _sag_id(sag)
        if answered != sag_id:
            other = "a case without a readable Id" if answered is None else f"case {answered}"
            raise _Incomplete(f"SB-SYS answered {other} when asked for case {sag_id}", bundle)
        for key, path in (
            ("erindringer", wire.erindringer_path(sag_id)),
            ("journalarknotes", wire.journal_notes_path(sag_id)),
            ("dokumenter", wire.documents_path(sag_id)),
        ):
            bundle[key] = _body(self._get(path, f"SB-SYS {key}", bundle), f"the {key}", bundle)
        files: dict[str, str] = {}
        bundle["filer64"] = files
        try:
            xml_files = list(wire.read_xml_files(bundle["dokumenter"]))
        except wire.WireError:
            xml_files = []  # the case is rejected for its documents when mapped
        for xml_file in xml_files:
            response = self._get(wire.file_path(xml_file.file_id), "SB-SYS file", bundle)
            kind = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
            if kind and kind not in wire.XML_MIME_TYPES and not kind.endswith("+xml"):
                # A proxy's error page with status 200: a failed download, not a broken form.
                raise _Incomplete(f"SB-SYS answered file {xml_file.file_id} as {kind}, not XML", bundle)
            # The form's bytes as they came: XML declares its own encoding, which the HTTP charset may contradict.
            files[str(xml_file.file_id)] = base64.b64encode(response.content).decode("ascii")
        child = wire.read_child_cpr(sag)
        try:
            bundle["bevillinger"] = (
                []
                if child is None
                else self._search_all(
                    wire.SearchQuery(self._grants, self.settings.page_size, 0, primary_cpr=child), with_parts=True
                )
            )
        except (AuthError, SourceUnavailable, PagingMismatch):
            raise
        except AdapterError as exc:
            raise _Incomplete(f"the search of its grants failed: {exc}", bundle) from None
        return bundle

    def _target_group(self, template: str | None) -> TargetGroup:
        s = self.settings
        if template is not None:
            if template in s.target_groups:
                return s.target_groups[template]
            folded = template.casefold()
            for word, group in s.target_group_keywords.items():
                if word.casefold() in folded:
                    return group
        self.counts[f"cases whose template names no target group, read as {s.default_target_group}"] += 1
        return s.default_target_group

    def _measures(self, raw_grants: Any, child_cpr: str) -> list[MeasureRecord]:
        measures: list[MeasureRecord] = []
        for raw_grant in raw_grants if isinstance(raw_grants, list) else []:
            if not isinstance(raw_grant, Mapping):
                continue
            # The search may have ignored its filters: only this child's grant cases are its measures.
            if wire.read_number(raw_grant) not in self._grants:
                continue
            party = wire.read_child_cpr(raw_grant)
            if party is None or not wire.same_person(party, child_cpr):
                continue
            try:
                grant = wire.read_grant(raw_grant, self.settings.grant_fields)
            except wire.WireError:
                # Grant details are modelled (grant_fields): one that does not match is counted, not a reason
                # to refuse the child's case.
                self.counts["grant cases whose details do not read as grant_fields, left out"] += 1
                continue
            if any(m.source_ref == str(grant.id) for m in measures):
                continue  # listed on two pages of the search
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
        return measures

    def _assessments(self, bundle: Mapping[str, Any]) -> list[AssessmentRecord]:
        assessments = []
        encoded = bundle.get("filer64")
        # Bundles quarantined before the bytes were kept hold the forms as text.
        files = encoded if isinstance(encoded, Mapping) else bundle.get("filer") or {}
        for xml_file in wire.read_xml_files(bundle.get("dokumenter")):
            content = files.get(str(xml_file.file_id))
            if not isinstance(content, str):
                raise wire.WireError(f"document {xml_file.document_id}: its file was not fetched")
            data = base64.b64decode(content) if isinstance(encoded, Mapping) else content.encode()
            try:
                form = wire.read_score_form(data)
            except wire.WireError as exc:
                raise wire.WireError(f"document {xml_file.document_id}: {exc}") from None
            if form is None:
                continue
            assessments += [
                AssessmentRecord(theme=s.theme, value=s.value, assessed_on=form.assessed_on, assessor=form.assessor)
                for s in form.scores
            ]
        return assessments

    def _record(self, bundle: Mapping[str, Any]) -> CaseRecord:
        """Map one case's bundle; raises ``ValueError`` (``WireError``, ``InvalidCPR``, pydantic)."""
        raw = bundle["sag"]
        if not isinstance(raw, Mapping):
            raise wire.WireError("the case is not an object")
        sag = wire.read_sag(raw)
        child = wire.read_child(raw)
        persons = self.context.persons
        person = persons.person(child.cpr)
        s = self.settings
        events = [
            CaseEventRecord(kind=m.kind, occurred_on=m.occurred_on, source_ref=m.ref)
            for m in (
                *wire.read_journal_notes(bundle.get("journalarknotes"), s.milestone_headings),
                *wire.read_erindringer(bundle.get("erindringer"), s.milestone_reminders),
            )
        ]
        status = sag.status
        if status is None:
            self.counts["cases in a SagsTilstand SB-SYS does not ship, read as open"] += 1
            status = CaseStatus.open
        closed = None
        if status is CaseStatus.closed:
            closed = sag.status_changed
            if closed is None:
                # Real closed cases may lack SenesteStatusAendring; the last change is when it was closed at the latest.
                self.counts["closed cases without SenesteStatusAendring, closed on SenestAendret"] += 1
                closed = sag.modified.astimezone(wire.LOCAL_TZ).date()
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
            target_group=self._target_group(sag.template),
            opened=sag.opened,
            closed=closed,
            status=status,
            source_modified=sag.modified,
            measures=tuple(self._measures(bundle.get("bevillinger"), child.cpr)),
            assessments=tuple(self._assessments(bundle)),
            events=tuple(events),
        )


def _dumps(bundle: Mapping[str, Any]) -> str:
    """The bundle as the quarantine payload; one too deep to write again keeps the case's id only."""
    try:
        return json.dumps(bundle)
    except (ValueError, RecursionError):
        return json.dumps({"id": bundle.get("id"), "sag": None, "note": "the answer was too deeply nested to keep"})


def _oauth_error(response: httpx.Response) -> str:
    """Keycloak's error code (``invalid_client``, ``invalid_grant``), never the description."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) and error.isidentifier() else response.reason_phrase


def _checked(response: httpx.Response, what: str, bundle: Mapping[str, Any]) -> httpx.Response:
    """``response`` if it is a 2xx; any other answer makes the case incomplete.

    An outage that outlasted the retries (:class:`SourceUnavailable`) and refused credentials
    end the run instead: it resumes from its last batch, and nothing is half-stored.
    """
    try:
        return raise_for_status(response, what)
    except (AuthError, SourceUnavailable):
        raise
    except AdapterError as exc:  # 404 and the other 4xx
        raise _Incomplete(str(exc), bundle) from None


def _body(response: httpx.Response, what: str, bundle: Mapping[str, Any]) -> Any:
    """The JSON of an answer about one case; an answer that is not JSON makes the case incomplete.

    A proxy's HTML error page with status 200 or a truncated answer is a failed request, not
    the source's data: the case is asked for again rather than stored without it.
    """
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python reads
        raise _Incomplete(f"SB-SYS answered {what} with something that is not JSON", bundle) from None


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


def _modified(sag: Mapping[str, Any]) -> datetime | None:
    try:
        return wire.read_modified(sag)
    except wire.WireError:
        return None


def _sag_id(sag: Mapping[str, Any]) -> int | None:
    try:
        return wire.read_sag_id(sag)
    except wire.WireError:
        return None


@hookimpl
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(SbsysAdapter)
