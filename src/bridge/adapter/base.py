"""The Adapter base: what a source-system plugin implements.

An adapter knows one wire format and nothing about the store. It is built from its
pydantic ``Config`` (secrets as ``SecretStr``) and a :class:`SourceContext`, and yields
:class:`Batch` es: validated records, rejections with reasons, and the cursor to resume
after the batch. The sync engine commits each batch with its cursor in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from bridge.model.records import CaseRecord
from bridge.privacy import Pseudonymizer


class AdapterConfig(BaseModel):
    """Base of every adapter's ``Config``. Unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


INCOMPLETE = "incomplete: "
"""How the reason of a record the source did not deliver whole begins (see :meth:`Rejection.incomplete`)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the source sent that could not be accepted.

    ``payload`` is the raw text as received, so the record can be replayed once the
    cause is fixed. ``reason`` must not contain person data.
    """

    source_ref: str | None
    reason: str
    payload: str

    @classmethod
    def incomplete(cls, source_ref: str, reason: str, payload: str) -> Rejection:
        """A case the source did not deliver whole (a part failed, or the answer was unreadable).

        Such a case is not stored without its parts: it is quarantined with this marker, and the
        next sync and ``bridge quarantine replay`` ask the adapter's :meth:`Adapter.refetch` for
        it again instead of parsing the partial payload.
        """
        return cls(source_ref, INCOMPLETE + reason, payload)

    @property
    def is_incomplete(self) -> bool:
        return self.reason.startswith(INCOMPLETE)


@dataclass(frozen=True, slots=True)
class Kept:
    """Children of a case that keep their stored version when the case is written (the source sent them broken)."""

    measures: frozenset[str] = frozenset()
    """References of measures whose stored row stays as it is."""
    events: frozenset[str] = frozenset()
    """References of events whose stored row stays as it is."""
    assessments: bool = False
    """Every stored assessment of the case stays as it is, and the record's are not written: the
    store has no reference for a single assessment to keep."""


@dataclass(slots=True)
class Batch:
    """Records and rejections, plus the cursor that resumes *after* them."""

    records: list[CaseRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    cursor: str | None = None
    expected: int | None = None
    """How many records this fetch yields in all, when the source says (a listing's total); for progress only."""
    deleted: list[str] = field(default_factory=list)
    """References of cases the source says it no longer has: marked deleted (never removed) with the batch."""
    continues: bool = False
    """The next batch belongs to this batch's transaction: nothing commits until a batch without
    ``continues`` ends the group, whose ``cursor`` is then stored. For sources whose unit of change
    (an extract file set) is larger than a batch should be in memory."""
    kept: dict[str, Kept] = field(default_factory=dict)
    """Per case reference, children whose stored version stays when the case is written (see :class:`Kept`)."""
    snapshot: bool = False
    """The records and rejections of this transaction (this batch and those it continues) are every
    case the source has: live cases of the source that are not among them are marked deleted in it."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What core tells an adapter about the source it serves."""

    source: str
    """The source's name in ``bridge.toml`` (e.g. ``odense-sbsys``)."""
    municipality: str
    """Kommunekode, 3 digits."""
    persons: Pseudonymizer
    """Turns CPR numbers into person and family keys; adapters never keep the CPR."""


class Adapter(ABC):
    """Base class of source-system adapters.

    Subclasses set ``name`` (lower case, used in ``bridge.toml``), ``Config`` and a one-line
    ``description``, and register the class through the ``bridge_register_adapters`` hook.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    simulator: ClassVar[str | None] = None
    """``"module:attribute"`` of the :data:`bridge.simulation.SimulatorFactory` that serves the
    synthetic ground truth in this adapter's wire format, or ``None``. Checked when the adapter
    is registered and imported only when a simulator is asked for."""

    def __init__(self, config: AdapterConfig, context: SourceContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def check(self) -> None:
        """Reach the source and authenticate, fetching no data.

        Raises :class:`bridge.errors.AdapterError` (or ``AuthError``) with a message that
        names what failed (host, endpoint) and holds no secret.
        """

    @abstractmethod
    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        """Yield batches of everything changed after ``cursor`` (``None``: everything).

        The cursor of each batch must be safe to resume from once that batch and all
        before it are stored. Memory must stay bounded: yield as you read.
        """

    def refetch(self, source_refs: Sequence[str]) -> Iterator[Batch]:
        """Fetch the named cases again, whatever the cursor says.

        For cases a run could not read completely (quarantined as incomplete) and for
        ``bridge quarantine replay``: the source is asked again rather than the old payload
        re-parsed. Yields batches as :meth:`fetch` does, each with ``cursor=None`` (a refetch
        never moves the cursor). A reference the source no longer has is left out of the
        batches. Adapters that cannot fetch one case by reference leave this as it is.
        """
        raise NotImplementedError(f"the {self.name} adapter cannot fetch single cases again")

    def parse_payload(self, payload: str) -> CaseRecord:
        """Parse one quarantined payload again (``bridge quarantine replay``).

        Raise ``ValueError`` (or a pydantic ``ValidationError``) with the reason if it is
        still not acceptable. Adapters that cannot replay leave this as it is.
        """
        raise NotImplementedError(f"the {self.name} adapter cannot replay quarantined records")

    def close(self) -> None:  # noqa: B027 - optional hook: adapters without connections keep it
        """Release connections. Called once after ``fetch`` is done or abandoned."""
