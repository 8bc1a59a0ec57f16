"""Human labelling campaigns: their items, the assignment queue, labels, qualification and
adjudication.

The queue counters on `CampaignItem` (`n_labels`, `n_reserved`) are kept in the same transaction as
the assignment rows they count, so the "is there room on this item?" test reads one locked row.
The unique constraint on (campaign, item, annotator) in `assignments` and `labels` is the last line
of defence against giving a person the same item twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    eval_set_id: Mapped[int] = mapped_column(ForeignKey("eval_sets.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None)
    mode: Mapped[str] = mapped_column(String(20))
    """`response`: label a model's response; `prompt`: label what a response should do."""
    k: Mapped[int] = mapped_column(Integer)
    gold_share: Mapped[float] = mapped_column(Float, default=0.0)
    qualification_n: Mapped[int] = mapped_column(Integer, default=0)
    qualification_threshold: Mapped[float] = mapped_column(Float, default=0.8)
    reservation_seconds: Mapped[int] = mapped_column(Integer, default=1800)
    agreement: Mapped[str] = mapped_column(String(20), default="unanimous")
    max_per_annotator: Mapped[int | None] = mapped_column(Integer, default=None)
    label_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="active")
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CampaignItem(Base):
    """One item (and, in response mode, the response) to label in a campaign."""

    __tablename__ = "campaign_items"
    __table_args__ = (
        UniqueConstraint("campaign_id", "item_id"),
        Index("ix_campaign_items_queue", "campaign_id", "status", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id"), default=None)
    role: Mapped[str] = mapped_column(String(20), default="work")
    """`work`, `gold` (hidden among the work) or `qualification` (the qualification round)."""
    position: Mapped[int] = mapped_column(Integer)
    gold: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    k: Mapped[int] = mapped_column(Integer)
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    n_reserved: Mapped[int] = mapped_column(Integer, default=0)
    n_skips: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="open")
    """`open`, `complete` (agreed, or gold), `adjudication` (waiting) or `adjudicated`."""
    final: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Assignment(Base):
    """An item reserved for one annotator: reserved, then submitted, skipped or expired."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("campaign_id", "item_id", "annotator_id"),
        Index("ix_assignments_annotator", "campaign_id", "annotator_id", "status"),
        Index("ix_assignments_expiry", "campaign_id", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    campaign_item_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_items.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="reserved")
    reserved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    skip_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Label(Base):
    """One annotator's answer on one item."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("campaign_id", "item_id", "annotator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    campaign_item_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_items.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    behavior: Mapped[str | None] = mapped_column(String(20), default=None)
    violation: Mapped[bool | None] = mapped_column(default=None)
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rationale: Mapped[str | None] = mapped_column(Text, default=None)
    confidence: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Qualification(Base):
    """An annotator's qualification round in a campaign: pending until every item is answered."""

    __tablename__ = "qualifications"
    __table_args__ = (UniqueConstraint("campaign_id", "annotator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    n: Mapped[int] = mapped_column(Integer, default=0)
    correct: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Adjudication(Base):
    """The final word on an item the annotators did not agree on, with its reasons."""

    __tablename__ = "adjudications"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    campaign_item_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_items.id", ondelete="CASCADE"), unique=True
    )
    adjudicator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    behavior: Mapped[str | None] = mapped_column(String(20), default=None)
    violation: Mapped[bool | None] = mapped_column(default=None)
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rationale: Mapped[str] = mapped_column(Text)
    policy_ambiguous: Mapped[bool] = mapped_column(default=False)
    ambiguous_rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
