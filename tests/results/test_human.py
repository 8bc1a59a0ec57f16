"""The human-data summary of a labelling campaign on a run's responses."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from policylab.results import outcomes, summarise_campaign
from policylab.stats.agreement import agreement_report
from policylab.store.results import load_campaigns, load_run


def test_campaign_summary(case_ws: Any, synthetic: Any) -> None:
    ws, policy = case_ws
    synthetic.add_campaign(ws)
    labels = synthetic.CAMPAIGN_LABELS
    with ws.session() as session:
        data, _ = load_run(session, "run-a")
        campaigns = load_campaigns(session, data.info)
    assert [c.name for c in campaigns] == ["gold-1"]
    scored = outcomes(data, policy, grader="rules")
    summary = summarise_campaign(campaigns[0], outcomes=scored, n_boot=200)
    assert (summary.items, summary.labels, summary.annotators, summary.pairable_items) == (
        3,
        6,
        2,
        3,
    )
    long = pd.DataFrame(
        [(i, r, b) for i, (_, b1, b2, _, _) in enumerate(labels) for r, b in ((1, b1), (2, b2))],
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
