"""Each quiz numbers its own attempts: a learner's first attempt at a second assignment's quiz is
attempt 1, not the count of every quiz's attempts plus one. The uniqueness rule becomes learner,
quiz (the attempt's assignment) and number; the numbers already stored stay as they are (they are
unique under the new rule too).

Revision ID: 0011_quiz_attempt_numbers
Revises: 0010_quiz_per_assignment
Create Date: 2027-02-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_quiz_attempt_numbers"
down_revision = "0010_quiz_per_assignment"
branch_labels = None
depends_on = None

TABLE = "quiz_attempts"
NEW = "uq_quiz_attempts_learner_quiz_number"
# SQLite reflects the first revision's unnamed constraint without a name: batch mode names it so
# it can be dropped; PostgreSQL reports the name it gave it
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _constraint_on(columns: list[str]) -> str:
    for found in sa.inspect(op.get_bind()).get_unique_constraints(TABLE):
        if sorted(found["column_names"]) == sorted(columns):
            return found["name"] or f"uq_{TABLE}_{'_'.join(found['column_names'])}"  # NAMING's
    raise LookupError(f"{TABLE}: no unique constraint on {columns}")


def upgrade() -> None:
    old = _constraint_on(["learner_id", "number"])
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(NEW, ["learner_id", "assignment", "number"])


def downgrade() -> None:
    # attempts numbered per quiz may repeat a number across quizzes: renumber per learner first
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(f"SELECT id, learner_id FROM {TABLE} ORDER BY learner_id, started_at, id")
    ).all()
    counts: dict[str, int] = {}
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.drop_constraint(NEW, type_="unique")
    for row_id, learner in rows:
        counts[learner] = counts.get(learner, 0) + 1
        bind.execute(
            sa.text(f"UPDATE {TABLE} SET number = :n WHERE id = :id"),
            {"n": counts[learner], "id": row_id},
        )
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.create_unique_constraint(
            "uq_quiz_attempts_learner_id_number", ["learner_id", "number"]
        )
