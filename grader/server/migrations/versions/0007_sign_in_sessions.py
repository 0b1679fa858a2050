"""Server-side sign-in sessions: signing out ends a session on the server, not only its cookie.

Revision ID: 0007_sign_in_sessions
Revises: 0006_submission_filename
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sign_in_sessions"
down_revision = "0006_submission_filename"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def upgrade() -> None:
    op.create_table(
        "sign_in_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
    )
    op.create_index("ix_sign_in_sessions_token_id", "sign_in_sessions", ["token_id"])


def downgrade() -> None:
    op.drop_table("sign_in_sessions")
