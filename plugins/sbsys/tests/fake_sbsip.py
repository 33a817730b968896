"""A hand-written SBSIP for respx tests, built from the reference payload.

Independent of the simulator: payloads start from ``data/sag_with_parts.json`` (a real
``GET api/sag/{id}`` answer) and are changed field by field, so the adapter is tested
against what SBSIP sends, not against our own renderer.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx
from pydantic import SecretStr

from bridge.adapter import SourceContext
from bridge.privacy import Pseudonymizer
from bridge_sbsys.adapter import SbsysAdapter, SbsysConfig

ORIGIN = "https://sbsip.test"
PREFIX = "/convergens-sbsip-sbsys-webapi-proxy/proxy"
BASE = ORIGIN + PREFIX
TOKEN_URL = BASE + "/auth/realms/sbsip/protocol/openid-connect/token"
REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "sag_with_parts.json").read_text("utf-8"))
CHILD_CPR = "010490-9989"  # the reference's primary party; its parents are 010862-9996 and 010858-9995
SECRET = "test-secret-for-bridge"
UDSATTE_TEMPLATE = "Børnesag - udsatte børn og unge"


def children_sag(sag_id: int, *, modified: str = "2024-01-15T10:00:00.123+01:00", **changes: Any) -> dict[str, Any]:
    """The reference sag turned into a children's main case (27.24.00-G01-…)."""
    sag = copy.deepcopy(REFERENCE)
    sag["Id"] = sag_id
    sag["Nummer"] = f"27.24.00-G01-{sag_id}-19"
    sag["SagsNummer"]["EmneplanNummer"]["Nummer"] = "27.24.00"
    sag["SagsNummer"]["SekvensNummer"] = sag_id
    sag["SagSkabelon"]["Navn"] = UDSATTE_TEMPLATE
    sag["SenestAendret"] = modified
    sag.update(changes)
    return sag


def grant_sag(sag_id: int, *, cpr: str = CHILD_CPR, paragraph: str = "SEL § 52, stk. 3, nr. 7") -> dict[str, Any]:
    sag = children_sag(sag_id, Nummer=f"27.27.00-G01-{sag_id}-19", ErBesluttet=True)
    sag["PrimaryPart"]["CPRnummer"] = cpr
    sag["Firmaer"] = [{"Id": 7, "PartType": "Firma", "Navn": "Opholdsstedet Lyngen"}]
    sag["Bevillingsoplysninger"] = {
        "Lovgrundlag": paragraph,
        "Kontering": "5.28.21.001",
        "Startdato": "2019-12-01T00:00:00+01:00",
        "Slutdato": None,
    }
    return sag


def score_xml(fields: str, form_id: str = "trivselsvurdering") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><os2formsFormular>'
        f"<OS2FormsId>{form_id}</OS2FormsId>"
        f"<SBSYSJournalisering><PrimaerPartCprNummer>{CHILD_CPR}</PrimaerPartCprNummer></SBSYSJournalisering>"
        f"<FormularData><vurderingsdato>2020-01-20</vurderingsdato><vurderet_af>testbruger01</vurderet_af>"
        f"{fields}</FormularData></os2formsFormular>"
    )


@dataclass
class FakeSbsip:
    """The state behind the mocked routes; tests change it and read ``calls``."""

    sager: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    files: dict[int, str | bytes] = field(default_factory=dict)
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    erindringer: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    documents: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    expires_in: int = 300
    calls: Counter[str] = field(default_factory=Counter)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    search_bodies: list[dict[str, Any]] = field(default_factory=list)
    issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    faults: dict[str, list[httpx.Response]] = field(default_factory=dict)
    """Answers given before the real one, per route name, consumed in order."""
    ignore_filters: bool = False
    """Answer every search with every case, as a server that ignores NummerInterval and PrimaerPerson."""

    def add_case(self, sag: dict[str, Any], *, score_forms: Sequence[str | bytes] = ()) -> None:
        self.sager.append(sag)
        docs = []
        for xml in score_forms:
            file_id = 5000 + len(self.files)
            self.files[file_id] = xml
            docs.append(
                {
                    "Id": file_id + 1000,
                    "DokumentNavn": "Trivselsvurdering",
                    "RegistreringsDato": "2020-01-20T11:00:00.000+01:00",
                    "Filer": [{"Id": file_id, "Filnavn": "os2forms.xml", "MimeType": "text/xml"}],
                }
            )
        self.documents[sag["Id"]] = docs

    def _fault(self, name: str) -> httpx.Response | None:
        queue = self.faults.get(name)
        return queue.pop(0) if queue else None

    def _authorized(self, request: httpx.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.valid_tokens

    def token(self, request: httpx.Request) -> httpx.Response:
        self.calls["token"] += 1
        if (fault := self._fault("token")) is not None:
            return fault
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_forms.append(form)
        if form.get("client_secret") != "right":
            return httpx.Response(401, json={"error": "invalid_client", "error_description": "Invalid client"})
        self.issued += 1
        token = f"token-{self.issued}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def api(self, name: str, request: httpx.Request, answer: Any) -> httpx.Response:
        self.calls[name] += 1
        if (fault := self._fault(name)) is not None:
            return fault
        if not self._authorized(request):
            return httpx.Response(401, json={"Message": "Unauthorized"})
        if isinstance(answer, str):
            return httpx.Response(200, text=answer, headers={"Content-Type": "text/xml"})
        if isinstance(answer, bytes):  # a file as stored, whatever the charset the proxy claims
            return httpx.Response(200, content=answer, headers={"Content-Type": "text/xml; charset=utf-8"})
        if answer is None:
            return httpx.Response(404, json={"Message": "Ikke fundet"})
        return httpx.Response(200, json=answer, headers={"Date": "Mon, 15 Jan 2024 12:00:00 GMT"})

    def search(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.search_bodies.append(body)
        interval = body.get("NummerInterval", {})
        pool = self.grants if interval.get("From", "").startswith("27.27") else self.sager
        cpr = body.get("PrimaerPerson", {}).get("CprNummer")
        matches = [s for s in pool if cpr is None or s["PrimaryPart"]["CPRnummer"] == cpr]
        if self.ignore_filters:
            matches = self.sager + self.grants
        page = matches[body.get("Skip", 0) : body.get("Skip", 0) + body.get("Limit", 100)]
        return self.api("search", request, {"TotalNumberOfResults": len(matches), "Results": page})

    def route(self, router: respx.MockRouter) -> None:
        by_id = {"sag": lambda i: next((s for s in self.sager if s["Id"] == i), None)}
        router.post(TOKEN_URL).mock(side_effect=self.token)
        router.post(BASE + "/api/sag/search").mock(side_effect=self.search)
        router.get(url__regex=rf"{BASE}/api/sag/(?P<i>\d+)$").mock(
            side_effect=lambda request, i: self.api("sag", request, by_id["sag"](int(i)))
        )
        router.get(url__regex=rf"{BASE}/api/erindring/sag/(?P<i>\d+)$").mock(
            side_effect=lambda request, i: self.api("erindring", request, self.erindringer.get(int(i), []))
        )
        router.get(url__regex=rf"{BASE}/api/sag/(?P<i>\d+)/journalarknotes$").mock(
            side_effect=lambda request, i: self.api("journalarknotes", request, self.notes.get(int(i), []))
        )
        router.get(url__regex=rf"{BASE}/api/sag/(?P<i>\d+)/dokumenter$").mock(
            side_effect=lambda request, i: self.api("dokumenter", request, self.documents.get(int(i), []))
        )
        router.get(url__regex=rf"{BASE}/api/fil/(?P<i>\d+)$").mock(
            side_effect=lambda request, i: self.api("fil", request, self.files.get(int(i)))
        )


@contextmanager
def mocked(fake: FakeSbsip) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        fake.route(router)
        yield router


def make_adapter(**settings: Any) -> SbsysAdapter:
    values: dict[str, Any] = {
        "base_url": BASE,
        "grant_type": "client_credentials",
        "client_id": "bridge",
        "client_secret": "right",
        "retry_base_delay": 0,
        "page_size": 100,
        **settings,
    }
    context = SourceContext("sbsys-test", "461", Pseudonymizer(SecretStr(SECRET)))
    return SbsysAdapter(SbsysConfig.model_validate(values), context)
