"""Stored policy versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class PolicyVersion(Base):
    """One version of a policy, as it was added: merged content, its hash, and the source files."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "content_hash"),
        UniqueConstraint("policy_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(80))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    sources: Mapped[dict[str, str]] = mapped_column(JSONType)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    added_by: Mapped[str | None] = mapped_column(String(200), default=None)
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
