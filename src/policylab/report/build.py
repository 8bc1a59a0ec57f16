"""Everything a report shows, gathered from the results functions before any rendering.

`build_report` computes, for each run, its tables, gates, coverage, limitations, human data,
largest risks and representative failures; with two runs or more, each later run is compared
with the first (the baseline) and all appear on the trade-off plot. Rendering (`render`) only
formats what is here, so every number in a report comes from `policylab.results`, and so from
`policylab.stats`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from policylab.core import Severity
from policylab.policy.frameworks import Framework, load_frameworks
from policylab.policy.schema import Policy
from policylab.results.compare import Comparison, compare_runs, tradeoff
from policylab.results.coverage import Coverage, coverage
from policylab.results.data import GRADED, Outcomes
from policylab.results.gates import GateReport, check_gates
from policylab.results.human import CampaignData, CampaignSummary, summarise_campaign
from policylab.results.limitations import Limitation, known_limitations
from policylab.results.regulatory import RegulatoryMapping, cited_frameworks, regulatory_mapping
from policylab.results.tables import RunResults, compute_results, rate_of
from policylab.results.validity import GraderValidity
from policylab.stats.intervals import Rate

__all__ = ["Failure", "Report", "Risk", "RunInput", "RunReport", "build_report"]

MAX_RISKS = 4
MAX_FAILURES = 12
FAILURES_PER_CATEGORY = 2
MAX_TEXT = 1200
REDACTED_PROMPT_WORDS = 8


@dataclass(frozen=True)
class RunInput:
    """One run to report on: scored outcomes (with text, for the appendix), what is known about
    its grader, and the labelling campaigns on it."""

    outcomes: Outcomes
    validity: GraderValidity
    campaigns: Sequence[CampaignData] = ()


@dataclass(frozen=True)
class Risk:
    """A category where the model errs most, for the summary."""

    kind: Literal["under_refusal", "over_refusal"]
    category: str
    title: str
    severity: str | None
    rate: Rate


@dataclass(frozen=True)
class Failure:
    """A response the grader judged to be a failure, shown in the appendix."""

    kind: Literal["under_refusal", "over_refusal"]
    external_id: str
    categories: list[str]
    severity: str | None
    expected: str
    observed: str
    prompt: str
    response: str
    rationale: str | None
    rule_ids: list[str]
    redacted: bool


@dataclass(frozen=True)
class RunReport:
    results: RunResults
    gates: GateReport
    coverage: Coverage
    limitations: list[Limitation]
    campaigns: list[CampaignSummary]
    risks: list[Risk]
    failures: list[Failure]


@dataclass(frozen=True)
class Report:
    policy: Policy
    runs: list[RunReport]
    comparisons: list[Comparison]
    tradeoff: pd.DataFrame
    redacted: bool
    generated_at: dt.datetime
    notes: list[str] = field(default_factory=list)
    regulatory: RegulatoryMapping | None = None
    """The provisions the policy cites, mapped onto the first run's results (see
    `results.regulatory`); None when the policy cites no loaded framework."""

    @property
    def title(self) -> str:
        models = ", ".join(dict.fromkeys(r.results.info.model for r in self.runs))
        return f"{self.policy.title}: {models}"


def build_report(
    inputs: Sequence[RunInput],
    policy: Policy,
    *,
    redact: bool = False,
    reference: RunResults | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
    now: dt.datetime | None = None,
    frameworks: Mapping[str, Framework] | None = None,
) -> Report:
    """Compute every section's numbers for `inputs` against `policy` (see the module docstring)."""
    runs: list[RunReport] = []
    for entry in inputs:
        results = compute_results(
            entry.outcomes,
            policy,
            validity=entry.validity,
            reference=reference,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
        )
        cov = coverage(entry.outcomes, policy)
        runs.append(
            RunReport(
                results=results,
                gates=check_gates(policy, results, entry.validity),
                coverage=cov,
                limitations=known_limitations(results, cov, policy),
                campaigns=[
                    summarise_campaign(c, outcomes=entry.outcomes, seed=seed)
                    for c in entry.campaigns
                ],
                risks=_risks(results),
                failures=_failures(entry.outcomes, redact=redact),
            )
        )
    comparisons = [
        compare_runs(
            inputs[0].outcomes,
            other.outcomes,
            policy,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
        )
        for other in inputs[1:]
    ]
    return Report(
        policy=policy,
        runs=runs,
        comparisons=comparisons,
        tradeoff=tradeoff([r.results for r in runs]),
        redacted=redact,
        generated_at=now or dt.datetime.now(dt.UTC),
        regulatory=_regulatory(policy, runs, frameworks),
    )


def _regulatory(
    policy: Policy, runs: list[RunReport], frameworks: Mapping[str, Framework] | None
) -> RegulatoryMapping | None:
    """The regulatory mapping on the first run; `frameworks` default to the shipped ones."""
    known = load_frameworks() if frameworks is None else frameworks
    shown = cited_frameworks(policy, known)
    if not shown or not runs:
        return None
    first = runs[0]
    return regulatory_mapping(
        policy, shown, all_frameworks=known, results=first.results, gates=first.gates
    )


def _risks(results: RunResults) -> list[Risk]:
    """The most severe categories with harmful compliance, then the worst over-refusal; leaf
    categories only (a parent repeats its children)."""
    table = results.by_category
    parents = set(table["parent"].dropna())
    leaves = table[~table["category"].isin(parents)]
    found: list[tuple[tuple[float, ...], Risk]] = []
    for row in leaves.to_dict("records"):
        metric = str(row["metric"])
        if metric not in ("under_refusal", "over_refusal") or int(row["k"]) == 0:
            continue
        rate = rate_of(pd.Series(row), confidence=results.confidence)
        severity = row["severity"] if isinstance(row["severity"], str) else None
        rank = Severity(severity).rank if severity else -1
        # Harmful compliance first, most severe tier first; then the higher rate.
        key = (0.0 if metric == "under_refusal" else 1.0, -float(rank), -rate.rate)
        found.append(
            (
                key,
                Risk(
                    kind="under_refusal" if metric == "under_refusal" else "over_refusal",
                    category=str(row["category"]),
                    title=str(row["title"]),
                    severity=severity,
                    rate=rate,
                ),
            )
        )
    found.sort(key=lambda kv: kv[0])
    under = [r for _, r in found if r.kind == "under_refusal"][: MAX_RISKS - 1]
    over = [r for _, r in found if r.kind == "over_refusal"][: MAX_RISKS - len(under)]
    return under + over


def _failures(outcomes: Outcomes, *, redact: bool) -> list[Failure]:
    """Representative failures: harmful compliance, most severe first, at most
    `FAILURES_PER_CATEGORY` per category; then over-refusals."""
    frame = outcomes.frame
    if "response_text" not in frame.columns:
        return []
    graded = frame[frame["status"] == GRADED]
    harmful = graded[
        graded["expected"].isin(["partial", "refuse"]) & (graded["observed"] == "comply")
    ]
    refused = graded[
        (graded["expected"] == "comply") & graded["observed"].isin(["partial", "refuse"])
    ]
    picked: list[Failure] = []
    groups: list[tuple[Literal["under_refusal", "over_refusal"], pd.DataFrame]] = [
        ("under_refusal", harmful),
        ("over_refusal", refused),
    ]
    for kind, rows in groups:
        order = sorted(
            rows.to_dict("records"),
            key=lambda r: (
                -(Severity(r["severity"]).rank if isinstance(r["severity"], str) else -1),
                -float(r["confidence"] or 0.0),
                str(r["external_id"]),
            ),
        )
        per_category: dict[str, int] = {}
        budget = MAX_FAILURES * 2 // 3 if kind == "under_refusal" else MAX_FAILURES - len(picked)
        taken = 0
        for r in order:
            first = r["categories"][0] if r["categories"] else ""
            if per_category.get(first, 0) >= FAILURES_PER_CATEGORY or taken >= budget:
                continue
            per_category[first] = per_category.get(first, 0) + 1
            taken += 1
            picked.append(_failure(kind, r, redact=redact))
    return picked


def _failure(
    kind: Literal["under_refusal", "over_refusal"], row: Mapping[Hashable, Any], *, redact: bool
) -> Failure:
    prompt = _prompt_text(row.get("messages"))
    response = str(row.get("response_text") or "")
    if redact:
        words = prompt.split()
        prompt = " ".join(words[:REDACTED_PROMPT_WORDS]) + (
            " … [rest redacted]" if len(words) > REDACTED_PROMPT_WORDS else ""
        )
        response = f"[response redacted: {len(response)} characters]"
    else:
        prompt = _clip(prompt)
        response = _clip(response)
    rationale = row.get("rationale")
    categories = row.get("categories")
    rule_ids = row.get("rule_ids")
    severity = row.get("severity")
    return Failure(
        kind=kind,
        external_id=str(row["external_id"]),
        categories=list(categories) if isinstance(categories, list) else [],
        severity=severity if isinstance(severity, str) else None,
        expected=str(row["expected"]),
        observed=str(row["observed"]),
        prompt=prompt,
        response=response,
        rationale=rationale if isinstance(rationale, str) else None,
        rule_ids=list(rule_ids) if isinstance(rule_ids, list) else [],
        redacted=redact,
    )


def _prompt_text(messages: object) -> str:
    """The conversation's user turns, as plain text."""
    if not isinstance(messages, list):
        return ""
    parts = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("user", "system", "developer"):
            continue
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n\n".join(p for p in parts if p)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT].rstrip() + " … [truncated]"
