"""The uploaded file's own name beside each submission (its report's header names it).

Revision ID: 0006_submission_filename
Revises: 0005_lti
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_submission_filename"
down_revision = "0005_lti"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("submissions", sa.Column("filename", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("filename")
