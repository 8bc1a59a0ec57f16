"""Verdicts of a stored run: turning responses into samples, saving verdicts, reading them back.

A stored run's responses become `Sample`s whose id is the item's external id (unique within the
eval set, so within the run), with the item's expected behaviour and first category as hints.
Verdicts are saved in bulk with their provenance (grader id, version, parameters and their hash,
policy id and hash); `regrade` replaces one grader's verdicts for a run.

Also here: the workspace's human labels as training rows for the local grader, and the grader
validations a report cites (`latest_validation`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, desc, insert, select
from sqlalchemy.orm import Session

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.graders.base import (
    TRANSCRIPT_KEY,
    Grader,
    Sample,
    Verdict,
    config_hash,
    recorded_params,
)
from policylab.graders.training import TrainingRow
from policylab.store.models import (
    CampaignItem,
    GraderValidation,
    Item,
    Response,
    Run,
    VerdictRecord,
)
from policylab.store.runs import get_run

__all__ = [
    "RunSample",
    "StoredVerdict",
    "delete_verdicts",
    "get_run",
    "latest_validation",
    "regrade",
    "run_samples",
    "save_validation",
    "save_verdicts",
    "verdicts_for_run",
    "workspace_gold_rows",
]


@dataclass(frozen=True)
class RunSample:
    sample: Sample
    response_id: int
    item_id: int


def run_sample(item: Item, response: Response) -> Sample:
    """A stored answer as a grader's sample: the item's conversation, the answer's text, and the
    turns the run recorded (`TRANSCRIPT_KEY`: an agent's tool calls and results, or the answer),
    so that the `actions` grader sees the whole transcript and text graders the final answer."""
    extra = item.extra or {}
    return Sample(
        id=item.external_id,
        messages=[ChatMessage.model_validate(m) for m in item.messages],
        response=response.text or "",
        category=item.categories[0] if item.categories else None,
        expected_behavior=Behavior(item.expected_behavior) if item.expected_behavior else None,
        metadata={
            TRANSCRIPT_KEY: list(response.messages or []),
            "categories": list(item.categories),
            "rule_ids": list(extra.get("rule_ids") or []),
            "response_id": response.id,
            "item_id": item.id,
        },
    )


def run_samples(session: Session, run: Run) -> tuple[list[RunSample], list[Response]]:
    """The run's answered responses as samples, and the responses that failed (no text to grade)."""
    rows = session.execute(
        select(Item, Response)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id)
        .order_by(Response.id)
    ).all()
    ok: list[RunSample] = []
    failed: list[Response] = []
    for item, response in rows:
        if response.error is not None or response.text is None:
            failed.append(response)
            continue
        ok.append(RunSample(run_sample(item, response), response.id, item.id))
    return ok, failed


def save_verdicts(
    session: Session,
    run: Run,
    pairs: Sequence[tuple[RunSample, Verdict]],
    *,
    grader: Grader,
) -> int:
    """Insert the verdicts (one statement for the batch); returns how many were saved."""
    params = recorded_params(grader)
    digest = config_hash(grader)
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    for rs, v in pairs:
        if v.sample_id != rs.sample.id:
            raise PolicylabError(f"verdict for {v.sample_id!r} paired with sample {rs.sample.id!r}")
        extra = {
            **v.extra,
            "config_hash": digest,
            "grader_params": params,
            "probabilities": {b.value: p for b, p in v.probabilities.items()}
            if v.probabilities
            else None,
        }
        rows.append(
            {
                "response_id": rs.response_id,
                "run_id": run.id,
                "item_id": rs.item_id,
                "grader_id": v.grader_id,
                "grader_version": v.grader_version,
                "policy_id": v.policy_id,
                "policy_hash": v.policy_hash,
                "behavior": v.behavior.value if v.behavior else None,
                "violation": v.violation,
                "category": v.category,
                "rule_ids": list(v.rule_ids),
                "confidence": v.confidence,
                "rationale": v.rationale,
                "raw_output": v.raw_output,
                "error": v.error,
                "extra": extra,
                "created_at": now,
            }
        )
    if rows:
        session.execute(insert(VerdictRecord), rows)
    return len(rows)


@dataclass(frozen=True)
class StoredVerdict:
    """A stored verdict joined with its item and response."""

    verdict: VerdictRecord
    item_external_id: str
    messages: list[dict[str, Any]]
    expected_behavior: str | None
    categories: list[str]
    response_text: str | None


def verdicts_for_run(
    session: Session, run: Run, *, grader_id: str | None = None, grader_version: str | None = None
) -> list[StoredVerdict]:
    """The run's verdicts (optionally of one grader), with their items and responses."""
    query = (
        select(VerdictRecord, Item, Response)
        .join(Item, VerdictRecord.item_id == Item.id)
        .join(Response, VerdictRecord.response_id == Response.id)
        .where(VerdictRecord.run_id == run.id)
        .order_by(VerdictRecord.id)
    )
    if grader_id is not None:
        query = query.where(VerdictRecord.grader_id == grader_id)
    if grader_version is not None:
        query = query.where(VerdictRecord.grader_version == grader_version)
    return [
        StoredVerdict(
            verdict=v,
            item_external_id=item.external_id,
            messages=item.messages,
            expected_behavior=item.expected_behavior,
            categories=list(item.categories),
            response_text=response.text,
        )
        for v, item, response in session.execute(query).all()
    ]


def delete_verdicts(
    session: Session, run: Run, *, grader_id: str | None = None, grader_version: str | None = None
) -> int:
    """Delete the run's verdicts (of one grader, or one grader version); returns how many."""
    stmt = delete(VerdictRecord).where(VerdictRecord.run_id == run.id)
    if grader_id is not None:
        stmt = stmt.where(VerdictRecord.grader_id == grader_id)
    if grader_version is not None:
        stmt = stmt.where(VerdictRecord.grader_version == grader_version)
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


def regrade(
    session: Session,
    run: Run,
    grader: Grader,
    *,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Replace `grader`'s verdicts on the run: (verdicts saved, failed responses left ungraded).

    Responses that failed in the run have no text and get no verdict; their count is returned so
    the caller can say so.
    """
    samples, failed = run_samples(session, run)
    delete_verdicts(session, run, grader_id=grader.id)
    saved = 0
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        verdicts = grader.grade([rs.sample for rs in batch])
        saved += save_verdicts(session, run, list(zip(batch, verdicts, strict=True)), grader=grader)
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))
    return saved, len(failed)


# -- human labels as training data ------------------------------------------------------------


def workspace_gold_rows(session: Session) -> list[TrainingRow]:
    """Human behaviour labels on stored responses, as training rows for the local grader.

    Two sources: campaign items whose final (agreed or adjudicated) label or gold answer gives a
    behaviour, and verdicts recorded under the grader id `human`.
    """
    out: list[TrainingRow] = []
    seen: set[int] = set()
    rows = session.execute(
        select(CampaignItem, Item, Response)
        .join(Item, CampaignItem.item_id == Item.id)
        .join(Response, CampaignItem.response_id == Response.id)
        .order_by(CampaignItem.id)
    ).all()
    for ci, item, response in rows:
        label = (ci.final or {}).get("behavior") or (ci.gold or {}).get("behavior")
        if label not in {b.value for b in Behavior} or response.text is None or response.id in seen:
            continue
        seen.add(response.id)
        out.append(_gold_row(f"campaign:{ci.campaign_id}", item, response, Behavior(label)))
    humans = session.execute(
        select(VerdictRecord, Item, Response)
        .join(Item, VerdictRecord.item_id == Item.id)
        .join(Response, VerdictRecord.response_id == Response.id)
        .where(VerdictRecord.grader_id == "human", VerdictRecord.behavior.is_not(None))
        .order_by(VerdictRecord.id)
    ).all()
    for v, item, response in humans:
        if response.text is None or response.id in seen or v.behavior is None:
            continue
        seen.add(response.id)
        out.append(_gold_row("human", item, response, Behavior(v.behavior)))
    return out


def _gold_row(source: str, item: Item, response: Response, behavior: Behavior) -> TrainingRow:
    sample = run_sample(item, response)
    return TrainingRow(
        id=f"response:{response.id}",
        request=sample.request_text,
        response=response.text or "",
        behavior=behavior,
        source=f"gold:{source}",
        group=f"gold:{source}",
        category=sample.category,
    )


# -- validations -----------------------------------------------------------------------------


def save_validation(
    session: Session,
    *,
    grader: Grader,
    policy_id: str | None,
    policy_hash: str | None,
    gold_name: str,
    gold_hash: str,
    n: int,
    metrics: dict[str, Any],
) -> GraderValidation:
    row = GraderValidation(
        grader_id=grader.id,
        grader_version=grader.version,
        config_hash=config_hash(grader),
        config=recorded_params(grader),
        policy_id=policy_id,
        policy_hash=policy_hash,
        gold_name=gold_name,
        gold_hash=gold_hash,
        n=n,
        metrics=metrics,
    )
    session.add(row)
    session.flush()
    return row


def latest_validation(
    session: Session,
    grader_id: str,
    version: str,
    *,
    config_hash: str | None = None,
    policy_hash: str | None = None,
) -> GraderValidation | None:
    """The newest validation of this grader and version (optionally of one configuration and
    policy), or None: then a report must say the grader's agreement is unknown."""
    query = select(GraderValidation).where(
        GraderValidation.grader_id == grader_id, GraderValidation.grader_version == version
    )
    if config_hash is not None:
        query = query.where(GraderValidation.config_hash == config_hash)
    if policy_hash is not None:
        query = query.where(GraderValidation.policy_hash == policy_hash)
    return session.scalars(
        query.order_by(desc(GraderValidation.created_at), desc(GraderValidation.id))
    ).first()
