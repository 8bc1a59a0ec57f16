"""graders: grader_validations (agreement of a grader with a gold set)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "grader_validations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grader_id", sa.String(length=200), nullable=False),
        sa.Column("grader_version", sa.String(length=100), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("policy_id", sa.String(length=200), nullable=True),
        sa.Column("policy_hash", sa.String(length=80), nullable=True),
        sa.Column("gold_name", sa.String(length=300), nullable=False),
        sa.Column("gold_hash", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grader_validations")),
    )
    op.create_index(
        "ix_grader_validations_grader",
        "grader_validations",
        ["grader_id", "grader_version"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_grader_validations_grader", table_name="grader_validations")
    op.drop_table("grader_validations")
