"""Another quiz attempt for one learner: the instructor's grants, each used by the attempt it
let the learner start.

Revision ID: 0008_quiz_grants
Revises: 0007_sign_in_sessions
Create Date: 2027-02-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_quiz_grants"
down_revision = "0007_sign_in_sessions"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def upgrade() -> None:
    op.create_table(
        "quiz_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False),
        sa.Column("granted_at", UTC, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("quiz_attempts.id"), nullable=True),
    )
    op.create_index("ix_quiz_grants_learner_id", "quiz_grants", ["learner_id"])


def downgrade() -> None:
    op.drop_table("quiz_grants")
