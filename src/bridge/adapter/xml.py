"""XML: hardened lxml parsing (no entities, no network, size limits).

:func:`parse_xml` reads a whole document, :func:`iter_xml_elements` streams a large one.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Collection, Iterator
from typing import IO, TypedDict

from lxml import etree

from bridge.privacy import mask_cpr

MAX_XML_BYTES = 10 * 1024 * 1024

# A DOCTYPE can only come before the root element, after an optional BOM, XML declaration,
# comments and processing instructions. Matching there (not anywhere) keeps text such as
# "<!DOCTYPE" inside a CDATA section from being mistaken for one.
_DOCTYPE_IN_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.DOTALL)
# How much of a stream is read ahead to look for a DOCTYPE in its prolog.
_PROLOG_BYTES = 64 * 1024


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


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read: ``head``, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def iter_xml_elements(
    source: IO[bytes] | str | os.PathLike[str], tag: str | Collection[str], *, huge_tree: bool = False
) -> Iterator[etree._Element]:
    """Stream the elements named ``tag`` (lxml syntax: ``{ns}name``, ``{*}name``; one or several) from ``source``.

    Parsed with the same hardening as :func:`safe_xml_parser`, and a DOCTYPE in the prolog is
    refused before the parser sees it. Each element is complete when yielded and is cleared
    when the caller asks for the next one, and the siblings before it are dropped from the tree:
    copy what you need before moving on. Memory stays bounded by one element plus its ancestors
    (and what those ancestors hold besides the matched elements).
    Raises :class:`XmlRejected` for a DOCTYPE or a document that is not well-formed.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield from iter_xml_elements(stream, tag, huge_tree=huge_tree)
        return
    head = source.read(_PROLOG_BYTES)
    if _DOCTYPE_IN_PROLOG.match(head):
        raise XmlRejected("the document declares a DOCTYPE; DTDs and entity declarations are not accepted")
    tags = [tag] if isinstance(tag, str) else list(tag)
    stream = io.BufferedReader(_Prefixed(head, source))
    events = etree.iterparse(stream, events=("end",), tag=tags, **_HARDENING, huge_tree=huge_tree)
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
