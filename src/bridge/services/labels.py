"""How reports name municipalities and target groups, in Danish."""

from __future__ import annotations

from sqlalchemy import select

from bridge.model.tables import MUNICIPALITIES
from bridge.store import Store

TARGET_GROUP_LABELS = {"udsatte": "Udsatte børn og unge", "handicap": "Børn og unge med handicap"}


def municipality_names(store: Store) -> dict[str, str]:
    """Every municipality the store knows: kommunekode → name."""
    with store.engine.connect() as conn:
        return dict(conn.execute(select(MUNICIPALITIES.c.code, MUNICIPALITIES.c.name)).all())


def municipality_label(code: str, name: str | None) -> str:
    """``Odense (461)``, or the bare code when the store knows no name for it."""
    return f"{name} ({code})" if name and name != code else code


__all__ = ["TARGET_GROUP_LABELS", "municipality_label", "municipality_names"]
