"""audit samples and findings

Revision ID: 0003_audit
Revises: 0001
Create Date: 2026-12-01 01:21:22.537402
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003_audit"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("seed", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("population_size", sa.Integer(), nullable=False),
        sa.Column("population_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("drawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("drawn_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("case_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("case_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.Text(), server_default="", nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("refusion", sa.Boolean(), nullable=False),
        sa.Column("follow_up_due", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('pass', 'fail', 'not_yet_due', 'not_relevant')",
            name="ck_audit_findings_outcome",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["audit_samples.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sample_id", "case_key", "rule", "version"),
    )
    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        batch_op.create_index("ix_audit_findings_case_rule", ["case_key", "rule"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_findings_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "audit_sample_cases",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("case_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("stratum", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["audit_samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sample_id", "case_key"),
    )
    with op.batch_alter_table("audit_sample_cases", schema=None) as batch_op:
        batch_op.create_index("ix_audit_sample_cases_case_key", ["case_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_sample_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_sample_cases_case_key")

    op.drop_table("audit_sample_cases")
    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_findings_sample_id"))
        batch_op.drop_index("ix_audit_findings_case_rule")

    op.drop_table("audit_findings")
    op.drop_table("audit_samples")
