"""Validations of graders against gold labels: what a report cites as a grader's agreement."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class GraderValidation(Base):
    """One measurement of a grader (id, version, configuration) against one gold set."""

    __tablename__ = "grader_validations"
    __table_args__ = (Index("ix_grader_validations_grader", "grader_id", "grader_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grader_id: Mapped[str] = mapped_column(String(200))
    grader_version: Mapped[str] = mapped_column(String(100))
    config_hash: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    policy_id: Mapped[str | None] = mapped_column(String(200), default=None)
    policy_hash: Mapped[str | None] = mapped_column(String(80), default=None)
    gold_name: Mapped[str] = mapped_column(String(300))
    gold_hash: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
