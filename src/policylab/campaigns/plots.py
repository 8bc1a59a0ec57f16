"""The coverage heatmap as a PNG, drawn with matplotlib's object API (no pyplot state).

(`policylab.report.plots` draws the report's SVG heatmap; this one is for `campaign coverage`.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def coverage_heatmap_png(
    counts: pd.DataFrame,
    path: str | Path,
    *,
    targets: pd.DataFrame | None = None,
    title: str = "Items per category and expected behaviour",
) -> Path:
    """Write a heatmap of `counts` (categories x behaviours), each cell annotated with its count.

    The colour is the share of the cell's target reached (capped at 1) when `targets` (same
    shape) is given, else the count; empty cells are hatched in red so they stand out in print.
    """
    target_file = Path(path)
    values = counts.to_numpy(dtype=float)
    if targets is not None:
        goal = targets.reindex(index=counts.index, columns=counts.columns).to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            shade = np.where(goal > 0, np.minimum(values / goal, 1.0), 1.0)
        label = "share of the target reached"
    else:
        shade = values
        label = "items"
    fig = Figure(figsize=(2.5 + 1.4 * len(counts.columns), 1.5 + 0.35 * len(counts.index)))
    ax = fig.add_subplot()
    image = ax.imshow(shade, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(counts.columns)), [str(c) for c in counts.columns])
    ax.set_yticks(range(len(counts.index)), [str(i) for i in counts.index])
    ax.set_xlabel("expected behaviour")
    ax.set_title(title)
    peak = float(np.nanmax(shade)) if shade.size else 0.0
    for (row, col), count in np.ndenumerate(values):
        if count == 0:
            ax.add_patch(
                Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="///", ec="#c0392b")
            )
        dark = shade[row, col] < 0.6 * peak if peak else True
        ax.text(
            col,
            row,
            f"{int(count)}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if dark else "black",
        )
    fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    fig.savefig(target_file, dpi=120, format="png")
    return target_file
