"""A campaign's dashboard numbers: progress, agreement and each annotator's record.

Agreement is computed by `policylab.stats` on the queue's labels (work and hidden gold; the
qualification round is left out): on the decision key (behaviour, plus violation in response
mode) with Krippendorff's alpha and its bootstrap interval, Fleiss' and pairwise Cohen's kappa;
alpha also on the behaviour alone as an ordinal scale (comply < partial < refuse) and on the
category. Each annotator's accuracy on hidden gold comes with a Wilson interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policylab.stats.aggregation import annotator_accuracy
from policylab.stats.agreement import AgreementReport, agreement_report
from policylab.stats.alpha import krippendorff_alpha
from policylab.store.campaigns import (
    Progress,
    gold_accuracy_frame,
    labels_frame,
    progress,
    schema_of,
)
from policylab.store.models import Assignment, Campaign, Qualification, User

BEHAVIOR_ORDER = ["comply", "partial", "refuse"]


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class AnnotatorStats:
    name: str
    labels: int
    skips: int
    median_seconds: float | None
    gold_n: int
    gold_accuracy: float | None
    gold_low: float | None
    gold_high: float | None
    kappa_vs_rest: float | None
    qualification: str | None
    qualification_score: float | None


@dataclass(frozen=True)
class Dashboard:
    progress: Progress
    n_labels: int
    agreement: AgreementReport | None
    alpha_behavior: float | None
    alpha_category: float | None
    annotators: list[AnnotatorStats] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        p = self.progress
        return {
            "progress": {
                "items": p.items,
                "complete": p.complete,
                "adjudication": p.adjudication,
                "adjudicated": p.adjudicated,
                "labels": p.labels,
                "labels_needed": p.labels_needed,
                "reserved": p.reserved,
                "done": p.done,
                "qualification": p.qualification,
            },
            "agreement": self.agreement.summary() if self.agreement else None,
            "alpha_behavior_ordinal": self.alpha_behavior,
            "alpha_category": self.alpha_category,
            "annotators": [a.__dict__ for a in self.annotators],
        }


def _pairable(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    rated = frame[frame[column].notna()]
    counts = rated.groupby("campaign_item_id")["annotator"].transform("size")
    return rated[counts >= 2]


def dashboard(session: Session, campaign: Campaign, *, n_boot: int = 200) -> Dashboard:
    frame = labels_frame(session, campaign)
    report = None
    alpha_behavior = alpha_category = None
    keyed = _pairable(frame, "key")
    if len(keyed) and keyed["annotator"].nunique() >= 2:
        report = agreement_report(
            keyed,
            item="campaign_item_id",
            rater="annotator",
            value="key",
            n_boot=n_boot,
            source=f"campaign {campaign.name}",
        )
        if schema_of(campaign).ask_violation:
            alpha_behavior = _num(
                krippendorff_alpha(
                    keyed,
                    item="campaign_item_id",
                    rater="annotator",
                    value="behavior",
                    level="ordinal",
                    order=BEHAVIOR_ORDER,
                    n_boot=0,
                ).alpha
            )
    cats = _pairable(frame, "category")
    if len(cats) and cats["annotator"].nunique() >= 2:
        alpha_category = _num(
            krippendorff_alpha(
                cats, item="campaign_item_id", rater="annotator", value="category", n_boot=0
            ).alpha
        )

    gold_rows, gold = gold_accuracy_frame(frame)
    accuracy: dict[str, Any] = {}
    if len(gold_rows):
        acc = annotator_accuracy(
            gold_rows, gold, item="campaign_item_id", rater="annotator", value="key"
        )
        accuracy = {str(r["rater"]): r for r in acc.to_dict("records")}
    vs_rest = {a.rater: a.kappa for a in report.per_annotator} if report else {}
    skips = dict(
        session.execute(
            select(User.name, func.count(Assignment.id))
            .join(User, User.id == Assignment.annotator_id)
            .where(Assignment.campaign_id == campaign.id, Assignment.status == "skipped")
            .group_by(User.name)
        ).all()
    )
    quals = {
        name: (q.status, q.score)
        for q, name in session.execute(
            select(Qualification, User.name)
            .join(User, User.id == Qualification.annotator_id)
            .where(Qualification.campaign_id == campaign.id)
        )
    }
    names = sorted(set(frame["annotator"]) | set(skips) | set(quals))
    annotators = []
    for name in names:
        mine = frame[frame["annotator"] == name]
        durations = mine["duration_ms"].dropna()
        acc_row = accuracy.get(name)
        status, score = quals.get(name, (None, None))
        annotators.append(
            AnnotatorStats(
                name=name,
                labels=len(mine),
                skips=int(skips.get(name, 0)),
                median_seconds=float(durations.median()) / 1000 if len(durations) else None,
                gold_n=int(acc_row["n"]) if acc_row is not None else 0,
                gold_accuracy=_num(acc_row["accuracy"]) if acc_row is not None else None,
                gold_low=_num(acc_row["low"]) if acc_row is not None else None,
                gold_high=_num(acc_row["high"]) if acc_row is not None else None,
                kappa_vs_rest=_num(vs_rest.get(name)),
                qualification=status,
                qualification_score=_num(score),
            )
        )
    return Dashboard(
        progress=progress(session, campaign),
        n_labels=len(frame),
        agreement=report,
        alpha_behavior=alpha_behavior,
        alpha_category=alpha_category,
        annotators=annotators,
    )
