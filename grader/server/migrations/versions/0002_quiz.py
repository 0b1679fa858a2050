"""The graded quiz in the course server: attempts of signed-in learners and the answer release.

Revision ID: 0002_quiz
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_quiz"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def upgrade() -> None:
    op.create_table(
        "quiz_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("bank", sa.String(64), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("deadline_at", UTC, nullable=True),
        sa.Column("submitted_at", UTC, nullable=True),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.UniqueConstraint("learner_id", "number"),
    )
    op.create_index("ix_quiz_attempts_learner_id", "quiz_attempts", ["learner_id"])
    op.create_table(
        "quiz_releases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("released_at", UTC, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quiz_releases")
    op.drop_table("quiz_attempts")
