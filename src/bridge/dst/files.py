"""The L201 and L231 delivery files: read as a stream of measures, and written.

L201 (PUBLIC, the XSD ``UdsatteBoernOgUngeLeveranceL201U1Struktur``, namespace
``http://rep.oio.dk/dst.dk/xml/schemas/2010/04/16/``)::

    UdsatteBoernOgUngeLeveranceL201U1Struktur
      DeliveryMetadataNewStructure            (envelope: survey, form, period, kommune; not read)
      ForanstaltningStrukturSamling
        ForanstaltningStruktur*
          UdsatBarnCPRidentifikator  FormynderCPRidentifikator  ForanstaltningId
          ForanstaltningKode  ForanstaltningStartDato  ForanstaltningSlutDato?

L231 (PUBLIC, ``BoernMedHandicapLeveranceL231Struktur``, same namespace)::

    BoernMedHandicapSagStrukturSamling
      BoernMedHandicapSagStruktur*
        INDSATSFORLOEB_ID  INDBERETNINGSTYPE  (CPR | UDL_NR)  KOEN?  FOEDDAG?
        INDSATS_KODE  INDSATS_STARTDATO  INDSATS_SLUTDATO?  SAGSBEHANDLER?

Elements are found by local name, so a prefix or another namespace version reads the same. Each
entry becomes a :class:`DstMeasure` (the child's person key and the measure) or a
:class:`DstRejection` with a reason that holds no person data: a CPR that is no real date, a code
not in the code list, a date that does not exist, an end before the start, a missing field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Final

from lxml import etree
from pydantic import ValidationError

from bridge.adapter.xml import iter_xml_elements
from bridge.dst.codes import CodeList, Format, UnknownCode
from bridge.model.records import MeasureRecord, rejection_reason
from bridge.privacy import InvalidCPR, Pseudonymizer

NAMESPACE: Final = "http://rep.oio.dk/dst.dk/xml/schemas/2010/04/16/"
ENVELOPE_NAMESPACE: Final = "http://rep.oio.dk/dst.dk/xml/schemas/2002/06/28/"
MEASURE_REF_PREFIX: Final = "dst:"
"""Measures imported from a delivery are kept under ``dst:<ForanstaltningId>``."""


@dataclass(frozen=True, slots=True)
class _Layout:
    root: str
    collection: str
    entry: str
    child_cpr: str
    measure_id: str
    code: str
    start: str
    end: str


LAYOUTS: Final[Mapping[Format, _Layout]] = {
    "l201": _Layout(
        root="UdsatteBoernOgUngeLeveranceL201U1Struktur",
        collection="ForanstaltningStrukturSamling",
        entry="ForanstaltningStruktur",
        child_cpr="UdsatBarnCPRidentifikator",
        measure_id="ForanstaltningId",
        code="ForanstaltningKode",
        start="ForanstaltningStartDato",
        end="ForanstaltningSlutDato",
    ),
    "l231": _Layout(
        root="BoernMedHandicapLeveranceL231Struktur",
        collection="BoernMedHandicapSagStrukturSamling",
        entry="BoernMedHandicapSagStruktur",
        child_cpr="CPR",
        measure_id="INDSATSFORLOEB_ID",
        code="INDSATS_KODE",
        start="INDSATS_STARTDATO",
        end="INDSATS_SLUTDATO",
    ),
}
_GUARDIAN_CPR: Final = "FormynderCPRidentifikator"
_REPORT_TYPE: Final = "INDBERETNINGSTYPE"
_CASEWORKER: Final = "SAGSBEHANDLER"
_BY_ENTRY: Final = {layout.entry: fmt for fmt, layout in LAYOUTS.items()}


@dataclass(frozen=True, slots=True)
class DstMeasure:
    """One entry read: the child (person key) and the measure, and the entry as delivered."""

    child_key: str
    measure: MeasureRecord
    payload: str


@dataclass(frozen=True, slots=True)
class DstRejection:
    """One entry that cannot be read; ``payload`` is the entry's XML as delivered."""

    ref: str | None
    reason: str
    payload: str


DstEntry = DstMeasure | DstRejection


def _text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            value = "".join(child.itertext()).strip()
            return value or None
    return None


def _date(text: str | None, name: str) -> date:
    if text is None:
        raise ValueError(f"{name} is missing")
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} is not a date that exists") from None


def _entry(element: etree._Element, fmt: Format, codes: CodeList, persons: Pseudonymizer) -> DstEntry:
    layout = LAYOUTS[fmt]
    measure_id = _text(element, layout.measure_id)
    ref = None if measure_id is None else MEASURE_REF_PREFIX + measure_id
    payload = etree.tostring(element, encoding="unicode")
    try:
        if measure_id is None:
            raise ValueError(f"{layout.measure_id} is missing")
        cpr = _text(element, layout.child_cpr)
        if cpr is None:
            raise ValueError(f"{layout.child_cpr} is missing (an entry without a CPR cannot be matched to a child)")
        child = persons.person(cpr)
        start = _date(_text(element, layout.start), layout.start)
        end_text = _text(element, layout.end)
        act, paragraph = codes.basis(_text(element, layout.code) or "", start)
        measure = MeasureRecord(
            source_ref=MEASURE_REF_PREFIX + measure_id,
            act=act,
            paragraph=paragraph,
            start=start,
            end=None if end_text is None else _date(end_text, layout.end),
            has_grant=True,  # DST is told of measures that were granted
        )
    except (ValueError, InvalidCPR, UnknownCode, ValidationError) as exc:
        return DstRejection(ref, rejection_reason(exc), payload)
    return DstMeasure(child.key, measure, payload)


def read_delivery(
    source: IO[bytes] | str | os.PathLike[str], codes: Mapping[Format, CodeList], persons: Pseudonymizer
) -> Iterator[DstEntry]:
    """Stream the entries of an L201 or L231 file (told apart by their element names).

    Raises :class:`~bridge.adapter.XmlRejected` for a file that is not well-formed or declares a DOCTYPE.
    """
    tags = [f"{{*}}{entry}" for entry in _BY_ENTRY]
    for element in iter_xml_elements(source, tags):
        fmt = _BY_ENTRY[etree.QName(element).localname]
        yield _entry(element, fmt, codes[fmt], persons)


# --- writing deliveries (fixtures, demos, and a fagsystem's own tests) ------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """One measure to report: the raw facts a fagsystem holds."""

    child_cpr: str
    measure_id: str
    code: str
    start: date | str
    end: date | str | None = None
    guardian_cpr: str | None = None
    caseworker: str | None = None


def _metadata(parent: etree._Element, form: str, municipality: str) -> None:
    metadata = etree.SubElement(parent, f"{{{NAMESPACE}}}DeliveryMetadataNewStructure")
    envelope = etree.SubElement(metadata, f"{{{ENVELOPE_NAMESPACE}}}Envelope")
    for name, value in (("Source", "bridge"), ("SurveyID", "D280600"), ("FormID", form)):
        etree.SubElement(envelope, f"{{{ENVELOPE_NAMESPACE}}}{name}").text = value
    entity = etree.SubElement(envelope, f"{{{ENVELOPE_NAMESPACE}}}Entity")
    etree.SubElement(entity, f"{{{ENVELOPE_NAMESPACE}}}EntityIDType").text = "Kommune"
    etree.SubElement(entity, f"{{{ENVELOPE_NAMESPACE}}}EntityID").text = municipality


def _write(path: Path, fmt: Format, lines: Iterable[DeliveryLine], municipality: str) -> Path:
    layout = LAYOUTS[fmt]
    root = etree.Element(f"{{{NAMESPACE}}}{layout.root}", nsmap={None: NAMESPACE})
    _metadata(root, fmt.upper(), municipality)
    collection = etree.SubElement(root, f"{{{NAMESPACE}}}{layout.collection}")

    def add(parent: etree._Element, name: str, value: object | None) -> None:
        if value is not None:
            etree.SubElement(parent, f"{{{NAMESPACE}}}{name}").text = str(value)

    for line in lines:
        entry = etree.SubElement(collection, f"{{{NAMESPACE}}}{layout.entry}")
        if fmt == "l201":
            add(entry, layout.child_cpr, line.child_cpr.replace("-", ""))
            add(entry, _GUARDIAN_CPR, (line.guardian_cpr or "0000000000").replace("-", ""))
            add(entry, layout.measure_id, line.measure_id)
            add(entry, layout.code, line.code)
            add(entry, layout.start, line.start)
            add(entry, layout.end, line.end)
        else:
            add(entry, layout.measure_id, line.measure_id)
            add(entry, _REPORT_TYPE, "Oprettelse")
            add(entry, layout.child_cpr, line.child_cpr.replace("-", ""))
            add(entry, layout.code, line.code)
            add(entry, layout.start, line.start)
            add(entry, layout.end, line.end)
            add(entry, _CASEWORKER, line.caseworker)
    etree.ElementTree(root).write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


def write_l201(path: Path, lines: Iterable[DeliveryLine], *, municipality: str) -> Path:
    """An L201 delivery (forebyggende foranstaltninger) holding ``lines``."""
    return _write(path, "l201", lines, municipality)


def write_l231(path: Path, lines: Iterable[DeliveryLine], *, municipality: str) -> Path:
    """An L231 delivery (børn med handicap) holding ``lines``."""
    return _write(path, "l231", lines, municipality)
