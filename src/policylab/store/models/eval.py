"""Eval sets, items, runs of target models, and their responses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from policylab.store.models.base import Base, JSONType, utcnow


class EvalSet(Base):
    __tablename__ = "eval_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Item(Base):
    """A prompt or conversation (OpenAI chat format) with its metadata."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("eval_set_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    eval_set_id: Mapped[int] = mapped_column(
        ForeignKey("eval_sets.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(300))
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    expected_behavior: Mapped[str | None] = mapped_column(String(20), default=None)
    source: Mapped[str | None] = mapped_column(String(300), default=None)
    language: Mapped[str | None] = mapped_column(String(20), default=None)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    split: Mapped[str | None] = mapped_column(String(50), default=None)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One target model answering one eval set."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    eval_set_id: Mapped[int] = mapped_column(ForeignKey("eval_sets.id"), index=True)
    model: Mapped[str] = mapped_column(String(300))
    model_config_: Mapped[dict[str, Any]] = mapped_column("model_config", JSONType, default=dict)
    policy_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("policy_versions.id"), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default="created")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Response(Base):
    """A target model's answer to one item in one run (at most one per item and run)."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    finish_reason: Mapped[str | None] = mapped_column(String(50), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    cached: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ResponseCache(Base):
    """Responses keyed by model, sampling parameters and messages, so a paid call is never repeated."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
