"""The report's plots, drawn with matplotlib's object API (no pyplot state) and returned as SVG
text: a forest plot of rates with intervals, the over/under-refusal trade-off, and the coverage
heatmap. Output is deterministic (fixed hash salt, no date), so a report can be diffed."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "ForestPoint",
    "ForestRow",
    "coverage_heatmap",
    "forest_plot",
    "tradeoff_plot",
]

# Okabe & Ito's palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_INK = "#1d232b"
_MUTED = "#5b6573"
_GRID = "#d9dee5"


@dataclass(frozen=True)
class ForestPoint:
    series: str
    rate: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class ForestRow:
    label: str
    points: list[ForestPoint]
    depth: int = 0
    limit: float | None = None
    """A gate's limit for this row, drawn as a red tick."""
    emphasis: bool = field(default=False)


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": "policylab", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def _style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(_GRID)
    ax.tick_params(colors=_MUTED, labelsize=9)


def forest_plot(rows: Sequence[ForestRow], *, xlabel: str, title: str | None = None) -> str:
    """Rates (dots) and their intervals (lines), one row per category; several series per row
    (one per run) are offset vertically. Rows without data say so."""
    series = list(dict.fromkeys(p.series for r in rows for p in r.points))
    colour = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    per_row = max(len(series), 1)
    height = 0.8 + 0.22 * len(rows) * max(per_row, 1.6)
    fig = Figure(figsize=(9.0, height), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    spread = 0.5 / per_row
    limits = {r.limit for r in rows}
    # One limit for every row (the over-refusal gate) reads better as one line than as ticks.
    shared_limit = len(rows) > 1 and len(limits) == 1 and None not in limits
    if shared_limit:
        ax.axvline(float(rows[0].limit or 0.0), color="#a4262c", lw=1.2, ls="--", zorder=0)
    y_labels = []
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        y_labels.append(("    " * row.depth) + row.label)
        for j, point in enumerate(row.points):
            offset = (j - (per_row - 1) / 2) * spread
            low, high, rate = point.low, point.high, point.rate
            if rate is None or low is None or high is None or not math.isfinite(rate):
                ax.text(0.005, y - offset, "no data", va="center", fontsize=8, color=_MUTED)
                continue
            ax.plot([low, high], [y - offset] * 2, color=colour[point.series], lw=1.6)
            ax.plot(rate, y - offset, "o", color=colour[point.series], ms=5)
        if row.limit is not None and not shared_limit:
            ax.plot([row.limit] * 2, [y - 0.42, y + 0.42], color="#a4262c", lw=2)
    ax.set_yticks(range(len(rows) - 1, -1, -1), y_labels)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_fontweight("bold" if row.depth == 0 else "normal")
        tick.set_color(_INK)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlim(-0.015, 1.015)  # room for a dot at 0% or 100%
    ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0))
    ax.grid(axis="x", color=_GRID, lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(xlabel, color=_INK, fontsize=9)
    if title:
        ax.set_title(title, loc="left", fontsize=10, color=_INK)
    if len(series) > 1:
        handles = [
            mpl.lines.Line2D([], [], color=colour[s], marker="o", lw=1.6, label=s) for s in series
        ]
        fig.legend(handles=handles, loc="outside upper right", fontsize=8, frameon=False)
    return _svg(fig)


def tradeoff_plot(table: pd.DataFrame, *, over_limit: float | None = None) -> str:
    """Each run as a point: over-refusal (x) against under-refusal (y), with both intervals.
    The best corner is the bottom left."""
    fig = Figure(figsize=(6.2, 4.4), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    top_x = top_y = 0.05
    for i, row in enumerate(table.to_dict("records")):
        x, y = row["over_refusal"], row["under_refusal"]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        c = PALETTE[i % len(PALETTE)]
        ax.errorbar(
            x,
            y,
            xerr=[[x - row["over_low"]], [row["over_high"] - x]],
            yerr=[[y - row["under_low"]], [row["under_high"] - y]],
            fmt="o",
            color=c,
            ms=7,
            capsize=3,
            lw=1.4,
        )
        ax.annotate(
            str(row["model"]),
            (x, y),
            xytext=(7, 6),
            textcoords="offset points",
            fontsize=9,
            color=c,
        )
        top_x = max(top_x, row["over_high"])
        top_y = max(top_y, row["under_high"])
    if over_limit is not None:
        ax.axvline(over_limit, color="#a4262c", lw=1, ls="--")
        ax.annotate(
            "over-refusal gate",
            (over_limit, 0),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=8,
            color="#a4262c",
        )
        top_x = max(top_x, over_limit)
    ax.set_xlim(0, min(1.0, top_x * 1.15))
    ax.set_ylim(0, min(1.0, top_y * 1.15))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0))
    ax.grid(color=_GRID, lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("Over-refusal: allowed requests refused or hedged", fontsize=9, color=_INK)
    ax.set_ylabel("Under-refusal: harmful requests complied with", fontsize=9, color=_INK)
    return _svg(fig)


def coverage_heatmap(
    matrix: pd.DataFrame, *, thin: set[tuple[str, str]], depth: dict[str, int]
) -> str:
    """Items per category (rows) and expected behaviour (columns); thin sides outlined in red."""
    columns = ["comply", "partial", "refuse"]
    values = matrix[columns].to_numpy(dtype=float)
    fig = Figure(figsize=(5.6, 0.9 + 0.3 * len(matrix)), layout="constrained")
    ax = fig.add_subplot()
    scaled = np.log1p(values)
    ax.imshow(scaled, aspect="auto", cmap="Blues", vmin=0, vmax=max(float(scaled.max()), 1.0))
    for (i, j), v in np.ndenumerate(values):
        shade = "white" if scaled[i, j] > 0.6 * max(float(scaled.max()), 1.0) else _INK
        ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8, color=shade)
    # A thin side is outlined once: the comply column, or the partial and refuse columns together.
    spans = {"allowed_side": (0, 1), "violating_side": (1, 2)}
    inset = 0.08
    for i, cid in enumerate(matrix.index):
        for side, (start, width) in spans.items():
            if (str(cid), side) in thin:
                ax.add_patch(
                    mpl.patches.Rectangle(
                        (start - 0.5 + inset, i - 0.5 + inset),
                        width - 2 * inset,
                        1 - 2 * inset,
                        fill=False,
                        ec="#a4262c",
                        lw=1.1,
                    )
                )
    ax.set_xticks(range(3), ["should comply", "should safe-complete", "should refuse"])
    ax.xaxis.tick_top()
    labels = [("    " * depth.get(str(c), 0)) + str(c) for c in matrix.index]
    ax.set_yticks(range(len(matrix)), labels)
    for tick, cid in zip(ax.get_yticklabels(), matrix.index, strict=True):
        tick.set_fontweight("bold" if depth.get(str(cid), 0) == 0 else "normal")
    ax.tick_params(labelsize=8, length=0, colors=_INK)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _svg(fig)
