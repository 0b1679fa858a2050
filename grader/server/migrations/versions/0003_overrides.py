"""Manual overrides of a check's score or of a submission's total (the instructor's page).

Revision ID: 0003_overrides
Revises: 0002_quiz
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_overrides"
down_revision = "0002_quiz"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def upgrade() -> None:
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("check_name", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_overrides_submission_id", "overrides", ["submission_id"])


def downgrade() -> None:
    op.drop_table("overrides")
