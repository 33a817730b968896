"""The DUBU wire: SF1475 "Hent sager fra DUBU" as the reference contract models it.

Everything DUBU-specific that travels on the wire is named here and nowhere else: namespaces,
SOAPActions, element names (:data:`NAMES`), code lists, fault codes, and the shapes of requests
and answers. The adapter and the simulator both speak through this module, so aligning bridge
with KOMBIT's real WSDL is a change to this file.

MODELLED (KOMBIT's SF1475 contract is not public; see ``reference/dubu/README.md``): the
operation and element names, paging, fault codes, the SF1475 namespace and endpoint, the
InvocationContext as a SOAP header. Grounded in public Serviceplatformen contracts: SOAP 1.1
document/literal, soapAction = namespace + operation, the InvocationContext's four lower-case
UUIDs, and ``soap:Fault/detail/ServiceplatformFault/ErrorList/Error{ErrorCode, ErrorText}``.

Reading follows the contract's tolerance rules: elements are found by local name (prefixes are
free, a default namespace is fine), unknown elements in any namespace are ignored, whitespace
around values is stripped, timestamps carry any offset and fractional seconds, booleans are
``1``/``true``, optional elements and containers may be absent or empty. Answers are read as
streams (:func:`bridge.adapter.iter_xml_elements`), one listed reference or one ICS entry at a
time, with the hardened parser: a DOCTYPE is refused before anything is parsed.

What is really wrong raises :class:`WireError` (a ``ValueError``) with a reason that names the
element, never its value: a CPR that is no real date, a score outside 1–5, an unknown theme, a
date that does not exist, a timestamp without an offset.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import IO, Final
from zoneinfo import ZoneInfo

from lxml import etree

from bridge.adapter import XmlRejected, iter_xml_elements, parse_xml
from bridge.model.records import Act, Theme
from bridge.privacy import mask_cpr

LOCAL_TZ: Final = ZoneInfo("Europe/Copenhagen")

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
"""SOAP 1.1 (public)."""
DUBU_NS: Final = "http://serviceplatformen.dk/xml/wsdl/soap11/DUBU/HentSager/1/"
"""MODELLED: the SF1475 namespace, after the Serviceplatformen pattern ``…/soap11/<Område>/<Service>/<v>/``."""
INVOCATION_CONTEXT_NS: Final = "http://serviceplatformen.dk/xml/schemas/InvocationContext/1/"
"""Public: Serviceplatformen's InvocationContext, version 1."""
FAULT_NS: Final = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
"""Public: Serviceplatformen's fault detail, version 1."""

SERVICE_PATH: Final = "/service/DUBU/HentSager/1"
"""MODELLED: the path of the endpoint under ``https://{exttest,prod}.serviceplatformen.dk``."""
CONTENT_TYPE: Final = "text/xml; charset=utf-8"
MAX_COUNT: Final = 500
"""The largest ``MaksAntal`` the service accepts (MODELLED)."""
FULL_SYNC_FROM: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""``AendretEfter`` of a full listing: an instant before every case."""


class Operation(StrEnum):
    """The two operations of the port type (MODELLED names)."""

    list_changed = "HentAendredeSager"
    fetch_case = "HentSag"

    @property
    def soap_action(self) -> str:
        """The quoted ``SOAPAction`` header: namespace + operation (the Serviceplatformen pattern)."""
        return f'"{DUBU_NS}{self.value}"'


@dataclass(frozen=True, slots=True)
class Names:
    """Every element local name bridge reads or writes, by what it means (MODELLED unless said).

    One flat mapping so that a real WSDL that names things differently is a change here.
    """

    envelope: str = "Envelope"
    header: str = "Header"
    body: str = "Body"
    # Serviceplatformen (public)
    invocation_context: str = "InvocationContext"
    service_agreement: str = "ServiceAgreementUUID"
    user_system: str = "UserSystemUUID"
    user: str = "UserUUID"
    service: str = "ServiceUUID"
    on_behalf_of: str = "OnBehalfOfUser"
    call_id: str = "CallersServiceCallIdentifier"
    accounting: str = "AccountingInfo"
    fault: str = "Fault"
    fault_code: str = "faultcode"
    fault_string: str = "faultstring"
    fault_detail: str = "detail"
    sp_fault: str = "ServiceplatformFault"
    error_list: str = "ErrorList"
    error: str = "Error"
    error_code: str = "ErrorCode"
    error_text: str = "ErrorText"
    # HentAendredeSager
    listing_request: str = "HentAendredeSagerRequest"
    changed_after: str = "AendretEfter"
    token: str = "FortsaettelsesToken"
    max_count: str = "MaksAntal"
    listing_response: str = "HentAendredeSagerResponse"
    references: str = "SagReferencer"
    reference: str = "SagReference"
    answered_at: str = "SvarTidspunkt"
    # HentSag
    case_request: str = "HentSagRequest"
    case_response: str = "HentSagResponse"
    # Sag
    case: str = "Sag"
    case_uuid: str = "SagUUID"
    case_number: str = "Sagsnummer"
    kle: str = "KLEEmne"
    municipality: str = "Kommunekode"
    target_group: str = "Maalgruppe"
    status: str = "Status"
    opened: str = "OprettetDato"
    closed: str = "AfsluttetDato"
    modified: str = "SidstAendret"
    child_cpr: str = "BarnCPR"
    child_name: str = "BarnNavn"
    custody_holders: str = "Foraeldremyndighedsindehavere"
    custody_holder: str = "Foraeldremyndighedsindehaver"
    holder_cpr: str = "CPR"
    holder_relation: str = "Relation"
    caseworker: str = "Sagsbehandler"
    caseworker_uuid: str = "BrugerUUID"
    caseworker_initials: str = "Initialer"
    caseworker_name: str = "Navn"
    caseworker_unit: str = "Enhed"
    notifications: str = "Underretninger"
    notification: str = "Underretning"
    notification_uuid: str = "UnderretningUUID"
    received: str = "ModtagetDato"
    assessed: str = "VurderetDato"
    notifier: str = "Underretter"
    description: str = "Beskrivelse"
    investigations: str = "BoernefagligeUndersoegelser"
    investigation: str = "BoernefagligUndersoegelse"
    investigation_uuid: str = "UndersoegelseUUID"
    start: str = "StartDato"
    end: str = "SlutDato"
    completed: str = "AfsluttetDato"
    plans: str = "Handleplaner"
    plan: str = "Handleplan"
    kind: str = "Type"
    follow_ups: str = "Opfoelgninger"
    follow_up: str = "Opfoelgning"
    conversations: str = "Boernesamtaler"
    conversation: str = "Boernesamtale"
    consents: str = "Samtykker"
    consent: str = "Samtykke"
    given: str = "Givet"
    decisions: str = "Afgoerelser"
    decision: str = "Afgoerelse"
    decision_uuid: str = "AfgoerelseUUID"
    date: str = "Dato"
    act: str = "Lov"
    paragraph: str = "Paragraf"
    subsection: str = "Stk"
    number: str = "Nr"
    measures: str = "Foranstaltninger"
    measure: str = "Foranstaltning"
    measure_uuid: str = "ForanstaltningUUID"
    measure_title: str = "Betegnelse"
    granted: str = "Bevilget"
    account_code: str = "Kontering"
    provider: str = "Leverandoer"
    provider_name: str = "Navn"
    provider_cvr: str = "CVR"
    scores: str = "Resultatmaalinger"
    score_entry: str = "Resultatmaaling"
    score_uuid: str = "ResultatmaalingUUID"
    theme: str = "Tema"
    score: str = "Score"
    not_assessed: str = "IkkeVurderet"
    assessor: str = "Maaler"


NAMES: Final = Names()

# --- code lists (MODELLED values of the reference XSD) -------------------------------------------

THEMES: Final[Mapping[str, Theme]] = {
    "UdviklingOgAdfaerd": Theme.udvikling_adfaerd,
    "Familieforhold": Theme.familieforhold,
    "SkoleDagtilbudBeskaeftigelse": Theme.skole_beskaeftigelse,
    "Sundhed": Theme.sundhed,
    "FritidOgVenskaber": Theme.fritid_venskaber,
}
"""``Tema``: the five areas of the børnefaglige undersøgelse that Trivselslinealen scores."""
THEME_NAMES: Final[Mapping[Theme, str]] = {theme: name for name, theme in THEMES.items()}

TARGET_GROUPS: Final = ("udsatte", "handicap")
"""``Maalgruppe``: the values equal bridge's :class:`~bridge.model.records.TargetGroup`."""
STATUS_OPEN: Final = "Aktiv"
STATUS_CLOSED: Final = "Afsluttet"
PLAN_KINDS: Final = ("Handleplan", "BarnetsPlan", "Ungeplan")
CONSENT_KINDS: Final = ("IndhentningAfOplysninger", "Indsats", "Anbringelse", "Andet")
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


class FaultCode(StrEnum):
    """``ErrorCode`` values of the DUBU service (MODELLED) and what the adapter does with each."""

    context_invalid = "1001"  # InvocationContext missing or malformed: end the run (configuration)
    not_authorised = "1002"  # no service agreement / certificate not on the anvendersystem: end (auth)
    invalid_request = "2001"  # schema, DOCTYPE, SOAPAction, timestamp without offset: end (a bug)
    token_expired = "2002"  # continuation token invalid or expired: restart the listing from the cursor
    max_count_invalid = "2003"  # MaksAntal outside 1-500: end (a bug)
    case_unknown = "3001"  # SagUUID unknown (deleted since listed): skip it
    case_unavailable = "3002"  # this case cannot be delivered now: quarantine it, go on
    internal_error = "5001"  # retry with backoff, bounded
    unavailable = "5002"  # DUBU unavailable: retry with backoff, bounded


FAULT_TEXTS: Final[Mapping[FaultCode, str]] = {
    FaultCode.context_invalid: "InvocationContext mangler eller er ugyldig",
    FaultCode.not_authorised: "Ingen serviceaftale for de angivne UUID'er eller certifikatet",
    FaultCode.invalid_request: "Ugyldig forespørgsel",
    FaultCode.token_expired: "Fortsættelsestoken er ugyldigt eller udløbet",
    FaultCode.max_count_invalid: "MaksAntal skal være mellem 1 og 500",
    FaultCode.case_unknown: "Sagen findes ikke",
    FaultCode.case_unavailable: "Sagen kan ikke udleveres",
    FaultCode.internal_error: "Intern fejl",
    FaultCode.unavailable: "DUBU er ikke tilgængelig",
}
"""Danish fault texts, as the simulator sends them (MODELLED)."""
SERVER_FAULTS: Final = frozenset({FaultCode.case_unavailable, FaultCode.internal_error, FaultCode.unavailable})
"""Codes sent with ``faultcode`` Server; the others are Client faults."""


class WireError(ValueError):
    """Something DUBU sent that cannot be accepted; the message names the element, never its value."""


# --- the InvocationContext -----------------------------------------------------------------------

_LOWER_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ANY_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """Who calls, under which service agreement: four lower-case UUIDs, and optional texts."""

    service_agreement: str
    user_system: str
    user: str
    service: str
    accounting: str | None = None
    call_id: str | None = None
    on_behalf_of: str | None = None

    def problems(self) -> list[str]:
        """What is malformed, by element name (the UUID pattern accepts lower-case hex only)."""
        uuids = {
            NAMES.service_agreement: self.service_agreement,
            NAMES.user_system: self.user_system,
            NAMES.user: self.user,
            NAMES.service: self.service,
        }
        return [f"{name} is not a lower-case UUID" for name, value in uuids.items() if not _LOWER_UUID.match(value)]


def _render_context(parent: etree._Element, context: InvocationContext) -> None:
    element = etree.SubElement(parent, f"{{{INVOCATION_CONTEXT_NS}}}{NAMES.invocation_context}")
    for name, value in (
        (NAMES.service_agreement, context.service_agreement),
        (NAMES.user_system, context.user_system),
        (NAMES.user, context.user),
        (NAMES.service, context.service),
        (NAMES.on_behalf_of, context.on_behalf_of),
        (NAMES.call_id, context.call_id),
        (NAMES.accounting, context.accounting),
    ):
        if value is not None:
            etree.SubElement(element, f"{{{INVOCATION_CONTEXT_NS}}}{name}").text = value


def _read_context(element: etree._Element) -> InvocationContext:
    def text(name: str) -> str:
        return _text(element, name) or ""

    return InvocationContext(
        service_agreement=text(NAMES.service_agreement),
        user_system=text(NAMES.user_system),
        user=text(NAMES.user),
        service=text(NAMES.service),
        accounting=_text(element, NAMES.accounting),
        call_id=_text(element, NAMES.call_id),
        on_behalf_of=_text(element, NAMES.on_behalf_of),
    )


# --- values ----------------------------------------------------------------------------------------


def local_name(element: etree._Element) -> str:
    """An element's name without its namespace ("" for comments and processing instructions)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


_local = local_name


class _Fields:
    """The direct children of one element by local name (the first of each), found in one pass."""

    __slots__ = ("_children",)

    def __init__(self, element: etree._Element) -> None:
        children: dict[str, etree._Element] = {}
        for child in element:
            tag = child.tag
            if isinstance(tag, str):
                children.setdefault(tag.rpartition("}")[2], child)
        self._children = children

    def child(self, name: str) -> etree._Element | None:
        return self._children.get(name)


_Node = etree._Element | _Fields


def _child(node: _Node, name: str) -> etree._Element | None:
    """The first direct child with local name ``name``, in any namespace."""
    return (node if isinstance(node, _Fields) else _Fields(node)).child(name)


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if element is None else [child for child in element if _local(child) == name]


def _text(element: _Node, name: str) -> str | None:
    """The stripped text of child ``name``; ``None`` if it is absent or empty."""
    child = _child(element, name)
    if child is None:
        return None
    value = "".join(child.itertext()).strip()
    return value or None


def _required(element: _Node, name: str, where: str) -> str:
    value = _text(element, name)
    if value is None:
        raise WireError(f"{where} has no {name}")
    return value


# xsd:date may carry a zone ("2023-06-08Z", "2023-06-08+02:00"); the day is the day as written.
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:\d{2})$")


def parse_date(text: str, name: str) -> date:
    match = _DATE.match(text)
    if match is None:
        raise WireError(f"{name} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        raise WireError(f"{name} is a date that does not exist") from None


def parse_instant(text: str, name: str) -> datetime:
    """An ``xsd:dateTime`` that carries an offset (Z, +01:00, +02:00), as an aware datetime."""
    if "T" not in text or not _OFFSET.search(text):
        raise WireError(f"{name} is not a timestamp with an offset")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise WireError(f"{name} is not a valid timestamp") from None


def format_instant(value: datetime) -> str:
    """An aware datetime as DUBU writes it: milliseconds when there are any, the offset as given."""
    if value.tzinfo is None:
        raise ValueError("a DUBU timestamp needs an offset")
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Moment:
    """A ``DatoEllerTidspunkt``: a day, and the instant when a time of day was given."""

    day: date
    at: datetime | None = None


def parse_moment(text: str, name: str) -> Moment:
    """A date, or a timestamp with offset; the day of a timestamp is its day in Danish time."""
    if "T" in text:
        at = parse_instant(text, name)
        return Moment(at.astimezone(LOCAL_TZ).date(), at)
    return Moment(parse_date(text, name))


def format_moment(moment: Moment) -> str:
    return moment.day.isoformat() if moment.at is None else format_instant(moment.at)


def parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise WireError(f"{name} is not a boolean (true/false/1/0)")


def normalise_uuid(text: str, name: str) -> str:
    """A UUID in lower case (the case type allows either case; references are kept lower-case)."""
    if not _ANY_UUID.match(text):
        raise WireError(f"{name} is not a UUID")
    return text.lower()


# --- faults --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """A SOAP fault with the Serviceplatformen detail: the first error's code and text."""

    fault_code: str
    fault_string: str
    code: str | None
    text: str | None

    def describe(self) -> str:
        """``3002 (Server): <ErrorText>``; CPR-shaped numbers in the texts are masked."""
        code = self.code or "without ErrorCode"
        kind = self.fault_code.rpartition(":")[2] or "?"
        return mask_cpr(f"{code} ({kind}): {self.text or self.fault_string}")


def read_fault(root: etree._Element) -> Fault | None:
    """The fault in an envelope, or ``None`` if its body holds none."""
    body = _child(root, NAMES.body)
    fault = None if body is None else _child(body, NAMES.fault)
    if fault is None:
        return None
    error = None
    detail = _child(fault, NAMES.fault_detail)
    for sp_fault in _children(detail, NAMES.sp_fault):
        for errors in _children(sp_fault, NAMES.error_list):
            error = next(iter(_children(errors, NAMES.error)), None)
    return Fault(
        fault_code=_text(fault, NAMES.fault_code) or "",
        fault_string=_text(fault, NAMES.fault_string) or "",
        code=None if error is None else _text(error, NAMES.error_code),
        text=None if error is None else _text(error, NAMES.error_text),
    )


def parse_fault(data: bytes) -> Fault | None:
    """The fault in an answer, or ``None`` if it is no SOAP fault (transport trouble, an HTML page).

    Raises :class:`WireError` if the answer is refused by the hardened parser.
    """
    try:
        root = parse_xml(data)
    except XmlRejected as exc:
        raise WireError(f"the answer is refused: {exc}") from None
    if _local(root) != NAMES.envelope:
        return None
    return read_fault(root)


def render_fault(code: FaultCode, text: str | None = None, *, prefix: str | None = "soap") -> bytes:
    """A SOAP 1.1 fault as the service sends it with HTTP 500 (unqualified faultcode/faultstring)."""
    envelope = etree.Element(f"{{{SOAP_NS}}}{NAMES.envelope}", nsmap={prefix: SOAP_NS})
    body = etree.SubElement(envelope, f"{{{SOAP_NS}}}{NAMES.body}")
    fault = etree.SubElement(body, f"{{{SOAP_NS}}}{NAMES.fault}")
    kind = "Server" if code in SERVER_FAULTS else "Client"
    etree.SubElement(fault, NAMES.fault_code).text = f"{prefix}:{kind}" if prefix else kind
    summary = FAULT_TEXTS[code]
    string = etree.SubElement(fault, NAMES.fault_string)
    string.text = summary
    string.set("{http://www.w3.org/XML/1998/namespace}lang", "da")
    detail = etree.SubElement(fault, NAMES.fault_detail)
    sp_fault = etree.SubElement(detail, f"{{{FAULT_NS}}}{NAMES.sp_fault}", nsmap={"ns4": FAULT_NS})
    errors = etree.SubElement(sp_fault, f"{{{FAULT_NS}}}{NAMES.error_list}")
    error = etree.SubElement(errors, f"{{{FAULT_NS}}}{NAMES.error}")
    etree.SubElement(error, f"{{{FAULT_NS}}}{NAMES.error_code}").text = code.value
    etree.SubElement(error, f"{{{FAULT_NS}}}{NAMES.error_text}").text = text or summary
    return _serialise(envelope)


# --- requests ----------------------------------------------------------------------------------


def _envelope(context: InvocationContext) -> tuple[etree._Element, etree._Element]:
    nsmap = {"soapenv": SOAP_NS, "invctx": INVOCATION_CONTEXT_NS, "dubu": DUBU_NS}
    envelope = etree.Element(f"{{{SOAP_NS}}}{NAMES.envelope}", nsmap=nsmap)
    _render_context(etree.SubElement(envelope, f"{{{SOAP_NS}}}{NAMES.header}"), context)
    return envelope, etree.SubElement(envelope, f"{{{SOAP_NS}}}{NAMES.body}")


def _dubu(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{DUBU_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def render_listing_request(
    context: InvocationContext, changed_after: datetime, token: str | None, max_count: int
) -> bytes:
    """``HentAendredeSagerRequest``: cases changed at or after ``changed_after``; the token verbatim."""
    envelope, body = _envelope(context)
    request = _dubu(body, NAMES.listing_request)
    _dubu(request, NAMES.changed_after, format_instant(changed_after))
    if token is not None:
        _dubu(request, NAMES.token, token)
    _dubu(request, NAMES.max_count, str(max_count))
    return _serialise(envelope)


def render_case_request(context: InvocationContext, case_uuid: str) -> bytes:
    """``HentSagRequest`` for one case."""
    envelope, body = _envelope(context)
    _dubu(_dubu(body, NAMES.case_request), NAMES.case_uuid, case_uuid)
    return _serialise(envelope)


@dataclass(frozen=True, slots=True)
class ListingRequest:
    changed_after: str | None
    token: str | None
    max_count: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the service reads it (the simulator's side).

    ``context`` is the header's InvocationContext, else the body copy (the header wins), else
    ``None``. ``listing`` or ``case_uuid`` is set by the operation the body names.
    """

    operation: Operation | None
    context: InvocationContext | None
    listing: ListingRequest | None = None
    case_uuid: str | None = None


def read_request(data: bytes) -> Request:
    """Read a request envelope; :class:`WireError` if it is refused or is no SOAP 1.1 envelope."""
    try:
        root = parse_xml(data)
    except XmlRejected as exc:
        raise WireError(f"the request is refused: {exc}") from None
    if root.tag != f"{{{SOAP_NS}}}{NAMES.envelope}":
        raise WireError("the request is not a SOAP 1.1 envelope")
    header = _child(root, NAMES.header)
    body = _child(root, NAMES.body)
    payload = None if body is None or len(body) == 0 else body[0]
    context_element = None if header is None else _child(header, NAMES.invocation_context)
    if context_element is None and payload is not None:
        context_element = _child(payload, NAMES.invocation_context)
    context = None if context_element is None else _read_context(context_element)
    name = "" if payload is None else _local(payload)
    if payload is not None and name == NAMES.listing_request:
        listing = ListingRequest(
            _text(payload, NAMES.changed_after), _text(payload, NAMES.token), _text(payload, NAMES.max_count)
        )
        return Request(Operation.list_changed, context, listing=listing)
    if payload is not None and name == NAMES.case_request:
        return Request(Operation.fetch_case, context, case_uuid=_text(payload, NAMES.case_uuid))
    return Request(None, context)


# --- the listing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SagReference:
    """One listed case: its UUID, when it last changed, and its status if the service sent one."""

    uuid: str
    modified: datetime
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ListingPage:
    """One answer of ``HentAendredeSager``. ``token`` is ``None`` when the listing is complete."""

    references: tuple[SagReference, ...]
    token: str | None
    answered_at: datetime | None
    broken: tuple[tuple[str, str], ...] = ()
    """``(reason, the reference's XML)`` for listed references that could not be read."""


def read_listing(stream: IO[bytes]) -> ListingPage:
    """Read a ``HentAendredeSagerResponse`` envelope, one reference at a time.

    An absent or empty ``FortsaettelsesToken`` ends the listing (token ``None``). A reference
    without a readable SagUUID cannot be fetched: it is reported in ``broken``. Raises
    :class:`WireError` for a refused document, a fault, or an answer that is no listing.
    """
    references: list[SagReference] = []
    broken: list[tuple[str, str]] = []
    token: str | None = None
    answered_at: datetime | None = None
    seen_response = False
    tags = [f"{{*}}{n}" for n in (NAMES.reference, NAMES.token, NAMES.answered_at, NAMES.listing_response, NAMES.fault)]
    try:
        for element in iter_xml_elements(stream, tags):
            name = _local(element)
            parent = element.getparent()
            parent_name = "" if parent is None else _local(parent)
            if name == NAMES.fault:
                if parent_name == NAMES.body:
                    raise WireError("the listing answered with a SOAP fault")
            elif name == NAMES.reference and parent_name == NAMES.references:
                try:
                    references.append(_read_reference(element))
                except WireError as exc:
                    broken.append((str(exc), etree.tostring(element, encoding="unicode")))
            elif name == NAMES.token and parent_name == NAMES.listing_response:
                token = "".join(element.itertext()).strip() or None
            elif name == NAMES.answered_at and parent_name == NAMES.listing_response:
                text = "".join(element.itertext()).strip()
                answered_at = parse_instant(text, NAMES.answered_at) if text else None
            elif name == NAMES.listing_response:
                seen_response = True
    except XmlRejected as exc:
        raise WireError(f"the listing answer is refused: {exc}") from None
    if not seen_response:
        raise WireError(f"the answer holds no {NAMES.listing_response}")
    return ListingPage(tuple(references), token, answered_at, tuple(broken))


def _read_reference(raw: etree._Element) -> SagReference:
    element = _Fields(raw)
    where = NAMES.reference
    uuid = normalise_uuid(_required(element, NAMES.case_uuid, where), f"{where}/{NAMES.case_uuid}")
    modified = parse_instant(_required(element, NAMES.modified, where), f"{where}/{NAMES.modified}")
    return SagReference(uuid, modified, _text(element, NAMES.status))


# --- the case ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustodyHolder:
    cpr: str
    relation: str | None = None


@dataclass(frozen=True, slots=True)
class Caseworker:
    name: str
    uuid: str | None = None
    initials: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """An underretning: received, and assessed (the 24-hour rule) if it has been."""

    received: Moment
    assessed: Moment | None = None
    uuid: str | None = None
    notifier: str | None = None


@dataclass(frozen=True, slots=True)
class Investigation:
    """A børnefaglig undersøgelse (SEL § 50 / BL § 20)."""

    start: date
    completed: date | None = None
    uuid: str | None = None
    act: Act | None = None
    paragraph: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    made: date
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    given_on: date
    kind: str
    given: bool = True


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """``Lov`` + ``Paragraf`` [+ ``Stk`` [+ ``Nr``]]."""

    act: Act
    paragraph: str
    subsection: str | None = None
    number: str | None = None

    def text(self) -> str:
        """As bridge stores a paragraph: ``52 stk. 3 nr. 7``, ``32``, ``76 a``."""
        text = self.paragraph
        if self.subsection is not None:
            text += f" stk. {self.subsection}"
            if self.number is not None:
                text += f" nr. {self.number}"
        return text

    @classmethod
    def from_text(cls, act: Act, text: str) -> LegalBasis:
        """The reverse of :meth:`text`, for rendering ``52 stk. 3 nr. 7`` onto the wire."""
        match = re.fullmatch(r"(\d{1,3}(?: ?[a-z])?)(?: stk\. (\d{1,3}))?(?: nr\. (\d{1,3}))?", text.strip())
        if match is None:
            raise ValueError(f"paragraph {text!r} is not of the form '52 stk. 3 nr. 7'")
        return cls(act, match[1], match[2], match[3])


@dataclass(frozen=True, slots=True)
class Decision:
    decided_on: date
    basis: LegalBasis | None
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class Measure:
    """A foranstaltning with its legal basis and grant."""

    uuid: str
    basis: LegalBasis
    start: date
    end: date | None
    granted: bool
    title: str | None = None
    account_code: str | None = None
    provider: str | None = None
    provider_cvr: str | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """A Trivselslinealen score: 1 = i trivsel … 5 = truet trivsel; ``None`` = ikke vurderet."""

    theme: Theme
    value: int | None
    assessed_on: date
    assessor: str | None = None
    uuid: str | None = None


@dataclass(slots=True)
class Sag:
    """One DUBU case with its ICS content, as the wire has it."""

    uuid: str
    number: str
    municipality: str
    target_group: str
    status: str
    opened: date
    modified: datetime
    child_cpr: str
    kle: str | None = None
    closed: date | None = None
    child_name: str | None = None
    custody_holders: list[CustodyHolder] = field(default_factory=list)
    caseworker: Caseworker | None = None
    notifications: list[Notification] = field(default_factory=list)
    investigations: list[Investigation] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    follow_ups: list[date] = field(default_factory=list)
    conversations: list[date] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)


def _date(element: _Node, name: str, where: str) -> date:
    return parse_date(_required(element, name, where), f"{where}/{name}")


def _optional_date(element: _Node, name: str, where: str) -> date | None:
    text = _text(element, name)
    return None if text is None else parse_date(text, f"{where}/{name}")


def _optional_uuid(element: _Node, name: str, where: str) -> str | None:
    text = _text(element, name)
    return None if text is None else normalise_uuid(text, f"{where}/{name}")


def _act(text: str, where: str) -> Act:
    try:
        return Act(text)
    except ValueError:
        raise WireError(f"{where} names an act that is neither SEL nor BL") from None


def _known_act(text: str | None) -> Act | None:
    """The act of an entry that stores none (an undersøgelse, an afgørelse): an unknown one is no reason to reject."""
    return Act(text) if text in (Act.SEL.value, Act.BL.value) else None


def _basis(element: _Node, where: str, *, required: bool) -> LegalBasis | None:
    act_text = _text(element, NAMES.act)
    paragraph = _text(element, NAMES.paragraph)
    if paragraph is None or act_text is None or (not required and _known_act(act_text) is None):
        if required:
            raise WireError(f"{where} has no {NAMES.act} and {NAMES.paragraph}")
        return None
    return LegalBasis(
        _act(act_text, f"{where}/{NAMES.act}"),
        " ".join(paragraph.split()),
        _text(element, NAMES.subsection),
        _text(element, NAMES.number),
    )


def _read_holder(raw: etree._Element) -> CustodyHolder:
    element = _Fields(raw)
    cpr = _required(element, NAMES.holder_cpr, NAMES.custody_holder)
    return CustodyHolder(cpr, _text(element, NAMES.holder_relation))


def _read_notification(raw: etree._Element) -> Notification:
    element = _Fields(raw)
    where = NAMES.notification
    assessed = _text(element, NAMES.assessed)
    return Notification(
        received=parse_moment(_required(element, NAMES.received, where), f"{where}/{NAMES.received}"),
        assessed=None if assessed is None else parse_moment(assessed, f"{where}/{NAMES.assessed}"),
        uuid=_optional_uuid(element, NAMES.notification_uuid, where),
        notifier=_text(element, NAMES.notifier),
    )


def _read_investigation(raw: etree._Element) -> Investigation:
    element = _Fields(raw)
    where = NAMES.investigation
    return Investigation(
        start=_date(element, NAMES.start, where),
        completed=_optional_date(element, NAMES.completed, where),
        uuid=_optional_uuid(element, NAMES.investigation_uuid, where),
        act=_known_act(_text(element, NAMES.act)),
        paragraph=_text(element, NAMES.paragraph),
    )


def _read_plan(raw: etree._Element) -> Plan:
    element = _Fields(raw)
    return Plan(_date(element, NAMES.date, NAMES.plan), _text(element, NAMES.kind))


def _read_consent(raw: etree._Element) -> Consent:
    element = _Fields(raw)
    where = NAMES.consent
    given = _text(element, NAMES.given)
    return Consent(
        _date(element, NAMES.date, where),
        _text(element, NAMES.kind) or "",
        True if given is None else parse_bool(given, f"{where}/{NAMES.given}"),  # absent means given
    )


def _read_decision(raw: etree._Element) -> Decision:
    element = _Fields(raw)
    where = NAMES.decision
    return Decision(
        _date(element, NAMES.date, where),
        _basis(element, where, required=False),
        _optional_uuid(element, NAMES.decision_uuid, where),
    )


def _read_measure(raw: etree._Element) -> Measure:
    element = _Fields(raw)
    where = NAMES.measure
    provider = _child(element, NAMES.provider)
    basis = _basis(element, where, required=True)
    assert basis is not None  # required=True raises instead
    return Measure(
        uuid=normalise_uuid(_required(element, NAMES.measure_uuid, where), f"{where}/{NAMES.measure_uuid}"),
        basis=basis,
        start=_date(element, NAMES.start, where),
        end=_optional_date(element, NAMES.end, where),
        granted=parse_bool(_required(element, NAMES.granted, where), f"{where}/{NAMES.granted}"),
        title=_text(element, NAMES.measure_title),
        account_code=_text(element, NAMES.account_code),
        provider=None if provider is None else _text(provider, NAMES.provider_name),
        provider_cvr=None if provider is None else _text(provider, NAMES.provider_cvr),
    )


def _read_score(raw: etree._Element) -> Score:
    element = _Fields(raw)
    where = NAMES.score_entry
    theme_text = _required(element, NAMES.theme, where)
    theme = THEMES.get(theme_text)
    if theme is None:
        raise WireError(f"{where}/{NAMES.theme} is not one of the five themes")
    value: int | None = None
    if _child(element, NAMES.not_assessed) is None:
        text = _required(element, NAMES.score, where)
        try:
            value = int(text)
        except ValueError:
            raise WireError(f"{where}/{NAMES.score} is not a whole number") from None
        if not 1 <= value <= 5:
            raise WireError(f"{where}/{NAMES.score} is {value}, outside Trivselslinealen's 1-5")
    return Score(
        theme=theme,
        value=value,
        assessed_on=_date(element, NAMES.date, where),
        assessor=_text(element, NAMES.assessor),
        uuid=_optional_uuid(element, NAMES.score_uuid, where),
    )


def _read_date_entry(raw: etree._Element) -> date:
    return _date(_Fields(raw), NAMES.date, _local(raw))


_ENTRIES: dict[str, tuple[str, Callable[[etree._Element], object], str]] = {
    # entry element: (its container, its reader, the Sag list it goes to)
    NAMES.custody_holder: (NAMES.custody_holders, _read_holder, "custody_holders"),
    NAMES.notification: (NAMES.notifications, _read_notification, "notifications"),
    NAMES.investigation: (NAMES.investigations, _read_investigation, "investigations"),
    NAMES.plan: (NAMES.plans, _read_plan, "plans"),
    NAMES.follow_up: (NAMES.follow_ups, _read_date_entry, "follow_ups"),
    NAMES.conversation: (NAMES.conversations, _read_date_entry, "conversations"),
    NAMES.consent: (NAMES.consents, _read_consent, "consents"),
    NAMES.decision: (NAMES.decisions, _read_decision, "decisions"),
    NAMES.measure: (NAMES.measures, _read_measure, "measures"),
    NAMES.score_entry: (NAMES.scores, _read_score, "scores"),
}


def read_case(stream: IO[bytes]) -> Sag:
    """Read a ``HentSagResponse`` envelope, one ICS entry at a time.

    Raises :class:`WireError` for a refused document, a fault, an answer without a ``Sag``, or
    anything in the case that is really wrong (see the module docstring).
    """
    entries: dict[str, list[object]] = {target: [] for _container, _reader, target in _ENTRIES.values()}
    sag: Sag | None = None
    tags = [f"{{*}}{name}" for name in (*_ENTRIES, NAMES.case, NAMES.fault)]
    try:
        for element in iter_xml_elements(stream, tags):
            name = _local(element)
            parent = element.getparent()
            if name == NAMES.fault:
                if parent is not None and _local(parent) == NAMES.body:
                    raise WireError("the case answered with a SOAP fault")
                continue
            grandparent = None if parent is None else parent.getparent()
            if name == NAMES.case:
                if parent is not None and _local(parent) == NAMES.case_response and sag is None:
                    sag = _read_sag(element)
                continue
            container, reader, target = _ENTRIES[name]
            # An extension element that happens to share a local name is no ICS entry of the case.
            if (
                parent is None
                or grandparent is None
                or (_local(parent), _local(grandparent)) != (container, NAMES.case)
            ):
                continue
            entries[target].append(reader(element))
    except XmlRejected as exc:
        raise WireError(f"the case answer is refused: {exc}") from None
    if sag is None:
        raise WireError(f"the answer holds no {NAMES.case_response}/{NAMES.case}")
    for target, values in entries.items():
        setattr(sag, target, values)
    return sag


def _read_sag(raw: etree._Element) -> Sag:
    """The case's own fields (its entries were read, and cleared, as they streamed past)."""
    element = _Fields(raw)
    where = NAMES.case
    kle = _text(element, NAMES.kle)
    closed = _optional_date(element, NAMES.closed, where)
    caseworker = _child(element, NAMES.caseworker)
    return Sag(
        uuid=normalise_uuid(_required(element, NAMES.case_uuid, where), f"{where}/{NAMES.case_uuid}"),
        number=_required(element, NAMES.case_number, where),
        kle=kle,
        municipality=_required(element, NAMES.municipality, where),
        target_group=_required(element, NAMES.target_group, where),
        status=_required(element, NAMES.status, where),
        opened=_date(element, NAMES.opened, where),
        closed=closed,
        modified=parse_instant(_required(element, NAMES.modified, where), f"{where}/{NAMES.modified}"),
        child_cpr=_required(element, NAMES.child_cpr, where),
        child_name=_text(element, NAMES.child_name),
        caseworker=None if caseworker is None else _read_caseworker(caseworker),
    )


def _read_caseworker(raw: etree._Element) -> Caseworker:
    element = _Fields(raw)
    where = NAMES.caseworker
    return Caseworker(
        name=_required(element, NAMES.caseworker_name, where),
        uuid=_optional_uuid(element, NAMES.caseworker_uuid, where),
        initials=_text(element, NAMES.caseworker_initials),
        unit=_text(element, NAMES.caseworker_unit),
    )


def read_case_bytes(data: bytes) -> Sag:
    return read_case(io.BytesIO(data))


# --- answers (the simulator's side) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Style:
    """How an answer is written: the DUBU prefix (``None``: a default namespace) and extensions.

    Real installations differ; the simulator varies these between answers to keep the reader honest.
    """

    prefix: str | None = "ns2"
    envelope_prefix: str = "S"
    extension: bool = False
    """Add elements the contract does not know, in a foreign namespace and in DUBU's own."""


EXTENSION_NS: Final = "urn:example:bridge-simulator:dubu-udvidelse"


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class _Writer:
    def __init__(self, style: Style) -> None:
        self.style = style

    def envelope(self) -> tuple[etree._Element, etree._Element]:
        envelope = etree.Element(f"{{{SOAP_NS}}}{NAMES.envelope}", nsmap={self.style.envelope_prefix: SOAP_NS})
        return envelope, etree.SubElement(envelope, f"{{{SOAP_NS}}}{NAMES.body}")

    def root(self, body: etree._Element, name: str) -> etree._Element:
        nsmap: dict[str | None, str] = {self.style.prefix: DUBU_NS}
        if self.style.extension:
            nsmap["ext"] = EXTENSION_NS
        return etree.SubElement(body, f"{{{DUBU_NS}}}{name}", nsmap=nsmap)

    def add(self, parent: etree._Element, name: str, value: object | None = None) -> etree._Element:
        element = etree.SubElement(parent, f"{{{DUBU_NS}}}{name}")
        if value is not None:
            element.text = _wire_text(value)
        return element

    def optional(self, parent: etree._Element, name: str, value: object | None) -> None:
        if value is not None:
            self.add(parent, name, value)

    def extend(self, parent: etree._Element, own: str) -> None:
        """Unknown elements: one in a foreign namespace with content, one in DUBU's namespace."""
        if self.style.extension:
            foreign = etree.SubElement(parent, f"{{{EXTENSION_NS}}}Udvidelse")
            etree.SubElement(foreign, f"{{{EXTENSION_NS}}}{NAMES.score}").text = "9"
            self.add(parent, own, "ukendt i denne version")


def _wire_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Moment):
        return format_moment(value)
    return str(value)


def render_listing(page: ListingPage, style: Style = Style()) -> bytes:
    """A ``HentAendredeSagerResponse`` envelope."""
    writer = _Writer(style)
    envelope, body = writer.envelope()
    response = writer.root(body, NAMES.listing_response)
    references = writer.add(response, NAMES.references)
    for reference in page.references:
        element = writer.add(references, NAMES.reference)
        writer.add(element, NAMES.case_uuid, reference.uuid)
        writer.add(element, NAMES.modified, reference.modified)
        writer.optional(element, NAMES.status, reference.status)
        writer.extend(element, "Sagstype")
    writer.optional(response, NAMES.token, page.token)
    writer.optional(response, NAMES.answered_at, page.answered_at)
    return _serialise(envelope)


def _render_basis(writer: _Writer, parent: etree._Element, basis: LegalBasis | None) -> None:
    if basis is None:
        return
    writer.add(parent, NAMES.act, basis.act.value)
    writer.add(parent, NAMES.paragraph, basis.paragraph)
    writer.optional(parent, NAMES.subsection, basis.subsection)
    writer.optional(parent, NAMES.number, basis.number)


def render_case_tree(sag: Sag, style: Style = Style()) -> etree._Element:
    """A ``HentSagResponse`` envelope as a tree, for a caller that still edits it (the simulator's defects)."""
    w = _Writer(style)
    envelope, body = w.envelope()
    e = w.add(w.root(body, NAMES.case_response), NAMES.case)
    w.add(e, NAMES.case_uuid, sag.uuid)
    w.add(e, NAMES.case_number, sag.number)
    w.optional(e, NAMES.kle, sag.kle)
    w.add(e, NAMES.municipality, sag.municipality)
    w.add(e, NAMES.target_group, sag.target_group)
    w.add(e, NAMES.status, sag.status)
    w.add(e, NAMES.opened, sag.opened)
    w.optional(e, NAMES.closed, sag.closed)
    w.add(e, NAMES.modified, sag.modified)
    w.add(e, NAMES.child_cpr, sag.child_cpr)
    w.optional(e, NAMES.child_name, sag.child_name)
    holders = w.add(e, NAMES.custody_holders)
    for holder in sag.custody_holders:
        h = w.add(holders, NAMES.custody_holder)
        w.add(h, NAMES.holder_cpr, holder.cpr)
        w.optional(h, NAMES.holder_relation, holder.relation)
    if sag.caseworker is not None:
        cw = w.add(e, NAMES.caseworker)
        w.optional(cw, NAMES.caseworker_uuid, sag.caseworker.uuid)
        w.optional(cw, NAMES.caseworker_initials, sag.caseworker.initials)
        w.add(cw, NAMES.caseworker_name, sag.caseworker.name)
        w.optional(cw, NAMES.caseworker_unit, sag.caseworker.unit)
    _render_entries(w, e, sag)
    w.extend(e, "Sagsart")
    return envelope


def _render_entries(w: _Writer, e: etree._Element, sag: Sag) -> None:
    if sag.notifications:
        container = w.add(e, NAMES.notifications)
        for n in sag.notifications:
            element = w.add(container, NAMES.notification)
            w.optional(element, NAMES.notification_uuid, n.uuid)
            w.add(element, NAMES.received, n.received)
            w.optional(element, NAMES.assessed, n.assessed)
            w.optional(element, NAMES.notifier, n.notifier)
    if sag.investigations:
        container = w.add(e, NAMES.investigations)
        for i in sag.investigations:
            element = w.add(container, NAMES.investigation)
            w.optional(element, NAMES.investigation_uuid, i.uuid)
            w.add(element, NAMES.start, i.start)
            w.optional(element, NAMES.completed, i.completed)
            w.optional(element, NAMES.act, None if i.act is None else i.act.value)
            w.optional(element, NAMES.paragraph, i.paragraph)
    if sag.plans:
        container = w.add(e, NAMES.plans)
        for p in sag.plans:
            element = w.add(container, NAMES.plan)
            w.add(element, NAMES.date, p.made)
            w.optional(element, NAMES.kind, p.kind)
    for container_name, entry_name, days in (
        (NAMES.follow_ups, NAMES.follow_up, sag.follow_ups),
        (NAMES.conversations, NAMES.conversation, sag.conversations),
    ):
        if days:
            container = w.add(e, container_name)
            for day in days:
                w.add(w.add(container, entry_name), NAMES.date, day)
    if sag.consents:
        container = w.add(e, NAMES.consents)
        for c in sag.consents:
            element = w.add(container, NAMES.consent)
            w.add(element, NAMES.date, c.given_on)
            w.add(element, NAMES.kind, c.kind)
            if not c.given:
                w.add(element, NAMES.given, False)
    if sag.decisions:
        container = w.add(e, NAMES.decisions)
        for d in sag.decisions:
            element = w.add(container, NAMES.decision)
            w.optional(element, NAMES.decision_uuid, d.uuid)
            w.add(element, NAMES.date, d.decided_on)
            if d.basis is not None:
                _render_basis(w, element, d.basis)
    if sag.measures:
        container = w.add(e, NAMES.measures)
        for m in sag.measures:
            element = w.add(container, NAMES.measure)
            w.add(element, NAMES.measure_uuid, m.uuid)
            _render_basis(w, element, m.basis)
            w.optional(element, NAMES.measure_title, m.title)
            w.add(element, NAMES.start, m.start)
            w.optional(element, NAMES.end, m.end)
            w.add(element, NAMES.granted, m.granted)
            w.optional(element, NAMES.account_code, m.account_code)
            if m.provider is not None:
                provider = w.add(element, NAMES.provider)
                w.add(provider, NAMES.provider_name, m.provider)
                w.optional(provider, NAMES.provider_cvr, m.provider_cvr)
            w.extend(element, "Takst")
    if sag.scores:
        container = w.add(e, NAMES.scores)
        for s in sag.scores:
            element = w.add(container, NAMES.score_entry)
            w.optional(element, NAMES.score_uuid, s.uuid)
            w.add(element, NAMES.theme, THEME_NAMES[s.theme])
            if s.value is None:
                w.add(element, NAMES.not_assessed)
            else:
                w.add(element, NAMES.score, s.value)
            w.add(element, NAMES.date, s.assessed_on)
            w.optional(element, NAMES.assessor, s.assessor)


def render_case(sag: Sag, style: Style = Style()) -> bytes:
    """A ``HentSagResponse`` envelope."""
    return _serialise(render_case_tree(sag, style))


def serialise(root: etree._Element) -> bytes:
    """An envelope tree as bytes with an XML declaration."""
    return _serialise(root)


def find_all(root: etree._Element, name: str) -> Iterator[etree._Element]:
    """Every element with local name ``name`` under ``root`` (the simulator's edits)."""
    return (element for element in root.iter() if _local(element) == name)


# --- continuation tokens (the simulator's side; MODELLED as the sample's base64 JSON) --------------


def encode_token(fields: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, object] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
