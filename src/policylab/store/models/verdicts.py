"""Verdicts of graders, with their provenance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class VerdictRecord(Base):
    """A grader's verdict on one response. `error` set means no behaviour: never counted as safe."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True, default=None
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True, default=None
    )
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), default=None
    )
    grader_id: Mapped[str] = mapped_column(String(200), index=True)
    grader_version: Mapped[str] = mapped_column(String(100))
    policy_id: Mapped[str | None] = mapped_column(String(200), default=None)
    policy_hash: Mapped[str | None] = mapped_column(String(80), default=None)
    behavior: Mapped[str | None] = mapped_column(String(20), default=None)
    violation: Mapped[bool | None] = mapped_column(default=None)
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    rationale: Mapped[str | None] = mapped_column(Text, default=None)
    raw_output: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
