"""Human labelling campaigns on a run's items, summarised for the report.

For each campaign: how far the annotators agree on behaviour labels (Krippendorff's alpha with its
bootstrap interval, Fleiss' kappa, percent agreement, from `stats.agreement`), what adjudication
decided, which rules adjudicators flagged as ambiguous, and, when the campaign labelled this run's
responses, how often the run's grader agrees with the humans' final label (`stats.classification`).

The frames come from `policylab.store.results.load_campaigns`:

- `labels`: ``campaign_item_id, annotator_id, behavior``
- `items`: ``campaign_item_id, item_id, response_id, role, status, final``
- `adjudications`: ``campaign_item_id, behavior, policy_ambiguous, ambiguous_rule_ids``
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from policylab.results.data import Outcomes
from policylab.stats.agreement import agreement_report
from policylab.stats.classification import GraderAgreement, grader_agreement

__all__ = ["CampaignData", "CampaignSummary", "summarise_campaign"]

_BEHAVIOURS = ("comply", "partial", "refuse")


@dataclass(frozen=True)
class CampaignData:
    """One campaign as stored."""

    name: str
    mode: str
    status: str
    run_id: int | None
    labels: pd.DataFrame
    items: pd.DataFrame
    adjudications: pd.DataFrame


class CampaignSummary(BaseModel):
    """The numbers the report shows about one campaign."""

    model_config = ConfigDict(frozen=True)

    name: str
    mode: str
    status: str
    items: int
    labelled_items: int
    labels: int
    annotators: int
    alpha: float | None
    alpha_low: float | None
    alpha_high: float | None
    fleiss_kappa: float | None
    percent_agreement: float | None
    pairable_items: int
    item_status: dict[str, int]
    adjudicated: int
    adjudicated_behaviour: dict[str, int]
    ambiguous: int
    ambiguity_by_rule: dict[str, int]
    grader_vs_human: GraderAgreement | None = None


def summarise_campaign(
    campaign: CampaignData, *, outcomes: Outcomes | None = None, n_boot: int = 1000, seed: int = 0
) -> CampaignSummary:
    """Agreement, adjudication and ambiguity numbers of one campaign (see the module docstring)."""
    labels = campaign.labels[campaign.labels["behavior"].isin(_BEHAVIOURS)]
    per_item = labels.groupby("campaign_item_id")["annotator_id"].nunique()
    pairable = int((per_item >= 2).sum())
    alpha = low = high = fleiss = agree = None
    if pairable:
        report = agreement_report(
            labels,
            item="campaign_item_id",
            rater="annotator_id",
            value="behavior",
            n_boot=n_boot,
            seed=seed,
            source=f"campaign {campaign.name}",
        )
        alpha, low, high = report.alpha.alpha, report.alpha.low, report.alpha.high
        fleiss, agree = report.fleiss.kappa, report.percent_agreement
    adj = campaign.adjudications
    rules: Counter[str] = Counter()
    for flagged, rule_ids in zip(adj["policy_ambiguous"], adj["ambiguous_rule_ids"], strict=True):
        if flagged:
            rules.update(rule_ids or ["(no rule named)"])
    return CampaignSummary(
        name=campaign.name,
        mode=campaign.mode,
        status=campaign.status,
        items=len(campaign.items),
        labelled_items=int(labels["campaign_item_id"].nunique()),
        labels=len(labels),
        annotators=int(labels["annotator_id"].nunique()),
        alpha=_finite(alpha),
        alpha_low=_finite(low),
        alpha_high=_finite(high),
        fleiss_kappa=_finite(fleiss),
        percent_agreement=_finite(agree),
        pairable_items=pairable,
        item_status={str(k): int(v) for k, v in campaign.items["status"].value_counts().items()},
        adjudicated=len(adj),
        adjudicated_behaviour={
            str(k): int(v) for k, v in adj["behavior"].dropna().value_counts().items()
        },
        ambiguous=int(adj["policy_ambiguous"].astype(bool).sum()) if len(adj) else 0,
        ambiguity_by_rule=dict(rules.most_common()),
        grader_vs_human=_grader_vs_human(campaign, outcomes),
    )


def _grader_vs_human(campaign: CampaignData, outcomes: Outcomes | None) -> GraderAgreement | None:
    """The run's grader against the humans' final behaviour on the responses they labelled."""
    if outcomes is None or campaign.run_id != outcomes.info.id:
        return None
    observed = dict(zip(outcomes.frame["response_id"], outcomes.frame["observed"], strict=True))
    gold: list[str] = []
    predicted: list[Any] = []
    for response_id, final in zip(
        campaign.items["response_id"], campaign.items["final"], strict=True
    ):
        behaviour = final.get("behavior") if isinstance(final, dict) else None
        if behaviour not in _BEHAVIOURS or response_id not in observed:
            continue
        gold.append(str(behaviour))
        predicted.append(observed[response_id])
    if not gold:
        return None
    return grader_agreement(gold, predicted, labels=list(_BEHAVIOURS))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
