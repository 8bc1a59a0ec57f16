"""The human-data summary of a labelling campaign on a run's responses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from policylab.results import outcomes, summarise_campaign
from policylab.stats.agreement import agreement_report
from policylab.store.models import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    Label,
    User,
)
from policylab.store.results import load_campaigns, load_run
from policylab.store.workspace import Workspace

# (external id, annotator 1, annotator 2, final, adjudicated?)
LABELS = [
    ("c1-00", "comply", "comply", "comply", False),
    ("c1-01", "comply", "partial", "partial", True),
    ("c1-03", "refuse", "refuse", "refuse", False),
]


def add_campaign(ws: Workspace, run_name: str = "run-a") -> None:
    """A response-mode campaign on three of run A's responses, two annotators, one adjudication."""
    with ws.session() as session:
        data, _ = load_run(session, run_name)
        responses = data.responses.set_index("external_id")
        users = [User(name=f"ann{i}", password_hash="x", roles=["annotator"]) for i in (1, 2)]
        session.add_all(users)
        session.flush()
        campaign = Campaign(
            name="gold-1",
            policy_version_id=1,
            eval_set_id=1,
            run_id=data.info.id,
            mode="response",
            k=2,
            label_schema={"behavior": True},
        )
        session.add(campaign)
        session.flush()
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        for position, (ext, first, second, final, adjudicated) in enumerate(LABELS):
            row = responses.loc[ext]
            item = CampaignItem(
                campaign_id=campaign.id,
                item_id=int(row["item_id"]),
                response_id=int(row["response_id"]),
                position=position,
                k=2,
                n_labels=2,
                status="adjudicated" if adjudicated else "complete",
                final={"behavior": final},
            )
            session.add(item)
            session.flush()
            for user, behaviour in zip(users, (first, second), strict=True):
                assignment = Assignment(
                    campaign_id=campaign.id,
                    campaign_item_id=item.id,
                    item_id=item.item_id,
                    annotator_id=user.id,
                    status="submitted",
                    expires_at=expires,
                )
                session.add(assignment)
                session.flush()
                session.add(
                    Label(
                        assignment_id=assignment.id,
                        campaign_id=campaign.id,
                        campaign_item_id=item.id,
                        item_id=item.item_id,
                        annotator_id=user.id,
                        behavior=behaviour,
                    )
                )
            if adjudicated:
                session.add(
                    Adjudication(
                        campaign_id=campaign.id,
                        campaign_item_id=item.id,
                        adjudicator_id=users[0].id,
                        behavior=final,
                        rationale="It explains the idea without code.",
                        policy_ambiguous=True,
                        ambiguous_rule_ids=["CYB.1.a"],
                    )
                )


def test_campaign_summary(case_ws: Any) -> None:
    ws, policy = case_ws
    add_campaign(ws)
    with ws.session() as session:
        data, _ = load_run(session, "run-a")
        campaigns = load_campaigns(session, data.info)
    assert [c.name for c in campaigns] == ["gold-1"]
    scored = outcomes(data, policy, grader="rules")
    summary = summarise_campaign(campaigns[0], outcomes=scored, n_boot=200)
    assert (summary.items, summary.labels, summary.annotators, summary.pairable_items) == (3, 6, 2, 3)
    long = pd.DataFrame(
        [(i, r, b) for i, (_, b1, b2, _, _) in enumerate(LABELS) for r, b in ((1, b1), (2, b2))],
        columns=["item", "rater", "value"],
    )
    reference = agreement_report(long, n_boot=200, seed=0)
    assert summary.alpha == pytest.approx(reference.alpha.alpha)
    assert summary.percent_agreement == pytest.approx(2 / 3)
    assert summary.adjudicated == 1
    assert summary.adjudicated_behaviour == {"partial": 1}
    assert summary.ambiguity_by_rule == {"CYB.1.a": 1}
    assert summary.item_status == {"complete": 2, "adjudicated": 1}
    # The rules grader said comply, comply, refuse; the humans' final labels are
    # comply, partial, refuse: 2 of 3.
    assert summary.grader_vs_human is not None
    assert summary.grader_vs_human.accuracy.successes == 2
    assert summary.grader_vs_human.n == 3


def test_no_campaign(case_ws: Any) -> None:
    ws, _ = case_ws
    with ws.session() as session:
        data, _ = load_run(session, "run-b")
        assert load_campaigns(session, data.info) == []
