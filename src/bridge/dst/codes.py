"""DST measure codes and the legal basis each stands for.

Danmarks Statistik codes each measure (``ForanstaltningKode`` in L201, ``INDSATS_KODE`` in L231)
rather than naming its paragraph; which paragraph a code covers changes over time (DST's
PGF-bilag). bridge keeps a measure's legal basis as act + paragraph, so a code is read as the
Serviceloven paragraph for a measure that starts before 2024 and the Barnets lov paragraph from
2024 on (a code known under one act only is read under that act).

PUBLIC: the L201 codes marked so below are those an open-source fagsystem (OS2bos) reports for
these Serviceloven paragraphs, and the PGF groups are DST's (100–199 anbringelser, 200–299
personrettede and 400–455 familierettede forebyggende foranstaltninger). MODELLED: every other
entry, every Barnets lov paragraph and the whole L231 list — DST's complete code list is not
public in a form bridge can ship. A municipality corrects or extends the list with
``--codes FILE`` (TOML)::

    [l201.220]
    SEL = "52 stk. 3 nr. 3"
    BL = "32"
    label = "Familiebehandling"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final, Literal

from bridge.errors import ConfigError
from bridge.model.records import Act

BARNETS_LOV: Final = date(2024, 1, 1)

Format = Literal["l201", "l231"]


@dataclass(frozen=True, slots=True)
class Code:
    """What one DST code stands for: the paragraph under each act, and a label."""

    label: str
    sel: str | None = None
    bl: str | None = None
    public: bool = False
    """True where the entry is taken from a public source (see the module docstring)."""

    def basis(self, start: date) -> tuple[Act, str]:
        if self.bl is not None and (start >= BARNETS_LOV or self.sel is None):
            return Act.BL, self.bl
        assert self.sel is not None  # a Code has a paragraph under at least one act
        return Act.SEL, self.sel


class UnknownCode(ValueError):
    """A DST code the code list does not hold."""


class CodeList:
    """The codes of one delivery format."""

    def __init__(self, codes: Mapping[str, Code]) -> None:
        for code, meaning in codes.items():
            if meaning.sel is None and meaning.bl is None:
                raise ValueError(f"DST code {code} names no paragraph")
        self.codes = dict(codes)

    def basis(self, code: str, start: date) -> tuple[Act, str]:
        """The act and paragraph ``code`` stands for, for a measure starting on ``start``."""
        meaning = self.codes.get(code.strip())
        if meaning is None:
            raise UnknownCode(f"the DST code {code.strip()!r} is not in the code list")
        return meaning.basis(start)

    def code_for(self, act: Act, paragraph: str) -> str | None:
        """The code of a legal basis (for writing deliveries); ``None`` if no code stands for it."""
        for code, meaning in self.codes.items():
            if (meaning.sel if act is Act.SEL else meaning.bl) == paragraph:
                return code
        return None


L201_CODES: Final = CodeList(
    {
        # Anbringelse (PGF 100-199).
        "100": Code("Anbringelse uden for hjemmet", sel="52 stk. 3 nr. 7", bl="46"),
        # Personrettede forebyggende foranstaltninger (PGF 200-299).
        "220": Code("Familiebehandling / behandling af barnets problemer", sel="52 stk. 3 nr. 3", bl="32"),
        "230": Code("Aflastningsordning", sel="52 stk. 3 nr. 5"),
        "240": Code("Fast kontaktperson", sel="52 stk. 3 nr. 6", bl="32 stk. 1 nr. 3"),
        "245": Code("Tilknytning af koordinator", sel="54 a", public=True),
        "270": Code("Efterværn", sel="76", bl="114"),
        "271": Code("Fast kontaktperson 18-22 årige, tidligere tvangsanbragte", sel="76 stk. 5", public=True),
        "272": Code("Kontaktperson 18-årige, tidligere anbragte", sel="76 stk. 6", public=True),
        "273": Code("Tilbagevenden til anbringelsessted", sel="76 stk. 8", public=True),
        "275": Code("Unge anbragt op til det 18. år med fortsat behov for støtte", sel="76 stk. 3", public=True),
        "290": Code("Efterværn / kontaktperson 18-22 årige", sel="76 stk. 2", public=True),
        # Familierettede forebyggende foranstaltninger (PGF 400-455).
        "401": Code("Netværks- og samtalegrupper", sel="11 stk. 3 nr. 2", public=True),
        "403": Code("Andre forebyggende indsatser", sel="11 stk. 3 nr. 4", public=True),
        "404": Code("Økonomisk støtte til fritidstilbud", sel="11 stk. 6", public=True),
        "405": Code("Konsulentbistand, herunder familieorienteret rådgivning", sel="11 stk. 3 nr. 1", public=True),
        "407": Code("Økonomisk støtte i forbindelse med konsulentbistand", sel="11 stk. 4 nr. 1", public=True),
        "409": Code("Rådgivning, undersøgelse og behandling", sel="11 stk. 7", public=True),
        "445": Code("Økonomisk støtte til at undgå anbringelse", sel="52 a stk. 1 nr. 2", public=True),
        "451": Code("Stabil kontakt mellem forældre og barn under anbringelsen", sel="52 a stk. 1 nr. 3", public=True),
        "452": Code("Økonomisk støtte til prævention", sel="11 stk. 4 nr. 2", public=True),
    }
)
"""``ForanstaltningKode`` of L201 (see the module docstring for what is public)."""

L231_CODES: Final = CodeList(
    {
        "041": Code("Dækning af merudgifter", sel="41", bl="86"),
        "042": Code("Tabt arbejdsfortjeneste", sel="42", bl="87"),
        "044": Code("Aflastning", sel="52 stk. 3 nr. 5", bl="32"),
        "032": Code("Særlige dagtilbud", sel="32"),
        "036": Code("Særlige klubtilbud", sel="36"),
    }
)
"""``INDSATS_KODE`` of L231 (MODELLED)."""

DEFAULT_CODES: Final[Mapping[Format, CodeList]] = {"l201": L201_CODES, "l231": L231_CODES}


def load_code_list(path: Path | None = None) -> dict[Format, CodeList]:
    """The default code lists, with the entries of a TOML file (``[l201.<code>]``, ``[l231.<code>]``) over them."""
    lists: dict[Format, CodeList] = dict(DEFAULT_CODES)
    if path is None:
        return lists
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the code list: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a TOML code list: {exc}") from None
    for name in data:
        if name not in DEFAULT_CODES:
            raise ConfigError(f"{path}: unknown table [{name}]; use [l201.<code>] or [l231.<code>]")
    for fmt in DEFAULT_CODES:
        extra = data.get(fmt, {})
        if not extra:
            continue
        codes = dict(lists[fmt].codes)
        for code, entry in extra.items():
            if not isinstance(entry, dict) or not (entry.get("SEL") or entry.get("BL")):
                raise ConfigError(f"{path}: [{fmt}.{code}] needs SEL or BL (the paragraph it stands for)")
            codes[str(code)] = Code(str(entry.get("label", code)), sel=entry.get("SEL"), bl=entry.get("BL"))
        lists[fmt] = CodeList(codes)
    return lists
