"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 03:17:38.154804
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "municipalities",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "sync_locks",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("acquired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cursor_before", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("cursor_after", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_runs_source"), ["source"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "caseworkers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("municipality", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["municipality"],
            ["municipalities.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_ref"),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("resolved_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_source"), ["source"], unique=False)
        batch_op.create_index("ix_quarantine_source_ref", ["source", "source_ref"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("municipality", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("child_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("child_birth_date", sa.Date(), nullable=False),
        sa.Column("child_sex", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
        sa.Column("child_cpr", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("family_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("family_case_number", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("caseworker_id", sa.Integer(), nullable=True),
        sa.Column("case_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kle", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("target_group", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("opened", sa.Date(), nullable=False),
        sa.Column("closed", sa.Date(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_modified", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("synced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("changed_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_cases_status"),
        sa.CheckConstraint("target_group IN ('udsatte', 'handicap')", name="ck_cases_target_group"),
        sa.CheckConstraint("closed IS NULL OR closed >= opened", name="ck_cases_closed_after_opened"),
        sa.ForeignKeyConstraint(
            ["caseworker_id"],
            ["caseworkers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality"],
            ["municipalities.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_ref"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_caseworker_id"), ["caseworker_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_child_key"), ["child_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_family_key"), ["family_key"], unique=False)
        batch_op.create_index("ix_cases_municipality_status", ["municipality", "status"], unique=False)

    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("theme", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("assessor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.CheckConstraint(
            "theme IN ('udvikling_adfaerd', 'familieforhold', 'skole_beskaeftigelse', 'sundhed', 'fritid_venskaber')",
            name="ck_assessments_theme",
        ),
        sa.CheckConstraint("value IS NULL OR value BETWEEN 1 AND 5", name="ck_assessments_value"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_assessments_theme_date", ["theme", "assessed_on"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('notification', 'investigation_started', 'investigation_completed', 'plan_made', 'follow_up', 'child_conversation', 'consent', 'decision', 'journal_note')",
            name="ck_case_events_kind",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_case_events_kind_date", ["kind", "occurred_on"], unique=False)

    op.create_table(
        "measures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("act", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("paragraph", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("has_grant", sa.Boolean(), nullable=False),
        sa.Column("account_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.CheckConstraint("act IN ('SEL', 'BL')", name="ck_measures_act"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measures_case_id"), ["case_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measures_case_id"))

    op.drop_table("measures")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_kind_date")
        batch_op.drop_index(batch_op.f("ix_case_events_case_id"))

    op.drop_table("case_events")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_assessments_theme_date")
        batch_op.drop_index(batch_op.f("ix_assessments_case_id"))

    op.drop_table("assessments")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_municipality_status")
        batch_op.drop_index(batch_op.f("ix_cases_family_key"))
        batch_op.drop_index(batch_op.f("ix_cases_child_key"))
        batch_op.drop_index(batch_op.f("ix_cases_caseworker_id"))

    op.drop_table("cases")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_source_ref")
        batch_op.drop_index(batch_op.f("ix_quarantine_source"))

    op.drop_table("quarantine")
    op.drop_table("caseworkers")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_runs_source"))

    op.drop_table("sync_runs")
    op.drop_table("sync_locks")
    op.drop_table("municipalities")
