"""LTI 1.3: platform registrations and deployments, the tool's keys, OIDC login values and used
nonces, the platforms' users, contexts and line items, and the outbox of scores to post.

Revision ID: 0005_lti
Revises: 0004_quiz_practice
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_lti"
down_revision = "0004_quiz_practice"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # grader.server.models.UTCDateTime: naive UTC on SQLite


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False)


def _ref(name: str, target: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target), nullable=nullable)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTC, nullable=nullable)


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "lti_platforms",
        _id(),
        _text("issuer", 500),
        _text("client_id", 200),
        _text("auth_login_url", 1000),
        _text("auth_token_url", 1000),
        _text("key_set_url", 1000),
        _text("auth_audience", 1000),
        _at("created_at"),
        sa.UniqueConstraint("issuer", "client_id"),
    )
    op.create_table(
        "lti_deployments",
        _id(),
        _ref("platform_id", "lti_platforms.id"),
        _text("deployment_id", 200),
        _at("created_at"),
        sa.UniqueConstraint("platform_id", "deployment_id"),
    )
    _index("lti_deployments", "platform_id")
    op.create_table(
        "lti_keys",
        _id(),
        sa.Column("kid", sa.String(64), nullable=False, unique=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        _at("created_at"),
        _at("retired_at", nullable=True),
    )
    op.create_table(
        "lti_launch_values",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        _at("expires_at"),
    )
    _index("lti_launch_values", "expires_at")
    op.create_table(
        "lti_used_nonces",
        _id(),
        _ref("platform_id", "lti_platforms.id"),
        _text("nonce", 200),
        _at("used_at"),
        sa.UniqueConstraint("platform_id", "nonce"),
    )
    _index("lti_used_nonces", "used_at")
    op.create_table(
        "lti_users",
        _id(),
        _ref("platform_id", "lti_platforms.id"),
        _text("sub", 255),
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=True),
        _ref("token_id", "tokens.id", nullable=True),
        _text("name", 200),
        _text("email", 320),
        _at("created_at"),
        _at("last_launch_at", nullable=True),
        sa.UniqueConstraint("platform_id", "sub"),
    )
    _index("lti_users", "platform_id", "learner_id")
    op.create_table(
        "lti_contexts",
        _id(),
        _ref("platform_id", "lti_platforms.id"),
        _text("deployment_id", 200),
        _text("context_id", 255),
        _text("title", 500),
        _text("lineitems_url", 1000),
        sa.Column("ags_scopes", sa.JSON(), nullable=False),
        _text("memberships_url", 1000),
        _at("synced_at", nullable=True),
        sa.UniqueConstraint("platform_id", "context_id"),
    )
    _index("lti_contexts", "platform_id")
    op.create_table(
        "lti_members",
        _id(),
        _ref("context_pk", "lti_contexts.id"),
        _ref("user_pk", "lti_users.id"),
        sa.UniqueConstraint("context_pk", "user_pk"),
    )
    _index("lti_members", "context_pk", "user_pk")
    op.create_table(
        "lti_line_items",
        _id(),
        _ref("context_pk", "lti_contexts.id"),
        _text("item", 200),
        _text("resource_link_id", 255),
        _text("url", 1000),
        sa.UniqueConstraint("context_pk", "item"),
    )
    _index("lti_line_items", "context_pk")
    op.create_table(
        "lti_score_posts",
        _id(),
        _ref("line_item_pk", "lti_line_items.id"),
        _ref("user_pk", "lti_users.id"),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        _text("status", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        sa.Column("error", sa.Text(), nullable=False),
        _at("created_at"),
        _at("posted_at", nullable=True),
    )
    _index("lti_score_posts", "line_item_pk", "user_pk", "status")
    op.create_table(
        "lti_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "lti_cursors",
        "lti_score_posts",
        "lti_line_items",
        "lti_members",
        "lti_contexts",
        "lti_users",
        "lti_used_nonces",
        "lti_launch_values",
        "lti_keys",
        "lti_deployments",
        "lti_platforms",
    ):
        op.drop_table(table)
