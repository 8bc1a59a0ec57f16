"""Loading a run's items, responses and verdicts into the frames `policylab.results` works on.

The SQL lives here and only here: `policylab.results` takes the frames and knows nothing of the
database. Frames carry the columns listed in `policylab.results.data` (`RESPONSE_COLUMNS`,
`VERDICT_COLUMNS`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from policylab.errors import PolicylabError
from policylab.policy.schema import Policy
from policylab.results.data import RESPONSE_COLUMNS, VERDICT_COLUMNS, RunData, RunInfo
from policylab.results.human import CampaignData
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
    "load_campaigns",
    "load_responses",
    "load_run",
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
