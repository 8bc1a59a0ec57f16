"""human data: users, campaigns, campaign items, assignments, labels, qualifications, adjudications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, target: str, table: str, *, cascade: bool = False) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column],
        [target],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE" if cascade else None,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("roles", _json(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("last_login_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "campaigns",
        _id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("policy_version_id", sa.Integer(), nullable=False),
        sa.Column("eval_set_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("gold_share", sa.Float(), nullable=False),
        sa.Column("qualification_n", sa.Integer(), nullable=False),
        sa.Column("qualification_threshold", sa.Float(), nullable=False),
        sa.Column("reservation_seconds", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.String(length=20), nullable=False),
        sa.Column("max_per_annotator", sa.Integer(), nullable=True),
        sa.Column("label_schema", _json(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        _when("created_at"),
        _fk("eval_set_id", "eval_sets.id", "campaigns"),
        _fk("policy_version_id", "policy_versions.id", "campaigns"),
        _fk("run_id", "runs.id", "campaigns"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "campaign_items",
        _id(),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("gold", _json(), nullable=True),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("n_reserved", sa.Integer(), nullable=False),
        sa.Column("n_skips", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("final", _json(), nullable=True),
        _when("resolved_at", nullable=True),
        _fk("campaign_id", "campaigns.id", "campaign_items", cascade=True),
        _fk("item_id", "items.id", "campaign_items"),
        _fk("response_id", "responses.id", "campaign_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_items")),
        sa.UniqueConstraint(
            "campaign_id", "item_id", name=op.f("uq_campaign_items_campaign_id_item_id")
        ),
    )
    with op.batch_alter_table("campaign_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_items_queue", ["campaign_id", "status", "position"], unique=False
        )

    op.create_table(
        "qualifications",
        _id(),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        _when("finished_at", nullable=True),
        _fk("annotator_id", "users.id", "qualifications"),
        _fk("campaign_id", "campaigns.id", "qualifications", cascade=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualifications")),
        sa.UniqueConstraint(
            "campaign_id", "annotator_id", name=op.f("uq_qualifications_campaign_id_annotator_id")
        ),
    )
    op.create_table(
        "adjudications",
        _id(),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("campaign_item_id", sa.Integer(), nullable=False),
        sa.Column("adjudicator_id", sa.Integer(), nullable=False),
        sa.Column("behavior", sa.String(length=20), nullable=True),
        sa.Column("violation", sa.Boolean(), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("rule_ids", _json(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("policy_ambiguous", sa.Boolean(), nullable=False),
        sa.Column("ambiguous_rule_ids", _json(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        _when("created_at"),
        _fk("adjudicator_id", "users.id", "adjudications"),
        _fk("campaign_id", "campaigns.id", "adjudications", cascade=True),
        _fk("campaign_item_id", "campaign_items.id", "adjudications", cascade=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjudications")),
        sa.UniqueConstraint("campaign_item_id", name=op.f("uq_adjudications_campaign_item_id")),
    )
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adjudications_campaign_id"), ["campaign_id"], unique=False
        )

    op.create_table(
        "assignments",
        _id(),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("campaign_item_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _when("reserved_at"),
        _when("expires_at"),
        _when("finished_at", nullable=True),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        _fk("annotator_id", "users.id", "assignments"),
        _fk("campaign_id", "campaigns.id", "assignments", cascade=True),
        _fk("campaign_item_id", "campaign_items.id", "assignments", cascade=True),
        _fk("item_id", "items.id", "assignments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "campaign_id",
            "item_id",
            "annotator_id",
            name=op.f("uq_assignments_campaign_id_item_id_annotator_id"),
        ),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assignments_annotator", ["campaign_id", "annotator_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assignments_campaign_item_id"), ["campaign_item_id"], unique=False
        )
        batch_op.create_index(
            "ix_assignments_expiry", ["campaign_id", "status", "expires_at"], unique=False
        )

    op.create_table(
        "labels",
        _id(),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("campaign_item_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("behavior", sa.String(length=20), nullable=True),
        sa.Column("violation", sa.Boolean(), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("rule_ids", _json(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        _when("created_at"),
        _fk("annotator_id", "users.id", "labels"),
        _fk("assignment_id", "assignments.id", "labels", cascade=True),
        _fk("campaign_id", "campaigns.id", "labels", cascade=True),
        _fk("campaign_item_id", "campaign_items.id", "labels", cascade=True),
        _fk("item_id", "items.id", "labels"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("assignment_id", name=op.f("uq_labels_assignment_id")),
        sa.UniqueConstraint(
            "campaign_id",
            "item_id",
            "annotator_id",
            name=op.f("uq_labels_campaign_id_item_id_annotator_id"),
        ),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labels_annotator_id"), ["annotator_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_labels_campaign_item_id"), ["campaign_item_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_campaign_item_id"))
        batch_op.drop_index(batch_op.f("ix_labels_annotator_id"))
    op.drop_table("labels")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_expiry")
        batch_op.drop_index(batch_op.f("ix_assignments_campaign_item_id"))
        batch_op.drop_index("ix_assignments_annotator")
    op.drop_table("assignments")
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjudications_campaign_id"))
    op.drop_table("adjudications")
    op.drop_table("qualifications")
    with op.batch_alter_table("campaign_items", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_items_queue")
    op.drop_table("campaign_items")
    op.drop_table("campaigns")
    op.drop_table("users")
