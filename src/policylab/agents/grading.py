"""An agent run in the workspace: its transcripts as samples, their action verdicts, and the
outcomes the results layer reads.

A response of an agent run stores the agent's whole episode as its messages (see `loop`); here it
becomes a `Sample` whose request is the item's conversation and whose `metadata["transcript"]` is
that episode, with the item's categories and listed rules, so the `actions` grader sees
everything the agent did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from policylab.chat import ChatMessage
from policylab.graders.actions import ActionGrader, conversation_of
from policylab.policy.loader import LoadedPolicy
from policylab.policy.schema import Policy
from policylab.results.actions import TranscriptOutcome
from policylab.store.models import Item, PolicyVersion, Response, Run, VerdictRecord
from policylab.store.policies import add_policy_version
from policylab.store.verdicts import RunSample, delete_verdicts, run_sample, save_verdicts

__all__ = [
    "GradeCounts",
    "conversations",
    "grade_agent_run",
    "link_policy",
    "transcript_outcomes",
    "transcript_samples",
]


@dataclass(frozen=True)
class GradeCounts:
    graded: int
    failed: int
    """Transcripts the agent did not finish (the model failed): no verdict, counted as errors."""


def link_policy(session: Session, run: Run, loaded: LoadedPolicy) -> PolicyVersion:
    """Store the policy version (if new) and link the run to it."""
    row, _ = add_policy_version(session, loaded)
    run.policy_version_id = row.id
    session.flush()
    return row


def transcript_samples(session: Session, run: Run) -> tuple[list[RunSample], int]:
    """The run's finished transcripts as samples, and how many failed (no transcript)."""
    rows = session.execute(
        select(Item, Response)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id)
        .order_by(Item.id)
    ).all()
    samples = [
        RunSample(run_sample(item, response), response.id, item.id)
        for item, response in rows
        if response.error is None
    ]
    return samples, len(rows) - len(samples)


def grade_agent_run(session: Session, run: Run, policy: Policy) -> GradeCounts:
    """Replace the run's `actions` verdicts with new ones against `policy`."""
    grader = ActionGrader(policy)
    samples, failed = transcript_samples(session, run)
    delete_verdicts(session, run, grader_id=grader.id)
    verdicts = grader.grade([rs.sample for rs in samples])
    saved = save_verdicts(session, run, list(zip(samples, verdicts, strict=True)), grader=grader)
    return GradeCounts(graded=saved, failed=failed)


def transcript_outcomes(session: Session, run: Run) -> list[TranscriptOutcome]:
    """Every response of the run with its latest `actions` verdict, in item order."""
    latest: dict[int, VerdictRecord] = {}
    for record in session.scalars(
        select(VerdictRecord)
        .where(VerdictRecord.run_id == run.id, VerdictRecord.grader_id == ActionGrader.id)
        .order_by(VerdictRecord.id)
    ):
        if record.response_id is not None:
            latest[record.response_id] = record
    rows = session.execute(
        select(Item, Response)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id)
        .order_by(Item.id)
    ).all()
    out: list[TranscriptOutcome] = []
    for item, response in rows:
        verdict = latest.get(response.id)
        extra: dict[str, Any] = dict(verdict.extra or {}) if verdict else {}
        if response.error is not None:
            error: str | None = f"model: {response.error}"
        elif verdict is None:
            error = "not graded: run `policylab agent grade`"
        else:
            error = verdict.error
        out.append(
            TranscriptOutcome(
                external_id=item.external_id,
                categories=list(item.categories),
                expected=item.expected_behavior,
                rule_ids=list((item.extra or {}).get("rule_ids") or []),
                behavior=verdict.behavior if verdict and error is None else None,
                error=error,
                extra=extra,
            )
        )
    return out


def conversations(session: Session, run: Run, ids: set[str]) -> dict[str, list[ChatMessage]]:
    """The whole conversation (request, then the agent's episode) of the given transcripts."""
    rows = session.execute(
        select(Item, Response)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id, Item.external_id.in_(sorted(ids)))
    ).all()
    out: dict[str, list[ChatMessage]] = {}
    for item, response in rows:
        out[item.external_id] = conversation_of(run_sample(item, response))
    return out
