"""Loading a run's items, responses and verdicts into the frames `policylab.results` works on.

The SQL lives here and only here: `policylab.results` takes the frames and knows nothing of the
database. Frames carry the columns listed in `policylab.results.data` (`RESPONSE_COLUMNS`,
`VERDICT_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import desc, func, or_, select
from sqlalchemy.orm import Session

from policylab.errors import PolicylabError
from policylab.policy.schema import Policy
from policylab.results.data import RESPONSE_COLUMNS, VERDICT_COLUMNS, RunData, RunInfo
from policylab.results.human import CampaignData
from policylab.results.validity import GraderValidity
from policylab.stats.classification import GraderAgreement
from policylab.store.models import (
    Adjudication,
    Campaign,
    CampaignItem,
    EvalSet,
    Item,
    Label,
    PolicyVersion,
    Response,
    Run,
    VerdictRecord,
)
from policylab.store.policies import policy_of
from policylab.store.runs import get_run

__all__ = [
    "Transcript",
    "graders_by_run",
    "load_campaigns",
    "load_responses",
    "load_run",
    "load_transcript",
    "load_validity",
    "load_verdicts",
    "require_policy",
    "run_info",
    "run_policy",
]


def run_info(session: Session, run: Run) -> RunInfo:
    """The run's description: model, eval set, status, items in scope and its policy version."""
    eval_set = session.get(EvalSet, run.eval_set_id)
    # The runner records the scope (`--limit N`: the first N items) in the run's stats.
    limit = run.stats.get("limit") if isinstance(run.stats, dict) else None
    total = int(
        session.scalar(select(func.count(Item.id)).where(Item.eval_set_id == run.eval_set_id)) or 0
    )
    if isinstance(limit, int) and limit > 0:
        total = min(total, limit)
    version = session.get(PolicyVersion, run.policy_version_id) if run.policy_version_id else None
    return RunInfo(
        id=run.id,
        name=run.name,
        model=run.model,
        eval_set=eval_set.name if eval_set else "?",
        status=run.status,
        items_total=total,
        created_at=run.created_at,
        finished_at=run.finished_at,
        policy_id=version.policy_id if version else None,
        policy_version=version.version if version else None,
        policy_hash=version.content_hash if version else None,
    )


def run_policy(session: Session, run: Run) -> Policy | None:
    """The policy version the run is linked to, or None when it has none."""
    if run.policy_version_id is None:
        return None
    row = session.get(PolicyVersion, run.policy_version_id)
    return policy_of(row) if row is not None else None


def load_responses(session: Session, run_id: int, *, with_text: bool = False) -> pd.DataFrame:
    """One row per response of the run with its item (columns `RESPONSE_COLUMNS`).

    `with_text` adds `messages` (the request) and `response_text`, for transcripts and appendices.
    """
    columns: list[Any] = [
        Item.id,
        Item.external_id,
        Item.categories,
        Item.expected_behavior,
        Item.source,
        Item.tags,
        Response.id,
        Response.error,
    ]
    if with_text:
        columns += [Item.messages, Response.text]
    query = (
        select(*columns)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run_id)
        .order_by(Item.id)
    )
    names = list(RESPONSE_COLUMNS) + (["messages", "response_text"] if with_text else [])
    rows = session.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=names).astype(
        {"item_expected": object, "response_error": object}
    )


def load_verdicts(session: Session, run_id: int) -> pd.DataFrame:
    """Every verdict on the run's responses, from every grader (columns `VERDICT_COLUMNS`, plus
    `item_id`, `policy_id`, `policy_hash`, `created_at`).

    A verdict stored with a run and item but no response id is matched to the run's response for
    that item.
    """
    v = VerdictRecord
    query = (
        select(
            v.id,
            func.coalesce(v.response_id, Response.id),
            v.grader_id,
            v.grader_version,
            v.behavior,
            v.violation,
            v.category,
            v.rule_ids,
            v.confidence,
            v.rationale,
            v.error,
            func.coalesce(v.item_id, Response.item_id),
            v.policy_id,
            v.policy_hash,
            v.created_at,
        )
        .join(
            Response,
            or_(
                Response.id == v.response_id,
                (v.response_id.is_(None)) & (Response.item_id == v.item_id),
            ),
        )
        .where(Response.run_id == run_id, or_(v.run_id.is_(None), v.run_id == run_id))
        .order_by(v.id)
    )
    names = [*VERDICT_COLUMNS, "item_id", "policy_id", "policy_hash", "created_at"]
    rows = session.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=names).astype(
        {"behavior": object, "error": object, "violation": object, "confidence": object}
    )


def load_run(
    session: Session, name: str, *, with_text: bool = False
) -> tuple[RunData, Policy | None]:
    """The run called `name` as frames, and the policy version it is linked to (None if none)."""
    run = get_run(session, name)
    data = RunData(
        info=run_info(session, run),
        responses=load_responses(session, run.id, with_text=with_text),
        verdicts=load_verdicts(session, run.id),
    )
    return data, run_policy(session, run)


def require_policy(policy: Policy | None, run_name: str) -> Policy:
    """`policy`, or an error saying how to give one."""
    if policy is None:
        raise PolicylabError(
            f"run {run_name!r} is not linked to a stored policy version",
            hint="pass --policy FILE (the policy the run should be measured against)",
        )
    return policy


def load_campaigns(session: Session, info: RunInfo) -> list[CampaignData]:
    """Labelling campaigns on this run's responses, or on its eval set's prompts, oldest first."""
    run = session.get(Run, info.id)
    if run is None:
        return []
    campaigns = session.scalars(
        select(Campaign)
        .where(
            or_(
                Campaign.run_id == run.id,
                (Campaign.run_id.is_(None)) & (Campaign.eval_set_id == run.eval_set_id),
            )
        )
        .order_by(Campaign.id)
    ).all()
    out = []
    for c in campaigns:
        labels = session.execute(
            select(Label.campaign_item_id, Label.annotator_id, Label.behavior).where(
                Label.campaign_id == c.id
            )
        ).all()
        items = session.execute(
            select(
                CampaignItem.id,
                CampaignItem.item_id,
                CampaignItem.response_id,
                CampaignItem.role,
                CampaignItem.status,
                CampaignItem.final,
            ).where(CampaignItem.campaign_id == c.id)
        ).all()
        adjudications = session.execute(
            select(
                Adjudication.campaign_item_id,
                Adjudication.behavior,
                Adjudication.policy_ambiguous,
                Adjudication.ambiguous_rule_ids,
            ).where(Adjudication.campaign_id == c.id)
        ).all()
        out.append(
            CampaignData(
                name=c.name,
                mode=c.mode,
                status=c.status,
                run_id=c.run_id,
                labels=_frame(labels, ["campaign_item_id", "annotator_id", "behavior"]),
                items=_frame(
                    items, ["campaign_item_id", "item_id", "response_id", "role", "status", "final"]
                ),
                adjudications=_frame(
                    adjudications,
                    ["campaign_item_id", "behavior", "policy_ambiguous", "ambiguous_rule_ids"],
                ),
            )
        )
    return out


def _frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns).astype(object)


def load_validity(session: Session, run_id: int, grader_id: str | None) -> GraderValidity:
    """What is known about `grader_id` as it graded this run: its latest stored validation.

    The version (and configuration hash) is read from the grader's newest verdict on the run; a
    validation of the same configuration is preferred, else any of the same version. None found:
    the agreement is unknown, and the report says so.
    """
    if grader_id is None:
        return GraderValidity(grader_id=None)
    newest = session.execute(
        select(VerdictRecord.grader_version, VerdictRecord.extra)
        .where(VerdictRecord.run_id == run_id, VerdictRecord.grader_id == grader_id)
        .order_by(desc(VerdictRecord.id))
        .limit(1)
    ).first()
    if newest is None:
        return GraderValidity(grader_id=grader_id)
    version, extra = newest
    # Imported here: store.verdicts brings in every grader (about 1.5 s), needed only now.
    from policylab.store.verdicts import latest_validation

    config = extra.get("config_hash") if isinstance(extra, dict) else None
    row = None
    if isinstance(config, str):
        row = latest_validation(session, grader_id, version, config_hash=config)
    if row is None:
        row = latest_validation(session, grader_id, version)
    if row is None:
        return GraderValidity(grader_id=grader_id, grader_version=version)
    return GraderValidity(
        grader_id=grader_id,
        grader_version=version,
        agreement=_agreement(row.metrics, row.id),
        gold=row.gold_name,
        validated_version=row.grader_version,
        validated_at=row.created_at,
    )


def _agreement(metrics: dict[str, Any], row_id: int) -> GraderAgreement:
    """A stored `GraderAgreement` (saved as JSON, NaN as null) read back."""
    try:
        return GraderAgreement.model_validate(_nan_for_null(metrics))
    except ValidationError as exc:
        raise PolicylabError(
            f"grader validation {row_id} in the workspace is not a readable agreement record: "
            f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            hint="validate the grader again with `policylab validate GRADER --gold FILE`",
        ) from exc


_FLOAT_FIELDS = {"rate", "low", "high", "cohen_kappa", "precision", "recall", "f1"}


def _nan_for_null(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _nan_for_null(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    if value is None and key in _FLOAT_FIELDS:
        return float("nan")
    return value


def graders_by_run(session: Session) -> dict[int, dict[str, int]]:
    """For each run, its graders and how many responses each judged."""
    rows = session.execute(
        select(
            VerdictRecord.run_id,
            VerdictRecord.grader_id,
            func.count(func.distinct(VerdictRecord.response_id)),
        )
        .where(VerdictRecord.run_id.is_not(None))
        .group_by(VerdictRecord.run_id, VerdictRecord.grader_id)
    ).all()
    out: dict[int, dict[str, int]] = {}
    for run_id, grader_id, n in rows:
        if run_id is not None:
            out.setdefault(run_id, {})[str(grader_id)] = int(n)
    return out


@dataclass(frozen=True)
class Transcript:
    """One item of a run: the request, the response and every grader's verdicts on it."""

    info: RunInfo
    policy_version_id: int | None
    item_id: int
    external_id: str
    messages: list[dict[str, Any]]
    categories: list[str]
    item_expected: str | None
    source: str | None
    tags: list[str]
    response_text: str | None
    response_error: str | None
    verdicts: pd.DataFrame
    """`VERDICT_COLUMNS` plus `policy_id, policy_hash, created_at`, newest first."""


def load_transcript(session: Session, run_name: str, external_id: str) -> Transcript:
    """The item `external_id` of run `run_name`, with its response and verdicts."""
    run = get_run(session, run_name)
    found = session.execute(
        select(Item, Response)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id, Item.external_id == external_id)
    ).first()
    if found is None:
        raise PolicylabError(
            f"run {run_name!r} has no response to item {external_id!r}",
            hint="pick an item from the run's results",
        )
    item, response = found
    v = VerdictRecord
    rows = session.execute(
        select(
            v.id,
            v.response_id,
            v.grader_id,
            v.grader_version,
            v.behavior,
            v.violation,
            v.category,
            v.rule_ids,
            v.confidence,
            v.rationale,
            v.error,
            v.policy_id,
            v.policy_hash,
            v.created_at,
        )
        .where(v.response_id == response.id)
        .order_by(v.id.desc())
    ).all()
    columns = [*VERDICT_COLUMNS, "policy_id", "policy_hash", "created_at"]
    return Transcript(
        info=run_info(session, run),
        policy_version_id=run.policy_version_id,
        item_id=item.id,
        external_id=item.external_id,
        messages=list(item.messages),
        categories=list(item.categories or []),
        item_expected=item.expected_behavior,
        source=item.source,
        tags=list(item.tags or []),
        response_text=response.text,
        response_error=response.error,
        verdicts=pd.DataFrame([tuple(r) for r in rows], columns=columns).astype(object),
    )
