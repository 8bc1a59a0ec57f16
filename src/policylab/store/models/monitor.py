"""Deployment monitoring: ingested conversations (redacted), grading passes and their verdicts,
discovered clusters, and red-team findings with their triage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class MonitorSetting(Base):
    """Workspace-wide monitoring settings, such as the salt user and session ids are hashed with."""

    __tablename__ = "monitor_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MonitorConversation(Base):
    """One deployment conversation, PII already redacted; user and session ids only as salted
    hashes. `external_id` is unique within its `source`, so re-ingesting a file adds nothing."""

    __tablename__ = "monitor_conversations"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str] = mapped_column(String(300))
    timestamp: Mapped[dt.datetime] = mapped_column(index=True)
    user_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    session_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    model: Mapped[str | None] = mapped_column(String(300), default=None)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    has_response: Mapped[bool] = mapped_column(default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MonitorGrading(Base):
    """One grading pass over deployment conversations: a grader, a policy version, an engine."""

    __tablename__ = "monitor_gradings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    grader: Mapped[str] = mapped_column(String(200))
    grader_version: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    policy_id: Mapped[str | None] = mapped_column(String(200), default=None)
    policy_hash: Mapped[str | None] = mapped_column(String(80), default=None)
    engine: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="running")
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class MonitorVerdict(Base):
    """A grader's verdict on one conversation's last response, with the category it was filed
    under (`category` None: no category fits) and how close that category was."""

    __tablename__ = "monitor_verdicts"
    __table_args__ = (UniqueConstraint("grading_id", "conversation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grading_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_gradings.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_conversations.id", ondelete="CASCADE"), index=True
    )
    behavior: Mapped[str | None] = mapped_column(String(20), default=None)
    violation: Mapped[bool | None] = mapped_column(default=None)
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    category_similarity: Mapped[float | None] = mapped_column(Float, default=None)
    rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    rationale: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class MonitorCluster(Base):
    """A cluster of conversations found by `policylab monitor clusters`, named by its terms."""

    __tablename__ = "monitor_clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(300))
    terms: Mapped[list[str]] = mapped_column(JSONType, default=list)
    size: Mapped[int] = mapped_column(Integer)
    users: Mapped[int | None] = mapped_column(Integer, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    grading_id: Mapped[int | None] = mapped_column(
        ForeignKey("monitor_gradings.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MonitorClusterMember(Base):
    __tablename__ = "monitor_cluster_members"

    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_clusters.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_conversations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    similarity: Mapped[float | None] = mapped_column(Float, default=None)


class RedTeamFinding(Base):
    """A red-team finding imported from promptfoo, garak, PyRIT or a generic file, and its triage.

    `status`: `new`, `duplicate` (of `duplicate_of`), `confirmed` (a real failure against
    `rule_id`; `item_id` is its regression item) or `rejected`.
    """

    __tablename__ = "redteam_findings"
    __table_args__ = (UniqueConstraint("tool", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tool: Mapped[str] = mapped_column(String(50))
    source_file: Mapped[str | None] = mapped_column(Text, default=None)
    external_id: Mapped[str] = mapped_column(String(300))
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    response: Mapped[str | None] = mapped_column(Text, default=None)
    plugin: Mapped[str | None] = mapped_column(String(300), default=None)
    strategy: Mapped[str | None] = mapped_column(String(300), default=None)
    tool_verdict: Mapped[str | None] = mapped_column(String(50), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("redteam_findings.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    rule_id: Mapped[str | None] = mapped_column(String(100), default=None)
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), default=None
    )
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    triaged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    triaged_by: Mapped[str | None] = mapped_column(String(200), default=None)
