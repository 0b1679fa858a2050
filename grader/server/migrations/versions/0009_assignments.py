"""Several assignments on one server: submissions and quiz attempts name their assignment
(existing rows: "", the course's default one), and the instructor's per-learner extensions.

Revision ID: 0009_assignments
Revises: 0008_quiz_grants
Create Date: 2027-02-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_assignments"
down_revision = "0008_quiz_grants"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def upgrade() -> None:
    for table in ("submissions", "quiz_attempts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("assignment", sa.String(200), nullable=False, server_default="")
            )
    op.create_index("ix_submissions_assignment", "submissions", ["assignment"])
    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False),
        sa.Column("assignment", sa.String(200), nullable=False),
        sa.Column("deadline", UTC, nullable=True),
        sa.Column("extra_per_day", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_extensions_learner_id", "extensions", ["learner_id"])


def downgrade() -> None:
    op.drop_table("extensions")
    op.drop_index("ix_submissions_assignment", "submissions")
    for table in ("submissions", "quiz_attempts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("assignment")
