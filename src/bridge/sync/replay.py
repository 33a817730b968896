"""Replaying quarantined records once their cause is fixed (``bridge quarantine replay``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select, update

from bridge.adapter import INCOMPLETE
from bridge.config import BridgeConfig
from bridge.errors import BridgeError
from bridge.model.records import CaseRecord, rejection_reason
from bridge.model.tables import QUARANTINE
from bridge.store import Store
from bridge.sync import ledger
from bridge.sync.lifecycle import source_run
from bridge.sync.writer import is_cut, utcnow, write_records


@dataclass(frozen=True)
class ReplayResult:
    run_id: int
    accepted: int
    still_rejected: int


def replay_quarantined(store: Store, config: BridgeConfig, source_name: str, ids: Sequence[int] = ()) -> ReplayResult:
    """Parse unresolved quarantined records of a source again with its adapter.

    Records that now pass are stored (under a run of their own in the ledger, with the lifecycle
    of a sync: lock, abandoned runs closed, failure recorded) and marked resolved; the others keep
    their place with the new reason. A record quarantined as incomplete is not parsed again (its
    payload is what failed): the adapter fetches it anew. A payload kept only as a prefix (it was
    too large) cannot be parsed again and stays as it is.
    """
    source = config.source(source_name)
    adapter = config.build_adapter(source)
    try:
        with source_run(store, source, kind="replay") as handle:
            query = select(
                QUARANTINE.c.id, QUARANTINE.c.source_ref, QUARANTINE.c.reason, QUARANTINE.c.payload,
                QUARANTINE.c.payload_hash,
            ).where(and_(QUARANTINE.c.source == source.name, QUARANTINE.c.resolved_at.is_(None)))  # fmt: skip
            if ids:
                query = query.where(QUARANTINE.c.id.in_(list(ids)))
            with store.transaction() as conn:
                rows = conn.execute(query.order_by(QUARANTINE.c.id)).all()
            accepted: dict[int, CaseRecord] = {}
            reasons: dict[int, str] = {}
            incomplete: dict[str, int] = {}  # ref -> its earliest row; later rows of the ref are resolved with it
            also: dict[str, list[int]] = {}
            for row in rows:
                if _incomplete(row.reason, row.source_ref):
                    also.setdefault(row.source_ref, []).append(row.id)
                    incomplete.setdefault(row.source_ref, row.id)
            resolved_too: list[int] = []
            if incomplete:
                try:
                    batches = list(adapter.refetch(list(incomplete)))
                except NotImplementedError as exc:
                    raise BridgeError(str(exc)) from None
                gone = dict(incomplete)
                for batch in batches:
                    for record in batch.records:
                        accepted[gone.pop(record.source_ref)] = record
                        resolved_too += also[record.source_ref][1:]
                    for rejection in batch.rejections:
                        if rejection.source_ref in gone:
                            reasons[gone.pop(rejection.source_ref)] = rejection.reason
                # The source no longer has these: nothing is left to recover, so they are resolved.
                resolved_too += [row_id for ref in gone for row_id in also[ref]]
            for row in rows:
                if _incomplete(row.reason, row.source_ref):
                    continue
                if is_cut(row.payload, row.payload_hash):
                    continue  # only a prefix was kept: nothing to parse again, the reason stays as it is
                try:
                    accepted[row.id] = adapter.parse_payload(row.payload)
                except NotImplementedError as exc:
                    raise BridgeError(str(exc)) from None
                except ValueError as exc:
                    reasons[row.id] = rejection_reason(exc)
            now = utcnow()
            with store.transaction() as conn:
                counts = write_records(conn, source.name, accepted.values(), run_id=handle.run_id, now=now)
                if accepted or resolved_too:
                    conn.execute(
                        update(QUARANTINE)
                        .where(QUARANTINE.c.id.in_([*accepted, *resolved_too]))
                        .values(resolved_at=now, resolved_run_id=handle.run_id)
                    )
                for row_id, reason in reasons.items():
                    conn.execute(update(QUARANTINE).where(QUARANTINE.c.id == row_id).values(reason=reason))
                counts.quarantined = len(rows) - len(accepted) - len(resolved_too)
                ledger.add_to_run(conn, handle.run_id, fetched=len(rows), counts=counts, cursor=handle.cursor)
            handle.finish(ledger.QUARANTINED if counts.quarantined else ledger.SUCCEEDED)
            return ReplayResult(handle.run_id, len(accepted), counts.quarantined)
    finally:
        adapter.close()


def _incomplete(reason: str, source_ref: str | None) -> bool:
    """Quarantined because the source did not deliver the case whole: fetched again, not parsed."""
    return source_ref is not None and reason.startswith(INCOMPLETE)
