"""Each assignment its own quiz: the instructor's grants of another attempt and releases of the
answers name the assignment whose quiz they are (existing rows: "", the default one's).

Revision ID: 0010_quiz_per_assignment
Revises: 0009_assignments
Create Date: 2027-02-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_quiz_per_assignment"
down_revision = "0009_assignments"
branch_labels = None
depends_on = None

TABLES = ("quiz_grants", "quiz_releases")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("assignment", sa.String(200), nullable=False, server_default="")
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("assignment")
