"""Hardened XML: ordinary documents parse; XXE, entity bombs and oversized input fail safely."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

from bridge.adapter import XmlRejected, iter_xml_elements, parse_xml, safe_xml_parser

SENTINEL = "SECRET-FILE-CONTENT-4711"

FORM = b"""<?xml version="1.0" encoding="utf-8"?>
<os2formsFormular xmlns="urn:os2forms:test">
  <FormularData>
    <Tema navn="sundhed">3</Tema>
    <Tema navn="skole"><![CDATA[<!DOCTYPE not-a-doctype> 4]]></Tema>
  </FormularData>
</os2formsFormular>"""


def billion_laughs() -> bytes:
    levels = [b'<!ENTITY lol0 "lol">']
    levels += [b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10) for level in range(1, 10)]
    return b'<?xml version="1.0"?><!DOCTYPE lolz [' + b"".join(levels) + b"]><lolz>&lol9;</lolz>"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SENTINEL)
    return path


def file_xxe(path: Path, *, encoding: str = "utf-8") -> bytes:
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "{path.as_uri()}">]><r>&xxe;</r>'
    )
    return text.encode(encoding)


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = b'<!ENTITY % leak "leaked">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that records every fetch an XML parser might make."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    hits: list[str] = []
    server.hits = hits  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_ordinary_document_parses() -> None:
    root = parse_xml(FORM)

    ns = {"f": "urn:os2forms:test"}
    assert etree.QName(root).localname == "os2formsFormular"
    scores = {t.get("navn"): t.text for t in root.iterfind("f:FormularData/f:Tema", ns)}
    assert scores == {"sundhed": "3", "skole": "<!DOCTYPE not-a-doctype> 4"}


def test_the_parser_factory_is_hardened() -> None:
    # lxml does not expose a parser's options, so the hardening is read from its behaviour:
    # an undeclared entity stays an error rather than being looked up anywhere.
    with pytest.raises(etree.XMLSyntaxError, match="Entity 'x' not defined"):
        etree.fromstring(b"<r>&x;</r>", safe_xml_parser())


def test_the_xxe_fixture_would_leak_through_a_careless_parser(secret_file: Path) -> None:
    """Proves the XXE tests below could fail: an unhardened parser reads the file."""
    careless = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False)

    assert etree.fromstring(file_xxe(secret_file), careless).text == SENTINEL


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_file_entities_are_rejected_unread(secret_file: Path, encoding: str) -> None:
    with pytest.raises(XmlRejected, match="DOCTYPE") as raised:
        parse_xml(file_xxe(secret_file, encoding=encoding))
    assert SENTINEL not in str(raised.value)


def test_etc_passwd_is_not_read() -> None:
    doc = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>'

    with pytest.raises(XmlRejected, match="DOCTYPE") as raised:
        parse_xml(doc)
    assert "root:" not in str(raised.value)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_network_entities_and_external_dtds_are_never_fetched(dtd_server: tuple[str, list[str]], encoding: str) -> None:
    url, hits = dtd_server
    docs = [
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE r SYSTEM "{url}/external.dtd"><r/>',
        f'<?xml version="1.0" encoding="{encoding}"?>'
        f'<!DOCTYPE r [<!ENTITY % remote SYSTEM "{url}/param.dtd"> %remote;]><r/>',
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "{url}/entity">]><r>&xxe;</r>',
    ]
    for doc in docs:
        with pytest.raises(XmlRejected):
            parse_xml(doc.encode(encoding))
        with pytest.raises(XmlRejected):
            list(iter_xml_elements(io.BytesIO(doc.encode(encoding)), "r"))
    assert hits == []


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_rejected(encoding: str) -> None:
    doc = billion_laughs().decode().encode(encoding)

    with pytest.raises(XmlRejected):
        parse_xml(doc)
    with pytest.raises(XmlRejected):
        list(iter_xml_elements(io.BytesIO(doc), "lolz"))


def test_oversized_documents_are_rejected_before_parsing() -> None:
    doc = b"<r>" + b"x" * 100 + b"</r>"

    assert parse_xml(doc, max_bytes=len(doc)).text == "x" * 100
    with pytest.raises(XmlRejected, match=f"{len(doc)} bytes, more than the {len(doc) - 1} accepted"):
        parse_xml(doc, max_bytes=len(doc) - 1)


def test_malformed_xml_is_rejected_without_its_content() -> None:
    cpr = "0101901234"

    with pytest.raises(XmlRejected, match="not well-formed") as raised:
        parse_xml(f"<Sag><CprNummer>{cpr}</CprNummer></Sagen>".encode())
    assert cpr not in str(raised.value)


def generated_extract(cases: int) -> bytes:
    """A SOAP-like response with ``cases`` cases under Envelope/Body/Svar."""
    sager = "".join(
        f"<d:Sag><d:Id>{n}</d:Id><d:Titel>Sag {n}</d:Titel><d:Foranstaltninger>"
        + "".join(f"<d:F>{n}-{m}</d:F>" for m in range(3))
        + "</d:Foranstaltninger></d:Sag>\n"
        for n in range(cases)
    )
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:d="urn:dubu:test"><s:Body><d:Svar><d:Antal>{cases}</d:Antal>{sager}</d:Svar></s:Body>'
        "</s:Envelope>"
    ).encode()


def test_iter_xml_elements_streams_every_element_and_keeps_only_the_current_one(tmp_path: Path) -> None:
    cases = 500
    path = tmp_path / "extract.xml"
    path.write_bytes(generated_extract(cases))

    ids: list[str] = []
    previous: etree._Element | None = None
    for sag in iter_xml_elements(path, "{urn:dubu:test}Sag"):
        ids.append(sag.findtext("{urn:dubu:test}Id") or "")
        assert len(sag.findall("{urn:dubu:test}Foranstaltninger/{urn:dubu:test}F")) == 3
        # The parser reads ahead in chunks, so later siblings may exist already; earlier ones must not.
        assert sag.getprevious() is None, "earlier siblings must be gone from the tree"
        if previous is not None:
            assert len(previous) == 0
            assert previous.text is None
        previous = sag

    assert ids == [str(n) for n in range(cases)]
    assert previous is not None
    root = previous.getroottree().getroot()
    assert sum(1 for _ in root.iter("{urn:dubu:test}Sag")) == 1
    assert sum(1 for _ in root.iter("{urn:dubu:test}F")) == 0


def test_iter_xml_elements_reads_a_binary_stream_and_wildcard_namespaces() -> None:
    ids = [sag.findtext("{*}Id") for sag in iter_xml_elements(io.BytesIO(generated_extract(5)), "{*}Sag")]

    assert ids == ["0", "1", "2", "3", "4"]


def test_iter_xml_elements_rejects_a_doctype_even_without_matches(secret_file: Path) -> None:
    with pytest.raises(XmlRejected, match="DOCTYPE") as raised:
        list(iter_xml_elements(io.BytesIO(file_xxe(secret_file)), "nothing-matches"))
    assert SENTINEL not in str(raised.value)


def test_iter_xml_elements_rejects_malformed_xml() -> None:
    with pytest.raises(XmlRejected, match="not well-formed"):
        list(iter_xml_elements(io.BytesIO(b"<a><Sag/><Sag></a>"), "Sag"))
