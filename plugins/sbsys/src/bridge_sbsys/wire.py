"""Everything bridge knows about the SBSIP Web API's payloads, in one place.

Both directions live here: ``read_*`` functions turn SBSIP JSON (and the score form XML)
into small typed views for the adapter, and ``render_*`` functions build the same payloads
for the simulator. Correcting the model against the vendor's specification means editing
this module only.

**Public** (SBSIP as used by OS2bos, OS2forms, Odense and Randers integrations, and the
reference payload ``reference/sbsys/sag_with_parts.json``):

- the Keycloak token endpoint and its form fields; the endpoint paths below;
- ``POST api/sag/search`` with ``NummerInterval``, ``Limit``, ``Skip``, ``PrimaerPerson``
  and the ``InkluderParterIResultat`` query flag, answering ``{TotalNumberOfResults, Results}``;
- the sag fields (``Id``, ``Nummer``, ``SagsTitel``, ``Oprettet``, ``SenestAendret``,
  ``SagsStatus``, ``SenesteStatusAendring``, ``Behandler``, ``Ansaettelsessted``,
  ``PrimaryPart``, ``Personer``, ``Firmaer``, ``SagsNummer``, ``SagSkabelon``, ``ErBesluttet``);
- field casing that differs between endpoints (``CprNummer`` / ``CPRnummer``, ``SagId`` /
  ``SagID``, ``Id`` / ``ID``): every reader here matches names case-insensitively;
- timestamps with milliseconds and the Copenhagen offset (``+01:00`` winter, ``+02:00``
  summer); ``000000-0000`` for an unknown parent; HTML in ``Beskrivelse`` and notes;
- erindringer (``Navn``, ``ErindringType``, ``HarDeadline``, ``Deadline``, ``ErAfsluttet``),
  journal notes (``Overskrift``, ``Note``, ``KontaktTidspunkt``), documents
  (``DokumentNavn``, ``RegistreringsDato``, ``Behandler``);
- the ``os2formsFormular`` XML envelope OS2forms journalises (``OS2FormsId``,
  ``SBSYSJournalisering``, ``DigitalForsendelse``, and the form's fields flat inside
  ``FormularData``).

**MODELLED** (not public; each is marked ``MODELLED`` where it is defined):

- the modified-since search filter ``SenestAendretFra`` and the order of search results
  (ascending ``Id``); ``NummerInterval`` as ``From <= Nummer < To``;
- the target group as the case template (``SagSkabelon.Navn``);
- a child's case naming its family case in ``SagsRelationer`` (``RelationsType`` Familiesag);
- grant cases' ``Bevillingsoplysninger`` object (paragraph, account code, period); the
  provider as the grant case's first ``Firmaer`` entry; a grant exists when ``ErBesluttet``;
- which milestones are journal-note headings and which are completed erindringer, and the
  completion time ``AfsluttetDato`` of an erindring;
- a document's ``Filer`` list, and the score form's fields inside ``FormularData``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from bridge.adapter import XmlRejected, parse_xml
from bridge.model.records import Act, CaseStatus, EventKind, TargetGroup, Theme

Json = dict[str, Any]

LOCAL_TZ = ZoneInfo("Europe/Copenhagen")
"""SBSIP writes local time with its offset; dates are read on the Copenhagen calendar."""

# --- endpoints (public) ------------------------------------------------------------------------

TOKEN_PATH = "/auth/realms/sbsip/protocol/openid-connect/token"
SEARCH_PATH = "/api/sag/search"
INCLUDE_PARTS = {"InkluderParterIResultat": "true"}
"""Query flag that makes a search return ``Personer`` and ``Firmaer``, as ``GET api/sag/{id}`` does."""


def sag_path(sag_id: int) -> str:
    return f"/api/sag/{sag_id}"


def erindringer_path(sag_id: int) -> str:
    return f"/api/erindring/sag/{sag_id}"


def journal_notes_path(sag_id: int) -> str:
    return f"/api/sag/{sag_id}/journalarknotes"


def documents_path(sag_id: int) -> str:
    return f"/api/sag/{sag_id}/dokumenter"


def file_path(file_id: int) -> str:
    return f"/api/fil/{file_id}"


class WireError(ValueError):
    """A payload that does not read as SBSIP data. The message names fields, never values."""


# --- generic readers ---------------------------------------------------------------------------


def get(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, matching the name case-insensitively (SBSIP's casing varies by endpoint)."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return None


def _require(obj: Mapping[str, Any], name: str, what: str) -> Any:
    value = get(obj, name)
    if value is None or value == "":
        raise WireError(f"{what} has no {name}")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"{what} is not an object")
    return value


def _objects(value: Any, what: str) -> list[Mapping[str, Any]]:
    """A JSON list of objects; some endpoints wrap lists as ``{"Results": [...]}``."""
    if isinstance(value, Mapping):
        value = get(value, "Results")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise WireError(f"{what} must be a list of objects")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WireError(f"{what} is not a number")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"{what} is not a number") from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# --- time ----------------------------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """``2020-02-28T10:52:18.043+01:00``: Copenhagen local time, milliseconds, its offset."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds")


def local_timestamp(day: date, at: time) -> str:
    """A calendar date written the SBSIP way: that day at ``at`` Copenhagen time."""
    return format_timestamp(datetime.combine(day, at, tzinfo=LOCAL_TZ))


def date_value(day: date) -> str:
    """A pure date (``FoedeDato``, a grant's period) as SBSIP writes it: local midnight, no fraction.

    Like the reference payload (``1900-04-01T00:00:00+02:00``), the offset follows today's
    rules even for dates before summer time existed.
    """
    ruled = day if day.year >= 1980 else day.replace(year=2000)
    offset = datetime.combine(ruled, time(0), tzinfo=LOCAL_TZ).utcoffset()
    return datetime.combine(day, time(0), tzinfo=timezone(offset or timedelta(0))).isoformat()


def _parse_aware(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"{field} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise WireError(f"{field} is not a valid date and time") from None
    if parsed.tzinfo is None:
        raise WireError(f"{field} has no UTC offset")
    return parsed


def parse_timestamp(value: Any, field: str) -> datetime:
    """A point in time, normalised to UTC. Raises :class:`WireError` naming ``field``."""
    return _parse_aware(value, field).astimezone(UTC)


def parse_local_date(value: Any, field: str) -> date:
    """The Copenhagen calendar date of an SBSIP timestamp (``Oprettet``, ``Deadline`` …).

    A date must not move with the UTC conversion: a case opened at 00:30 local time was
    opened that day, though it was the day before in UTC.
    """
    return _parse_aware(value, field).astimezone(LOCAL_TZ).date()


def parse_form_date(value: Any, field: str) -> date:
    """A date typed into a form: ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise WireError(f"{field} is not a valid date") from None


# --- token (public: Keycloak) -----------------------------------------------------------------

GRANT_PASSWORD = "password"
GRANT_CLIENT_CREDENTIALS = "client_credentials"


def token_form(
    grant_type: str, client_id: str, client_secret: str, username: str | None, password: str | None
) -> dict[str, str]:
    """The form a client posts to :data:`TOKEN_PATH`."""
    form = {"grant_type": grant_type, "client_id": client_id, "client_secret": client_secret}
    if grant_type == GRANT_PASSWORD:
        form |= {"username": username or "", "password": password or ""}
    return form


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    expires_in: float


def read_token(payload: Any) -> Token:
    body = _object(payload, "the token response")
    token = _require(body, "access_token", "the token response")
    expires_in = get(body, "expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        raise WireError("the token response has no positive expires_in")
    return Token(str(token), float(expires_in))


def render_token(access_token: str, expires_in: int) -> Json:
    return {
        "access_token": access_token,
        "expires_in": expires_in,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }


# --- search ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberInterval:
    """Case numbers ``From <= Nummer < To`` (MODELLED: the bounds' inclusiveness)."""

    start: str
    stop: str

    def __contains__(self, number: object) -> bool:
        return isinstance(number, str) and self.start <= number < self.stop


MAIN_CASES = NumberInterval("27.24.00-G01", "27.24.00-G02")
"""Children's main cases (børnesager)."""
GRANT_CASES = NumberInterval("27.27.00", "27.28.00")
"""Grant cases (bevillinger), one per measure, linked to the child by the primary party's CPR."""

MODIFIED_SINCE = "SenestAendretFra"
"""MODELLED: the search filter "modified at or after this time"."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    interval: NumberInterval | None
    limit: int
    skip: int
    modified_since: datetime | None = None
    primary_cpr: str | None = None


def render_search_query(query: SearchQuery) -> Json:
    body: Json = {"Limit": query.limit, "Skip": query.skip}
    if query.interval is not None:
        body["NummerInterval"] = {"From": query.interval.start, "To": query.interval.stop}
    if query.modified_since is not None:
        body[MODIFIED_SINCE] = format_timestamp(query.modified_since)
    if query.primary_cpr is not None:
        body["PrimaerPerson"] = {"CprNummer": query.primary_cpr}
    return body


def read_search_query(payload: Any, *, default_limit: int) -> SearchQuery:
    """What the simulator was asked for; raises :class:`WireError` for a malformed body."""
    body = _object(payload, "the search body")
    interval = None
    raw_interval = get(body, "NummerInterval")
    if raw_interval is not None:
        bounds = _object(raw_interval, "NummerInterval")
        interval = NumberInterval(str(get(bounds, "From") or ""), str(get(bounds, "To") or "\uffff"))
    limit = get(body, "Limit")
    skip = get(body, "Skip")
    since = get(body, MODIFIED_SINCE)
    person = get(body, "PrimaerPerson")
    return SearchQuery(
        interval=interval,
        limit=default_limit if limit is None else _int(limit, "Limit"),
        skip=0 if skip is None else _int(skip, "Skip"),
        modified_since=None if since is None else parse_timestamp(since, MODIFIED_SINCE),
        primary_cpr=None if person is None else _text(get(_object(person, "PrimaerPerson"), "CprNummer")),
    )


def render_search_result(total: int, results: Sequence[Json]) -> Json:
    return {"TotalNumberOfResults": total, "Results": list(results)}


def read_search_result(payload: Any) -> tuple[list[Mapping[str, Any]], int | None]:
    """The page's sager and the total the source reports."""
    body = _object(payload, "the search response")
    total = get(body, "TotalNumberOfResults")
    return _objects(get(body, "Results"), "Results"), None if total is None else _int(total, "TotalNumberOfResults")


# --- case numbers and status -------------------------------------------------------------------

_CASE_NUMBER = re.compile(r"^(?P<kle>\d{2}\.\d{2}\.\d{2})-(?P<facet>[A-Z]\d{2})-(?P<seq>\d+)-(?P<yy>\d{2})$")


@dataclass(frozen=True, slots=True)
class CaseNumber:
    """``27.24.00-G01-5-19``: KLE emne, handlingsfacet, sequence number, two-digit year."""

    kle: str
    facet: str
    sequence: int
    year: int

    def __str__(self) -> str:
        return f"{self.kle}-{self.facet}-{self.sequence}-{self.year % 100:02d}"


def parse_case_number(text: str) -> CaseNumber:
    match = _CASE_NUMBER.match(text.strip())
    if match is None:
        raise WireError("the case number is not of the form 27.24.00-G01-5-19")
    return CaseNumber(match["kle"], match["facet"], int(match["seq"]), 2000 + int(match["yy"]))


STATE_ACTIVE = "Aktiv"
STATE_CLOSED = "Afsluttet"
_STATES = {STATE_ACTIVE: CaseStatus.open, "Passiv": CaseStatus.open, STATE_CLOSED: CaseStatus.closed}
_STATUSES = {  # SagsStatus rows as SBSYS ships them: (Id, Navn, Orden, SagsTilstand)
    "new": (6, "Opstået", 1, STATE_ACTIVE),
    "active": (7, "Under behandling", 2, STATE_ACTIVE),
    "closed": (9, "Afsluttet", 5, STATE_CLOSED),
}

TEMPLATES = {  # MODELLED: the case template names the target group (the sbsys source's `target_groups`)
    TargetGroup.udsatte: (11, "Børnesag - udsatte børn og unge"),
    TargetGroup.handicap: (12, "Børnesag - børn og unge med handicap"),
}
TEMPLATE_KEYWORDS = {"handicap": TargetGroup.handicap}
"""MODELLED: words in a template name that the source did not list that name the target group."""
GRANT_TEMPLATE = (21, "Bevillingssag")


# --- parties -------------------------------------------------------------------------------------

UNKNOWN_PARENT = "000000-0000"


def _cpr(part: Mapping[str, Any]) -> str | None:
    return _text(get(part, "CprNummer"))


@dataclass(frozen=True, slots=True)
class Child:
    """The child of a main case: the primary party, with its parents from ``Personer``."""

    cpr: str
    guardians: tuple[str, ...]


def _digits(cpr: str) -> str:
    return cpr.replace("-", "").strip()


def read_child_cpr(sag: Mapping[str, Any]) -> str | None:
    """The primary party's CPR as written, or ``None`` (no party, or a firm)."""
    primary = get(sag, "PrimaryPart")
    return _cpr(primary) if isinstance(primary, Mapping) else None


def same_person(cpr: str, other: str) -> bool:
    """Whether two CPR numbers are the same, written with or without the dash."""
    return _digits(cpr) == _digits(other)


def read_child(sag: Mapping[str, Any]) -> Child:
    """The primary party's CPR and the parents its ``Personer`` entry names."""
    primary = _object(_require(sag, "PrimaryPart", "the case"), "PrimaryPart")
    cpr = _cpr(primary)
    if cpr is None:
        raise WireError("the case's primary party has no CPR number")
    guardians: tuple[str, ...] = ()
    for person in _objects(get(sag, "Personer"), "Personer"):
        if same_person(_cpr(person) or "", cpr):
            guardians = tuple(g for g in (_text(get(person, n)) for n in ("MorCPR", "FarCPR")) if g)
            break
    return Child(cpr=cpr, guardians=guardians)


# --- sager ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caseworker:
    id: int
    logon: str
    name: str
    unit: str | None


@dataclass(frozen=True, slots=True)
class Sag:
    """The fields of a main case that bridge reads."""

    id: int
    number: str
    kle: str
    template: str | None
    opened: date
    status: CaseStatus | None  # None: a SagsTilstand SB-SYS does not ship
    status_changed: date | None
    modified: datetime
    caseworker: Caseworker | None
    family_case_number: str | None


FAMILY_RELATIONS = "SagsRelationer"
"""MODELLED: a child's case names the family case it belongs to (``RelationsType`` Familiesag)."""
FAMILY_RELATION = "Familiesag"


def _family_number(sag: Mapping[str, Any]) -> str | None:
    for relation in _objects(get(sag, FAMILY_RELATIONS), FAMILY_RELATIONS):
        if _text(get(relation, "RelationsType")) == FAMILY_RELATION:
            return _text(get(relation, "Nummer"))
    return None


def read_sag_id(sag: Mapping[str, Any]) -> int:
    return _int(_require(sag, "Id", "the case"), "the case's Id")


def read_modified(sag: Mapping[str, Any]) -> datetime:
    return parse_timestamp(_require(sag, "SenestAendret", "the case"), "SenestAendret")


def _kle(sag: Mapping[str, Any], number: str) -> str:
    emne = get(_object(get(sag, "SagsNummer") or {}, "SagsNummer"), "EmneplanNummer")
    kle = _text(get(emne, "Nummer")) if isinstance(emne, Mapping) else None
    return kle or parse_case_number(number).kle


def read_template(sag: Mapping[str, Any]) -> str | None:
    """The case template's name (``SagSkabelon.Navn``), or ``None`` if the case has none."""
    template = get(sag, "SagSkabelon")
    return _text(get(template, "Navn")) if isinstance(template, Mapping) else None


def read_number(sag: Mapping[str, Any]) -> str | None:
    """The case number as written, for checking a search's number interval client-side."""
    number = get(sag, "Nummer")
    return number.strip() if isinstance(number, str) else None


def read_sag(sag: Mapping[str, Any]) -> Sag:
    """Read a main case (from ``GET api/sag/{id}``); :class:`WireError` says what is wrong.

    What real cases may lack is read as unknown, not refused: a state that is not one of
    SB-SYS's three is ``None``, as are a missing template and a missing status-change time.
    """
    number = str(_require(sag, "Nummer", "the case"))
    status_obj = get(sag, "SagsStatus")
    state = _text(get(status_obj, "SagsTilstand")) if isinstance(status_obj, Mapping) else None
    changed = get(sag, "SenesteStatusAendring")
    worker = get(sag, "Behandler")
    place = get(sag, "Ansaettelsessted")
    caseworker = None
    if isinstance(worker, Mapping):
        caseworker = Caseworker(
            id=_int(_require(worker, "Id", "Behandler"), "Behandler.Id"),
            logon=str(get(worker, "LogonId") or ""),
            name=str(get(worker, "Navn") or ""),
            unit=_text(get(place, "Navn")) if isinstance(place, Mapping) else None,
        )
    return Sag(
        id=read_sag_id(sag),
        number=number,
        kle=_kle(sag, number),
        template=read_template(sag),
        opened=parse_local_date(_require(sag, "Oprettet", "the case"), "Oprettet"),
        status=_STATES.get(state or ""),
        status_changed=None if changed in (None, "") else parse_local_date(changed, "SenesteStatusAendring"),
        modified=read_modified(sag),
        caseworker=caseworker,
        family_case_number=_family_number(sag),
    )


@dataclass(frozen=True, slots=True)
class Person:
    """A person part as the simulator renders it into ``Personer``."""

    id: int
    cpr: str
    name: str
    birth_date: date | None
    female: bool | None
    mother_cpr: str | None = None
    father_cpr: str | None = None


@dataclass(frozen=True, slots=True)
class SagFacts:
    """What the simulator knows about a case it renders; timestamps already formatted.

    Formatted strings (not datetimes) let the simulator put a broken value on the wire.
    """

    id: int
    uuid: str
    number: str
    kle_name: str
    title: str
    description_html: str
    created: str
    modified: str
    status_changed: str
    status: str  # a key of _STATUSES
    template: tuple[int, str]
    caseworker: Caseworker
    caseworker_uuid: str
    unit_id: int
    primary: Person
    persons: tuple[Person, ...]
    companies: tuple[str, ...] = ()
    decided: bool = False
    grant: Json | None = None
    family_number: str | None = None


def render_user(worker: Caseworker, uuid: str) -> Json:
    return {"LogonId": worker.logon, "Uuid": uuid, "Id": worker.id, "Navn": worker.name}


def _person(person: Person) -> Json:
    """A ``Personer`` entry, in the reference's key order; note ``CprNummer`` casing here."""
    rendered: Json = {}
    if person.birth_date is not None:
        rendered["FoedeDato"] = date_value(person.birth_date)
    if person.female is not None:
        rendered["Koen"] = "Kvinde" if person.female else "Mand"
    rendered["CprNummer"] = person.cpr
    rendered["Adresse"] = {
        "Id": person.id + 50,
        "Adresse1": "Testvej 1",
        "PostNummer": 5000,
        "PostDistrikt": "Odense C",
        "ErBeskyttet": False,
    }
    rendered["CivilstandId"] = 5
    if person.mother_cpr is not None or person.father_cpr is not None:
        rendered["MorCPR"] = person.mother_cpr or UNKNOWN_PARENT
        rendered["FarCPR"] = person.father_cpr or UNKNOWN_PARENT
    rendered["TilmeldtDigitalPost"] = True
    rendered["Uuid"] = f"5b2b06ad-67f9-4ea6-b623-{person.id:012d}"
    rendered["Id"] = person.id
    rendered["Navn"] = person.name
    return rendered


def render_sag(facts: SagFacts, *, with_parts: bool) -> Json:
    """A sag as ``GET api/sag/{id}`` returns it (``with_parts``) or as a search result.

    Search results leave out ``Personer`` and ``Firmaer`` unless the search asks for parts.
    ``PrimaryPart`` spells ``CPRnummer`` where ``Personer`` spells ``CprNummer``.
    """
    number = parse_case_number(facts.number)
    status_id, status_name, order, state = _STATUSES[facts.status]
    comment = f"Sagsstatus ændret til {status_name}"
    user = render_user(facts.caseworker, facts.caseworker_uuid)
    sag: Json = {"SagsTitel": facts.title}
    if with_parts:
        sag["Personer"] = [_person(p) for p in facts.persons]
        sag["Firmaer"] = [{"Id": 900 + i, "PartType": "Firma", "Navn": name} for i, name in enumerate(facts.companies)]
    sag |= {
        "PrimaryPart": {
            "PartId": facts.primary.id,
            "PartType": "Person",
            "CPRnummer": facts.primary.cpr,
            "Navn": facts.primary.name,
        },
        "Id": facts.id,
        "SagIdentity": facts.uuid,
        "Opstaaet": facts.created,
        "Nummer": facts.number,
        "Beskrivelse": facts.description_html,
        "Fagomraade": {"Uuid": "b168ec95-d6e4-480a-8c82-30c1cab68209", "Id": 1, "Navn": "Standard"},
        "BevaringId": 20,
        "SenesteStatusAendringKommentar": comment,
        "SenesteStatusAendring": facts.status_changed,
        "Oprettet": facts.created,
        "SenestAendret": facts.modified,
        "ErBeskyttet": True,
        "ErBesluttet": facts.decided,
        "BeslutningHarDeadline": False,
        "SagsNummerId": facts.id,
        "Ansaettelsessted": {
            "Uuid": f"c2822c97-8e48-4cc7-8e0f-{facts.unit_id:012d}",
            "Id": facts.unit_id,
            "Navn": facts.caseworker.unit or "",
        },
        "Behandler": user,
        "SagsStatus": {
            "Id": status_id,
            "Navn": status_name,
            "Orden": order,
            "SagsTilstand": state,
            "RequireComments": False,
            "SagsStatusKommentar": comment,
        },
        "ArkivAfklaringStatusId": 1,
        "OprettetAf": user,
        "SenestAendretAf": user,
        "StyringsreolHylde": {"Id": 3, "Navn": "Ny ansøgning" if facts.status == "new" else "I gang"},
        "SecuritySetId": 76000 + facts.template[0],
        "SagSkabelon": {
            "Uuid": f"ecc02786-56e2-4b56-ae11-{facts.template[0]:012d}",
            "Id": facts.template[0],
            "Navn": facts.template[1],
        },
        "SagsNummer": {
            "EmneplanNummer": {
                "Id": 13000 + facts.template[0],
                "EmneplanID": 90,
                "Nummer": number.kle,
                "Navn": facts.kle_name,
                "Beskrivelse": "\r\n",
                "Niveau": 2,
                "Oprettet": "2009-05-01T00:00:00+02:00",
                "ErUdgaaet": False,
                "AfloserNumre": [],
            },
            "Facet": {
                "ID": 770,
                "FacetTypeID": 1337,
                "Nummer": number.facet,
                "Navn": "Generelle sager",
                "BevaringID": 20,
                "Oprettet": "1988-01-01T00:00:00+01:00",
                "Rettet": "2011-11-01T00:00:00+01:00",
            },
            "Aarstal": number.year,
            "SekvensNummer": number.sequence,
        },
    }
    if facts.grant is not None:
        sag[GRANT_DETAILS] = facts.grant
    if facts.family_number is not None:
        sag[FAMILY_RELATIONS] = [{"RelationsType": FAMILY_RELATION, "Nummer": facts.family_number}]
    return sag


# --- grants (bevillinger): separate cases under KLE 27.27.xx ----------------------------------

GRANT_DETAILS = "Bevillingsoplysninger"
"""MODELLED: the object on a grant case holding its legal basis, account code and period."""

_PARAGRAPH = re.compile(r"^(?P<act>SEL|BL)\s*§\s*(?P<rest>.+)$")


def format_paragraph(act: Act, paragraph: str) -> str:
    """``SEL § 52, stk. 3, nr. 7`` from ``(SEL, "52 stk. 3 nr. 7")``, as caseworkers write it."""
    return f"{act.value} § " + re.sub(r" (stk\.|nr\.|litra)", r", \1", paragraph)


def parse_paragraph(text: str) -> tuple[Act, str]:
    match = _PARAGRAPH.match(text.strip())
    if match is None:
        raise WireError("Lovgrundlag is not of the form 'SEL § 52, stk. 3, nr. 7'")
    rest = " ".join(match["rest"].replace(",", " ").split())
    return Act(match["act"]), rest


def render_grant_details(act: Act, paragraph: str, account_code: str | None, start: date, end: date | None) -> Json:
    return {
        "Lovgrundlag": format_paragraph(act, paragraph),
        "Kontering": account_code,
        "Startdato": date_value(start),
        "Slutdato": None if end is None else date_value(end),
    }


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    child_cpr: str | None
    act: Act
    paragraph: str
    start: date
    end: date | None
    has_grant: bool
    account_code: str | None
    provider: str | None


class GrantFields(BaseModel):
    """MODELLED: where a grant case holds its legal basis, account code and period (the sbsys source's
    ``grant_fields``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    details: str = GRANT_DETAILS
    paragraph: str = "Lovgrundlag"
    account_code: str = "Kontering"
    start: str = "Startdato"
    end: str = "Slutdato"


DEFAULT_GRANT_FIELDS = GrantFields()


def read_grant(sag: Mapping[str, Any], fields: GrantFields = DEFAULT_GRANT_FIELDS) -> Grant:
    """Read a grant case (a search result with parts); :class:`WireError` says what is wrong."""
    sag_id = read_sag_id(sag)
    details = _object(_require(sag, fields.details, f"grant case {sag_id}"), fields.details)
    act, paragraph = parse_paragraph(str(_require(details, fields.paragraph, fields.details)))
    end = get(details, fields.end)
    companies = _objects(get(sag, "Firmaer"), "Firmaer")
    return Grant(
        id=sag_id,
        child_cpr=read_child_cpr(sag),
        act=act,
        paragraph=paragraph,
        start=parse_local_date(_require(details, fields.start, fields.details), fields.start),
        end=None if end is None else parse_local_date(end, fields.end),
        has_grant=bool(get(sag, "ErBesluttet")),
        account_code=_text(get(details, fields.account_code)),
        provider=_text(get(companies[0], "Navn")) if companies else None,
    )


# --- milestones: journal-note headings and completed erindringer (MODELLED) --------------------

NOTE_HEADINGS: dict[EventKind, str] = {
    EventKind.notification: "Underretning modtaget",
    EventKind.notification_assessed: "Underretning vurderet",
    EventKind.investigation_started: "Børnefaglig undersøgelse påbegyndt",
    EventKind.child_conversation: "Børnesamtale afholdt",
    EventKind.consent: "Samtykke indhentet",
    EventKind.decision: "Afgørelse truffet",
}
"""Standard journal-note headings (JournalArkNoteOverskrift); any other heading is a plain note."""

FREE_HEADINGS = ("Telefonsamtale med forælder", "Møde med skole", "Notat", "Netværksmøde")
"""Headings of plain journal notes, for the simulator."""

REMINDER_TYPES: dict[EventKind, str] = {
    EventKind.investigation_completed: "Børnefaglig undersøgelse",
    EventKind.plan_made: "Handleplan",
    EventKind.follow_up: "Opfølgning",
}
"""Erindring types whose completion is a milestone; open erindringer are future deadlines."""

NEXT_FOLLOW_UP = "Næste opfølgning"
"""Name of the open erindring the simulator puts on open cases; not a milestone."""

HEADING_KINDS = {heading: kind for kind, heading in NOTE_HEADINGS.items()}
"""The sbsys source's default ``milestone_headings``."""
REMINDER_KINDS = {name: kind for kind, name in REMINDER_TYPES.items()}
"""The sbsys source's default ``milestone_reminders``."""
_REMINDER_TYPE_IDS = {name: 101 + i for i, name in enumerate(REMINDER_TYPES.values())}


@dataclass(frozen=True, slots=True)
class Milestone:
    kind: EventKind
    occurred_on: date
    ref: str


def note_ref(note_id: int) -> str:
    """Journal notes and erindringer are numbered separately; the prefix keeps refs unique."""
    return f"note-{note_id}"


def reminder_ref(reminder_id: int) -> str:
    return f"erindring-{reminder_id}"


def read_journal_notes(payload: Any, headings: Mapping[str, EventKind] = HEADING_KINDS) -> Iterator[Milestone]:
    """Every journal note is a milestone: a heading of ``headings`` names its kind, others are notes."""
    for note in _objects(payload, "the journal notes"):
        note_id = _int(_require(note, "Id", "a journal note"), "a journal note's Id")
        heading = _text(get(note, "Overskrift")) or ""
        when = parse_local_date(_require(note, "KontaktTidspunkt", f"journal note {note_id}"), "KontaktTidspunkt")
        yield Milestone(headings.get(heading, EventKind.journal_note), when, note_ref(note_id))


def read_erindringer(payload: Any, kinds: Mapping[str, EventKind] = REMINDER_KINDS) -> Iterator[Milestone]:
    """Completed erindringer of a type in ``kinds``; open ones and other types are not events."""
    for reminder in _objects(payload, "the erindringer"):
        if get(reminder, "ErAfsluttet") is not True:
            continue
        kind_obj = get(reminder, "ErindringType")
        kind_name = _text(get(kind_obj, "Navn")) if isinstance(kind_obj, Mapping) else None
        kind = kinds.get(kind_name or "")
        if kind is None:
            continue
        reminder_id = _int(_require(reminder, "Id", "an erindring"), "an erindring's Id")
        done = _require(reminder, "AfsluttetDato", f"completed erindring {reminder_id}")
        yield Milestone(kind, parse_local_date(done, "AfsluttetDato"), reminder_ref(reminder_id))


def render_journal_note(
    *, note_id: int, sag_id: int, heading: str, body_html: str, contact: str, created: str, author: Json
) -> Json:
    return {
        "Id": note_id,
        "Uuid": f"5b2b06ad-67f9-4ea6-b623-{note_id:012d}",
        "SagID": sag_id,
        "Overskrift": heading,
        "Note": body_html,
        "KontaktTidspunkt": contact,
        "Oprettet": created,
        "OprettetAf": author,
    }


def render_erindring(
    *, reminder_id: int, sag_id: int, kind_name: str, deadline: str, done: str | None, owner: Json
) -> Json:
    return {
        "Id": reminder_id,
        "SagId": sag_id,
        "Navn": kind_name,
        "Beskrivelse": f"<p>{escape(kind_name)}</p>",
        "HarDeadline": True,
        "Deadline": deadline,
        "DeadlineStatus": "Afsluttet" if done else "Aktiv",
        "SynligFra": deadline,
        "ErAfsluttet": done is not None,
        "AfsluttetDato": done,
        "ErindringType": {"Id": _REMINDER_TYPE_IDS.get(kind_name, 199), "Navn": kind_name},
        "Ansvarlig": owner,
        "Opretter": owner,
    }


# --- documents and score forms ----------------------------------------------------------------

XML_MIME_TYPES = frozenset({"text/xml", "application/xml"})


@dataclass(frozen=True, slots=True)
class XmlFile:
    document_id: int
    file_id: int


def read_xml_files(payload: Any) -> Iterator[XmlFile]:
    """The XML files among a case's documents (MODELLED: each document lists its ``Filer``)."""
    for document in _objects(payload, "the documents"):
        document_id = _int(_require(document, "Id", "a document"), "a document's Id")
        for file in _objects(get(document, "Filer"), "Filer"):
            mime = (_text(get(file, "MimeType")) or "").lower()
            name = (_text(get(file, "Filnavn")) or "").lower()
            if mime in XML_MIME_TYPES or name.endswith(".xml"):
                yield XmlFile(document_id, _int(_require(file, "Id", "a file"), "a file's Id"))


def render_document(
    document_id: int, name: str, registered: str, author: Json, files: Sequence[tuple[int, str, str, int]]
) -> Json:
    """A document with its files as ``(id, file name, MIME type, size)``."""
    return {
        "Id": document_id,
        "DokumentIdentity": f"a2252d45-89eb-451e-9079-{document_id:012d}",
        "DokumentNavn": name,
        "RegistreringsDato": registered,
        "Behandler": author,
        "Filer": [{"Id": i, "Filnavn": n, "MimeType": m, "Stoerrelse": s} for i, n, m, s in files],
    }


SCORE_FORM_ID = "trivselsvurdering"
"""MODELLED: the ``OS2FormsId`` of the Trivselslinealen form."""
SCORE_FORM_NAME = "Trivselsvurdering"
SCORE_PREFIX = "trivsel_"
NOT_ASSESSED = "Ikke vurderet"
THEME_FIELDS: dict[Theme, str] = {  # MODELLED: field names inside FormularData
    Theme.udvikling_adfaerd: "trivsel_udvikling_og_adfaerd",
    Theme.familieforhold: "trivsel_familieforhold",
    Theme.skole_beskaeftigelse: "trivsel_dagtilbud_skole_beskaeftigelse",
    Theme.sundhed: "trivsel_sundhedsforhold",
    Theme.fritid_venskaber: "trivsel_fritid_og_venskaber",
}
_FIELD_THEMES = {name: theme for theme, name in THEME_FIELDS.items()}


def theme_field(theme: str) -> str:
    """The form field of a theme; a value that is no theme still gets a ``trivsel_`` field."""
    try:
        return THEME_FIELDS[Theme(theme)]
    except ValueError:
        return SCORE_PREFIX + theme


@dataclass(frozen=True, slots=True)
class Score:
    theme: Theme
    value: int | None  # None: ikke vurderet


@dataclass(frozen=True, slots=True)
class ScoreForm:
    assessed_on: date
    assessor: str | None
    scores: tuple[Score, ...]


def render_score_form(
    *, child_cpr: str, kle: str, assessed_on: date, assessor: str | None, scores: Sequence[tuple[str, int | None]]
) -> bytes:
    """The XML OS2forms journalises for one Trivselslinealen form (scores as ``(theme, value)``)."""
    fields = [
        f"<vurderingsdato>{assessed_on.isoformat()}</vurderingsdato>",
        f"<vurderet_af>{escape(assessor or '')}</vurderet_af>",
    ]
    for theme, value in scores:
        name = theme_field(theme)
        fields.append(f"<{name}>{NOT_ASSESSED if value is None else value}</{name}>")
    body = "".join(f"\n    {f}" for f in fields)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<os2formsFormular>\n"
        f"  <OS2FormsId>{SCORE_FORM_ID}</OS2FormsId>\n"
        "  <SBSYSJournalisering>\n"
        f"    <PrimaerPartCprNummer>{escape(child_cpr)}</PrimaerPartCprNummer>\n"
        "    <PrimaerPartCvrNummer/>\n"
        f"    <KLe>{escape(kle)}</KLe>\n"
        f"    <SagSkabelonId>{TEMPLATES[TargetGroup.udsatte][0]}</SagSkabelonId>\n"
        "  </SBSYSJournalisering>\n"
        "  <DigitalForsendelse>\n"
        "    <Kvittering><TitelTekst>Trivselsvurdering</TitelTekst><BodyTekst/></Kvittering>\n"
        "    <MaaSendesTilDFF>nej</MaaSendesTilDFF>\n"
        "  </DigitalForsendelse>\n"
        f"  <FormularData>{body}\n  </FormularData>\n"
        "</os2formsFormular>\n"
    ).encode()


def _score(field: str, text: str | None) -> Score:
    theme = _FIELD_THEMES.get(field)
    if theme is None:
        raise WireError(f"the score form has an unknown theme field {field!r}")
    if text is None or text.strip().casefold() == NOT_ASSESSED.casefold():
        return Score(theme, None)
    try:
        value = int(text.strip())
    except ValueError:
        raise WireError(f"the score form's {field} is not a score") from None
    if not 1 <= value <= 5:
        raise WireError(f"the score form's {field} is {value}, outside the scale 1-5")
    return Score(theme, value)


def read_score_form(data: bytes) -> ScoreForm | None:
    """Parse a journalised XML file; ``None`` if it is not the score form.

    Raises :class:`WireError` for XML that is not well-formed (or declares a DOCTYPE), an
    unknown theme, a score outside 1–5, a theme given twice with different values (which of
    them the assessor meant cannot be told), or a missing date. A theme repeated with the same
    value is one score.
    """
    try:
        root = parse_xml(data)
    except XmlRejected as exc:
        raise WireError(f"the score form is rejected: {exc}") from None
    if root.tag != "os2formsFormular" or (root.findtext("OS2FormsId") or "").strip() != SCORE_FORM_ID:
        return None
    form = root.find("FormularData")
    if form is None:
        raise WireError("the score form has no FormularData")
    assessed_on = parse_form_date(form.findtext("vurderingsdato"), "vurderingsdato")
    scores = tuple(
        _score(str(element.tag), element.text)
        for element in form
        if isinstance(element.tag, str) and element.tag.startswith(SCORE_PREFIX)
    )
    given: dict[Theme, int | None] = {}
    for score in scores:
        if score.theme in given and given[score.theme] != score.value:
            raise WireError(f"the score form gives {score.theme.value} twice, with different values")
        given[score.theme] = score.value
    unique = tuple(dict.fromkeys(scores))
    return ScoreForm(assessed_on, _text(form.findtext("vurderet_af")), unique)
