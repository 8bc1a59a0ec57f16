"""monitoring: deployment conversations, grading passes, verdicts, clusters, red-team findings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(
    column: str, target: str, table: str, *, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "monitor_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_monitor_settings")),
    )
    op.create_table(
        "monitor_conversations",
        _id(),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        _when("timestamp"),
        sa.Column("user_hash", sa.String(length=64), nullable=True),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("messages", _json(), nullable=False),
        sa.Column("has_response", sa.Boolean(), nullable=False),
        sa.Column("extra", _json(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        _when("ingested_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_conversations")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_monitor_conversations_source_external_id")
        ),
    )
    with op.batch_alter_table("monitor_conversations") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_conversations_source"), ["source"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitor_conversations_timestamp"), ["timestamp"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitor_conversations_content_hash"), ["content_hash"], unique=False
        )
    op.create_table(
        "monitor_gradings",
        _id(),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("grader", sa.String(length=200), nullable=False),
        sa.Column("grader_version", sa.String(length=100), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("policy_id", sa.String(length=200), nullable=True),
        sa.Column("policy_hash", sa.String(length=80), nullable=True),
        sa.Column("engine", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("stats", _json(), nullable=False),
        _when("created_at"),
        _when("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_gradings")),
        sa.UniqueConstraint("name", name=op.f("uq_monitor_gradings_name")),
    )
    op.create_table(
        "monitor_verdicts",
        _id(),
        sa.Column("grading_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("behavior", sa.String(length=20), nullable=True),
        sa.Column("violation", sa.Boolean(), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("category_similarity", sa.Float(), nullable=True),
        sa.Column("rule_ids", _json(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("grading_id", "monitor_gradings.id", "monitor_verdicts", ondelete="CASCADE"),
        _fk(
            "conversation_id",
            "monitor_conversations.id",
            "monitor_verdicts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_verdicts")),
        sa.UniqueConstraint(
            "grading_id",
            "conversation_id",
            name=op.f("uq_monitor_verdicts_grading_id_conversation_id"),
        ),
    )
    with op.batch_alter_table("monitor_verdicts") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_verdicts_grading_id"), ["grading_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitor_verdicts_conversation_id"), ["conversation_id"], unique=False
        )
    op.create_table(
        "monitor_clusters",
        _id(),
        sa.Column("batch", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("terms", _json(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=True),
        sa.Column("params", _json(), nullable=False),
        sa.Column("grading_id", sa.Integer(), nullable=True),
        _when("created_at"),
        _fk("grading_id", "monitor_gradings.id", "monitor_clusters", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_clusters")),
    )
    with op.batch_alter_table("monitor_clusters") as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_clusters_batch"), ["batch"], unique=False)
    op.create_table(
        "monitor_cluster_members",
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        _fk("cluster_id", "monitor_clusters.id", "monitor_cluster_members", ondelete="CASCADE"),
        _fk(
            "conversation_id",
            "monitor_conversations.id",
            "monitor_cluster_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "cluster_id", "conversation_id", name=op.f("pk_monitor_cluster_members")
        ),
    )
    with op.batch_alter_table("monitor_cluster_members") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_cluster_members_conversation_id"),
            ["conversation_id"],
            unique=False,
        )
    op.create_table(
        "redteam_findings",
        _id(),
        sa.Column("tool", sa.String(length=50), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("messages", _json(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("plugin", sa.String(length=300), nullable=True),
        sa.Column("strategy", sa.String(length=300), nullable=True),
        sa.Column("tool_verdict", sa.String(length=50), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("extra", _json(), nullable=False),
        _when("imported_at"),
        _when("triaged_at", nullable=True),
        sa.Column("triaged_by", sa.String(length=200), nullable=True),
        _fk("duplicate_of", "redteam_findings.id", "redteam_findings", ondelete="SET NULL"),
        _fk("item_id", "items.id", "redteam_findings", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redteam_findings")),
        sa.UniqueConstraint(
            "tool", "external_id", name=op.f("uq_redteam_findings_tool_external_id")
        ),
    )
    with op.batch_alter_table("redteam_findings") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redteam_findings_content_hash"), ["content_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_redteam_findings_status"), ["status"], unique=False)


def downgrade() -> None:
    for table in (
        "redteam_findings",
        "monitor_cluster_members",
        "monitor_clusters",
        "monitor_verdicts",
        "monitor_gradings",
        "monitor_conversations",
        "monitor_settings",
    ):
        op.drop_table(table)
