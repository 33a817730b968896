"""case events: the assessment of a notification, and a time of day where the source has one

Revision ID: 0004_event_times
Revises: 0003_audit
Create Date: 2026-12-06 21:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004_event_times"
down_revision: str | None = "0003_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = (
    "notification",
    "investigation_started",
    "investigation_completed",
    "plan_made",
    "follow_up",
    "child_conversation",
    "consent",
    "decision",
    "journal_note",
)
_KINDS_AFTER = (*_KINDS_BEFORE[:1], "notification_assessed", *_KINDS_BEFORE[1:])


def _kinds(kinds: Sequence[str]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def upgrade() -> None:
    # SQLite cannot alter a CHECK constraint in place: batch mode rebuilds the table.
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.drop_constraint("ck_case_events_kind", type_="check")
        batch_op.create_check_constraint("ck_case_events_kind", _kinds(_KINDS_AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM case_events WHERE kind = 'notification_assessed'")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_constraint("ck_case_events_kind", type_="check")
        batch_op.create_check_constraint("ck_case_events_kind", _kinds(_KINDS_BEFORE))
        batch_op.drop_column("occurred_at")
