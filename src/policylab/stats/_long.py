"""Long-format ratings (one row per item x rater x value), validated and coded as integers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from policylab.errors import PolicylabError

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")


@dataclass(frozen=True)
class Ratings:
    """Ratings as parallel integer arrays; missing values are already dropped.

    `value` indexes `domain` (the distinct values, ordered for ordinal/interval data); `numeric`
    holds each rating's number for interval data (and numeric ordinal data).
    """

    item: NDArray[np.intp]
    rater: NDArray[np.intp]
    value: NDArray[np.intp]
    items: list[Any]
    raters: list[Any]
    domain: list[Any]
    numeric: NDArray[np.float64] | None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_raters(self) -> int:
        return len(self.raters)

    @property
    def n_values(self) -> int:
        return len(self.domain)

    def subset(self, keep: NDArray[np.bool_]) -> Ratings:
        """The ratings where `keep` is True, re-coded so every item, rater and value is used."""
        item_codes, item_uniques = pd.factorize(self.item[keep], sort=True)
        rater_codes, rater_uniques = pd.factorize(self.rater[keep], sort=True)
        value_codes, value_uniques = pd.factorize(self.value[keep], sort=True)
        return Ratings(
            item=item_codes.astype(np.intp),
            rater=rater_codes.astype(np.intp),
            value=value_codes.astype(np.intp),
            items=[self.items[i] for i in item_uniques],
            raters=[self.raters[i] for i in rater_uniques],
            domain=[self.domain[i] for i in value_uniques],
            numeric=None if self.numeric is None else self.numeric[keep],
        )


def check_level(level: str) -> Level:
    if level not in LEVELS:
        raise PolicylabError(
            f"level must be one of {', '.join(LEVELS)}, got {level!r}",
            hint="nominal for unordered labels, ordinal for ordered ones, interval for numbers",
        )
    return level


def require_columns(frame: pd.DataFrame, columns: dict[str, str], *, source: str) -> None:
    """Raise naming the source, the missing column and the columns that exist."""
    present = [str(c) for c in frame.columns]
    for role, column in columns.items():
        if column not in frame.columns:
            raise PolicylabError(
                f"{source}: no column {column!r} (the {role} column); columns are: "
                f"{', '.join(present) or '(none)'}",
                hint=f"name the {role} column (--{role} NAME on the command line) from the list",
            )


def ratings_from_frame(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    rater: str = "rater",
    value: str = "value",
    level: str = "nominal",
    order: list[Any] | None = None,
    source: str = "data",
) -> Ratings:
    """Validate and code long-format ratings.

    Rows with a missing value are dropped (the rater did not rate the item). An (item, rater) pair
    may appear once. Interval data must be numeric; ordinal data must be numeric or come with
    `order` (lowest first), because sorting labels alphabetically would invent an order.
    """
    lvl = check_level(level)
    require_columns(frame, {"item": item, "rater": rater, "label": value}, source=source)
    data = frame.loc[frame[value].notna(), [item, rater, value]]
    bad_keys = data[item].isna() | data[rater].isna()
    if bad_keys.any():
        row = int(np.flatnonzero(bad_keys.to_numpy())[0])
        raise PolicylabError(
            f"{source}: row {plain(data.index[row])!r} has a rating without an item or rater id",
            hint=f"fill in the {item!r} and {rater!r} columns on every rated row",
        )
    item_codes, item_uniques = _factorize(data[item])
    rater_codes, rater_uniques = _factorize(data[rater])
    dup = _duplicated(item_codes, rater_codes, len(rater_uniques))
    if dup.any():
        first = data.iloc[int(np.flatnonzero(dup)[0])]
        raise PolicylabError(
            f"{source}: rater {plain(first[rater])!r} rated item {plain(first[item])!r} "
            f"more than once ({int(dup.sum())} duplicated rows)",
            hint="keep one rating per item and rater (e.g. the latest) before computing agreement",
        )
    raw = data[value]
    numeric: NDArray[np.float64] | None = None
    as_number = pd.to_numeric(raw, errors="coerce")
    all_numeric = bool(as_number.notna().all())
    if lvl == "interval" and not all_numeric:
        row = int(np.flatnonzero(as_number.isna().to_numpy())[0])
        raise PolicylabError(
            f"{source}: interval data must be numbers, but row {plain(data.index[row])!r} has "
            f"{plain(raw.iloc[row])!r} in column {value!r}",
            hint="use level nominal or ordinal for labels",
        )
    if order is not None and lvl == "interval":
        raise PolicylabError(
            "an order applies to nominal or ordinal labels; interval data are ordered by value",
            hint="drop the order, or use level ordinal",
        )
    if order is not None:
        domain = list(order)
        if len(set(domain)) != len(domain):
            raise PolicylabError(f"order has duplicate values: {domain}")
        lookup = {v: i for i, v in enumerate(domain)}
        codes = raw.map(lambda v: lookup.get(v, lookup.get(str(v), -1))).to_numpy(dtype=np.intp)
        if (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise PolicylabError(
                f"{source}: value {plain(raw.iloc[row])!r} (row {plain(data.index[row])!r}) "
                f"is not in the given order {domain}",
                hint="add it to the order or fix the data",
            )
        value_codes = codes
        if all_numeric:
            numeric = as_number.to_numpy(dtype=np.float64)
    elif lvl == "nominal":
        value_codes, domain = _factorize(raw)
    else:
        if not all_numeric:
            raise PolicylabError(
                f"{source}: ordinal labels in column {value!r} are not numbers, so their order "
                "is unknown",
                hint="pass the order of the labels (lowest first), e.g. order=['low', 'high']",
            )
        numeric = as_number.to_numpy(dtype=np.float64)
        num_codes, num_uniques = pd.factorize(numeric, sort=True)
        value_codes, domain = np.asarray(num_codes, dtype=np.intp), list(num_uniques)
    return Ratings(
        item=item_codes,
        rater=rater_codes,
        value=np.asarray(value_codes, dtype=np.intp),
        items=item_uniques,
        raters=rater_uniques,
        domain=domain,
        numeric=numeric,
    )


def _duplicated(
    items: NDArray[np.intp], raters: NDArray[np.intp], n_raters: int
) -> NDArray[np.bool_]:
    """Every rating whose (item, rater) pair occurs more than once."""
    key = items.astype(np.int64) * n_raters + raters
    cells = (int(items.max()) + 1) * n_raters if items.size else 0
    if cells <= max(4 * key.size, 1 << 22):
        counts = np.bincount(key, minlength=cells)
        return np.asarray(counts[key] > 1, dtype=np.bool_)
    _, inverse, per_key = np.unique(key, return_inverse=True, return_counts=True)
    return np.asarray(per_key[inverse] > 1, dtype=np.bool_)


def _factorize(values: pd.Series) -> tuple[NDArray[np.intp], list[Any]]:
    """Codes in sorted order of the values when they can be sorted, else in order of appearance."""
    codes, uniques = pd.factorize(values, sort=False)
    codes = np.asarray(codes, dtype=np.intp)
    try:
        order = np.argsort(np.asarray(uniques), kind="stable")
    except TypeError:
        return codes, pd.Index(uniques).tolist()
    rank = np.empty(order.size, dtype=np.intp)
    rank[order] = np.arange(order.size)
    return rank[codes], pd.Index(uniques).take(order).tolist()


def plain(value: Any) -> Any:
    """numpy scalars as Python ones, so messages show 1 rather than np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value
