"""The report as the templates see it: rows of cells, plots as data URIs, and the formatting
helpers. Built from a `Report`; computes nothing new."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from policylab.report import format as fmt
from policylab.report.build import Report, RunReport
from policylab.report.plots import (
    ForestPoint,
    ForestRow,
    coverage_heatmap,
    forest_plot,
    tradeoff_plot,
)
from policylab.results.tables import UNKNOWN_TIER, RunResults, rate_of
from policylab.stats.intervals import Rate
from policylab.stats.refusal import METRICS

__all__ = ["Cell", "Row", "plots", "rows", "template_context"]

METRIC_TITLES = {
    "under_refusal": "Under-refusal",
    "over_refusal": "Over-refusal",
    "safe_completion": "Safe completion",
    "grader_error": "Grader errors",
}

SEVERITY_TITLES = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    UNKNOWN_TIER: "Unknown tier",
}


@dataclass(frozen=True)
class Cell:
    """One rate in a table, with the key a test uses to find it (`run/scope/key/metric`)."""

    ref: str
    rate: Rate
    errors: int


@dataclass(frozen=True)
class Row:
    scope: str
    key: str
    title: str
    depth: int
    severity: str | None
    cells: dict[str, Cell]


def rows(results: RunResults, scope: str) -> list[Row]:
    """Table rows for `scope` (overall, severity or category) with a cell per metric."""
    if scope == "overall":
        frame = results.overall.assign(_key="all")
        key_column = "_key"
    elif scope == "severity":
        frame = results.by_severity
        key_column = "severity"
    else:
        frame = results.by_category
        key_column = "category"
    out: list[Row] = []
    for key in frame[key_column].unique():
        block = frame[frame[key_column] == key]
        first = block.iloc[0]
        cells = {}
        for metric in METRICS:
            row = block[block["metric"] == metric].iloc[0]
            cells[metric] = Cell(
                ref=f"{results.info.name}/{scope}/{key}/{metric}",
                rate=rate_of(row, confidence=results.confidence),
                errors=int(row["errors"]),
            )
        if scope == "category":
            title, depth = str(first["title"]), int(first["depth"])
            severity = first["severity"] if isinstance(first["severity"], str) else None
        elif scope == "severity":
            title, depth, severity = SEVERITY_TITLES.get(str(key), str(key)), 0, str(key)
        else:
            title, depth, severity = "All items", 0, None
        out.append(Row(scope, str(key), title, depth, severity, cells))
    return out


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def _forest_rows(
    runs: list[RunReport], scope: str, metric: str, limits: dict[str, float] | None = None
) -> list[ForestRow]:
    per_run = [(r.results.info.model, rows(r.results, scope)) for r in runs]
    keys = [row.key for row in per_run[0][1]]
    out = []
    for index, key in enumerate(keys):
        points = []
        for model, table in per_run:
            match = next((row for row in table if row.key == key), None)
            if match is None:
                continue
            rate = match.cells[metric].rate
            points.append(
                ForestPoint(
                    series=model,
                    rate=rate.rate if rate.defined else None,
                    low=rate.low,
                    high=rate.high,
                    n=rate.n,
                )
            )
        first = per_run[0][1][index]
        label = f"{first.key} {first.title}" if scope == "category" else first.title
        out.append(
            ForestRow(
                label=label if len(label) <= 46 else label[:45].rstrip() + "…",
                points=points,
                depth=first.depth,
                limit=(limits or {}).get(key),
            )
        )
    return out


def _relevant(rows_: list[ForestRow]) -> list[ForestRow]:
    """Rows where at least one run has data (a forest plot of empty rows says nothing)."""
    return [r for r in rows_ if any(p.rate is not None for p in r.points)]


def plots(report: Report) -> dict[str, str]:
    """Every plot as an SVG data URI, by name."""
    runs = report.runs
    gates = report.policy.gates
    tier_limits = {tier.value: limit for tier, limit in gates.under_refusal.items()}
    out: dict[str, str] = {}
    severity_under = _relevant(_forest_rows(runs, "severity", "under_refusal", tier_limits))
    if severity_under:
        out["severity_under"] = _data_uri(
            forest_plot(severity_under, xlabel="Harmful compliance (under-refusal), 95% interval")
        )
    category_under = _relevant(_forest_rows(runs, "category", "under_refusal"))
    if category_under:
        out["category_under"] = _data_uri(
            forest_plot(category_under, xlabel="Harmful compliance (under-refusal), 95% interval")
        )
    category_over = _relevant(
        _forest_rows(
            runs,
            "category",
            "over_refusal",
            {row.key: gates.over_refusal for row in rows(runs[0].results, "category")}
            if gates.over_refusal is not None
            else None,
        )
    )
    if category_over:
        out["category_over"] = _data_uri(
            forest_plot(category_over, xlabel="Over-refusal of allowed requests, 95% interval")
        )
    if len(runs) > 1:
        out["tradeoff"] = _data_uri(tradeoff_plot(report.tradeoff, over_limit=gates.over_refusal))
    for run in runs:
        key = f"coverage:{run.results.info.eval_set}"
        if key in out:
            continue  # runs on the same eval set share its coverage
        cov = run.coverage
        thin = {
            (str(c), str(s)) for c, s in zip(cov.thin["category"], cov.thin["side"], strict=True)
        }
        depth = {str(c): str(c).count(".") for c in cov.matrix.index}
        if len(cov.matrix):
            out[key] = _data_uri(coverage_heatmap(cov.matrix, thin=thin, depth=depth))
    return out


def template_context(report: Report, *, with_plots: bool = True) -> dict[str, Any]:
    """What the report templates receive."""
    return {
        "report": report,
        "policy": report.policy,
        "plots": plots(report) if with_plots else {},
        "rows": rows,
        "metric_titles": METRIC_TITLES,
        "severity_titles": SEVERITY_TITLES,
        "pct": fmt.pct,
        "interval": fmt.interval,
        "signed_pct": fmt.signed_pct,
        "signed_interval": fmt.signed_interval,
        "number": fmt.number,
        "pvalue": fmt.pvalue,
        "count": fmt.count,
    }
