"""Practice quiz attempts (``quiz serve``: no sign-in, never graded) beside the graded ones.

Revision ID: 0004_quiz_practice
Revises: 0003_overrides
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_quiz_practice"
down_revision = "0003_overrides"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "quiz_attempts",
        sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("quiz_attempts") as batch:
        batch.drop_column("practice")
