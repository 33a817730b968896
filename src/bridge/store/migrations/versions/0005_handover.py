"""handover decisions

Revision ID: 0005_handover
Revises: 0004_event_times
Create Date: 2026-12-06 21:13:05.457851
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005_handover"
down_revision: str | None = "0004_event_times"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handover_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caseworker_id", sa.Integer(), nullable=False),
        sa.Column("caseworker_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["caseworker_id"],
            ["caseworkers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "handover_moves",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("case_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("receiver_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(["decision_id"], ["handover_decisions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["receiver_id"],
            ["caseworkers.id"],
        ),
        sa.PrimaryKeyConstraint("decision_id", "case_id"),
    )


def downgrade() -> None:
    op.drop_table("handover_moves")
    op.drop_table("handover_decisions")
