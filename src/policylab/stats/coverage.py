"""How a set of items covers a taxonomy: counts per cell against targets.

A cell is a category x an expected behaviour (x optionally a third column such as language or
source). Every category of the taxonomy appears with every behaviour, so a cell nobody wrote an
item for shows up as `empty` instead of being silently missing. An item with several categories
counts once in each. With `rollup`, an item also counts in every ancestor category (`CYB.2.x`
counts for `CYB.2` and `CYB`): ids are split on dots, as policy category ids are.

Status of a cell: `empty` (no item, target above 0), `thin` (fewer items than the target), `ok`,
or `untargeted` (target 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

import pandas as pd

from policylab.errors import PolicylabError

BEHAVIORS = ("comply", "partial", "refuse")
NONE = "(none)"


def _ancestors(category: str) -> list[str]:
    parts = category.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _category_lists(frame: pd.DataFrame) -> pd.Series:
    if "categories" in frame.columns:
        return frame["categories"].map(
            lambda v: [str(c) for c in v] if isinstance(v, list | tuple) and len(v) else [NONE]
        )
    if "category" in frame.columns:
        return frame["category"].map(lambda v: [NONE] if v is None or pd.isna(v) else [str(v)])
    raise PolicylabError(
        "items have neither a `categories` nor a `category` column",
        hint="give each item its policy category ids",
    )


def coverage_table(
    frame: pd.DataFrame,
    *,
    categories: Sequence[str],
    behaviors: Sequence[str] = BEHAVIORS,
    by: str | None = None,
    by_values: Sequence[str] | None = None,
    target: int = 10,
    targets: Mapping[tuple[str, ...], int] | None = None,
    rollup: bool = False,
) -> pd.DataFrame:
    """One row per cell: ``category, expected_behavior, [by], count, target, shortfall, status``.

    `frame` has `categories` (lists of ids) or `category`, `expected_behavior`, and the `by`
    column when given. Cells are every taxonomy category x every behaviour (x every value of `by`
    seen in the items or listed in `by_values`), plus any cell outside the taxonomy that has items
    (such as `(none)`). `targets` overrides `target` for given cells: keys are
    (category, behaviour) or (category, behaviour, by value).
    """
    if target < 0:
        raise PolicylabError(f"target must be 0 or more, got {target}")
    if "expected_behavior" not in frame.columns:
        raise PolicylabError("items have no `expected_behavior` column")
    if by is not None and by not in frame.columns:
        raise PolicylabError(
            f"items have no {by!r} column", hint="cover by `language` or `source`, or leave it out"
        )
    exploded = pd.DataFrame(
        {
            "category": _category_lists(frame),
            "expected_behavior": frame["expected_behavior"].map(
                lambda v: NONE if v is None or pd.isna(v) else str(v)
            ),
        }
    )
    if by is not None:
        exploded[by] = frame[by].map(lambda v: NONE if v is None or pd.isna(v) else str(v))
    if rollup:
        exploded["category"] = exploded["category"].map(
            lambda cats: sorted({a for c in cats for a in [c, *_ancestors(c)]})
        )
    exploded = exploded.explode("category")
    keys = ["category", "expected_behavior", *([by] if by else [])]
    counts = exploded.groupby(keys, dropna=False).size()

    dims: list[list[str]] = [list(dict.fromkeys(categories)), list(behaviors)]
    if by is not None:
        seen = sorted(exploded[by].unique())
        dims.append(list(dict.fromkeys([*(by_values or []), *seen])))
    cells = list(product(*dims))
    known = set(cells)
    cells += sorted(
        k if isinstance(k, tuple) else (k,)
        for k in counts.index
        if (k if isinstance(k, tuple) else (k,)) not in known
    )
    overrides = dict(targets or {})
    rows: list[dict[str, Any]] = []
    for cell in cells:
        count = int(counts.get(cell if len(cell) > 1 else cell[0], 0))
        cell_target = overrides.get(cell, overrides.get(cell[:2], target))
        if cell_target == 0:
            status = "untargeted"
        elif count == 0:
            status = "empty"
        elif count < cell_target:
            status = "thin"
        else:
            status = "ok"
        rows.append(
            {
                **dict(zip(keys, cell, strict=True)),
                "count": count,
                "target": cell_target,
                "shortfall": max(cell_target - count, 0),
                "status": status,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "count", "target", "shortfall", "status"])


def coverage_matrix(table: pd.DataFrame, *, value: str = "count") -> pd.DataFrame:
    """Category x expected behaviour, summing `value` over any third column (for a heatmap)."""
    matrix = table.pivot_table(
        index="category", columns="expected_behavior", values=value, aggfunc="sum", sort=False
    )
    ordered = [c for c in (*BEHAVIORS, NONE) if c in matrix.columns]
    ordered += [c for c in matrix.columns if c not in ordered]
    return matrix[ordered].fillna(0).astype(int)
