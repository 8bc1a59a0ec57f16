"""Gold items: known answers, and choosing which items deserve one.

A gold set should cover the taxonomy, not mirror the eval set's skew: `stratified_sample` draws a
quota from every cell of category x expected behaviour x source (or any other columns), and
reports the cells that fell short. `informative_items` ranks items by how much the graders
disagree on them (one minus the majority share of their behaviours) and how unsure they are (one
minus their mean confidence): those are the items where a human answer teaches the most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policylab.core import Behavior
from policylab.errors import InputError, Location, PolicylabError, Problem
from policylab.stats.aggregation import majority_vote

WILDCARD = "*"
NONE = "(none)"
DEFAULT_STRATA = ("category", "expected_behavior", "source")


class GoldAnswer(BaseModel):
    """The known answer for one item, by the item's id in its eval set."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    behavior: Behavior
    violation: bool | None = None
    category: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    rationale: str | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"id"})


def read_gold(path: str | Path) -> dict[str, GoldAnswer]:
    """Known answers from a JSONL file: one object per line with `id` and the label fields, flat
    or under `label` (the form `policylab campaign export` writes). Every bad line is reported."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicylabError(f"cannot read gold answers from {file}: {exc.strerror}") from exc
    answers: dict[str, GoldAnswer] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(file=file, line=number)
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(f"not JSON: {exc}", where))
            continue
        if not isinstance(row, dict):
            problems.append(Problem("expected a JSON object", where))
            continue
        flat = {**row, **row["label"]} if isinstance(row.get("label"), dict) else row
        try:
            answer = GoldAnswer.model_validate(flat)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            problems.append(
                Problem(
                    first["msg"],
                    Location(file=file, line=number, field=field),
                    hint="each line needs `id` and `behavior` (comply, partial or refuse)",
                )
            )
            continue
        if answer.id in answers:
            problems.append(Problem(f"id {answer.id!r} appears twice", where))
            continue
        answers[answer.id] = answer
    if problems:
        raise InputError(problems, what=str(file))
    return answers


# -- stratified sampling --------------------------------------------------------------------------
@dataclass(frozen=True)
class GoldSample:
    """The chosen items (`item`, the strata columns, `reason`) and the cells with their quotas."""

    items: pd.DataFrame
    cells: pd.DataFrame


def _cell_key(row: Sequence[Any]) -> tuple[str, ...]:
    return tuple(
        NONE if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row
    )


def quota_for(cell: tuple[str, ...], quotas: Mapping[tuple[str, ...], int], per_cell: int) -> int:
    """The quota of `cell`: the most specific matching entry of `quotas` (fewest `*`), else
    `per_cell`."""
    best: tuple[int, int] | None = None
    for pattern, n in quotas.items():
        if len(pattern) != len(cell):
            raise PolicylabError(
                f"quota {pattern} has {len(pattern)} values but the strata have {len(cell)}",
                hint="give one value (or *) per stratum column",
            )
        if all(p in (WILDCARD, c) for p, c in zip(pattern, cell, strict=True)):
            wild = sum(p == WILDCARD for p in pattern)
            if best is None or wild < best[0]:
                best = (wild, n)
    return per_cell if best is None else best[1]


def stratified_sample(
    frame: pd.DataFrame,
    *,
    by: Sequence[str] = DEFAULT_STRATA,
    per_cell: int,
    quotas: Mapping[tuple[str, ...], int] | None = None,
    seed: int = 0,
) -> GoldSample:
    """Draw up to each cell's quota of rows at random (without replacement) from every cell.

    `frame` has an `item` column and the `by` columns (missing values form their own `(none)`
    cell). The result's `cells` lists every cell with `available`, `quota`, `taken` and
    `shortfall`; a cell in `quotas` with no rows at all appears with `available` 0.
    """
    missing = [c for c in ("item", *by) if c not in frame.columns]
    if missing:
        raise PolicylabError(
            f"items have no column(s) {', '.join(missing)}",
            hint=f"stratify by columns the items have: {', '.join(map(str, frame.columns))}",
        )
    if per_cell < 0:
        raise PolicylabError(f"per_cell must be 0 or more, got {per_cell}")
    quotas = dict(quotas or {})
    rng = np.random.default_rng(seed)
    keys = [_cell_key(row) for row in frame[list(by)].itertuples(index=False, name=None)]
    groups: dict[tuple[str, ...], list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    for pattern in quotas:
        if WILDCARD not in pattern:
            groups.setdefault(tuple(pattern), [])
    chosen: list[int] = []
    cells = []
    for key in sorted(groups):
        rows = groups[key]
        quota = quota_for(key, quotas, per_cell)
        take = min(quota, len(rows))
        picked = rng.choice(len(rows), size=take, replace=False) if take else np.empty(0, int)
        chosen.extend(sorted(rows[int(i)] for i in picked))
        cells.append(
            {
                **dict(zip(by, key, strict=True)),
                "available": len(rows),
                "quota": quota,
                "taken": take,
                "shortfall": quota - take,
            }
        )
    items = frame.iloc[sorted(chosen)].copy()
    items["reason"] = "stratum"
    return GoldSample(items=items.reset_index(drop=True), cells=pd.DataFrame(cells))


# -- the most informative items --------------------------------------------------------------------
def informative_items(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Rank items by grader disagreement and uncertainty, most informative first.

    `verdicts` has one row per grader verdict: `item`, `grader`, `behavior` (None for an error)
    and optionally `confidence` in [0, 1]. Returns ``item, n_graders, disagreement, tie,
    uncertainty, score``: disagreement = 1 - the majority share of the graders' behaviours (a tie
    counts), uncertainty = 1 - the mean confidence (0.5 where no grader gave one), score = their
    sum. Items where every verdict failed rank first: nobody could judge them.
    """
    for column in ("item", "grader", "behavior"):
        if column not in verdicts.columns:
            raise PolicylabError(f"verdicts have no {column!r} column")
    ok = verdicts[verdicts["behavior"].notna()]
    out = pd.DataFrame({"item": pd.unique(verdicts["item"])})
    if len(ok):
        votes = majority_vote(ok, item="item", rater="grader", value="behavior", source="verdicts")
        votes = votes.rename(columns={"n_ratings": "n_graders"})
        out = out.merge(votes[["item", "n_graders", "share", "tie"]], on="item", how="left")
    else:
        out["n_graders"], out["share"], out["tie"] = 0, np.nan, False
    out["n_graders"] = out["n_graders"].fillna(0).astype(int)
    out["tie"] = out["tie"].fillna(False).astype(bool)
    out["disagreement"] = (1.0 - out.pop("share")).fillna(1.0)
    if "confidence" in verdicts.columns and ok["confidence"].notna().any():
        mean_conf = ok.groupby("item")["confidence"].mean()
        out["uncertainty"] = (1.0 - out["item"].map(mean_conf)).fillna(0.5)
    else:
        out["uncertainty"] = 0.5
    out["score"] = out["disagreement"] + out["uncertainty"]
    return out.sort_values(["score", "item"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def select_gold_set(
    items: pd.DataFrame,
    *,
    by: Sequence[str] = DEFAULT_STRATA,
    per_cell: int,
    quotas: Mapping[tuple[str, ...], int] | None = None,
    verdicts: pd.DataFrame | None = None,
    n_informative: int = 0,
    seed: int = 0,
) -> GoldSample:
    """A stratified sample plus the `n_informative` most informative items not already in it.

    The informative items get `reason` = `informative` and their `score`."""
    sample = stratified_sample(items, by=by, per_cell=per_cell, quotas=quotas, seed=seed)
    if n_informative <= 0 or verdicts is None or verdicts.empty:
        return sample
    ranked = informative_items(verdicts)
    taken = set(sample.items["item"])
    known = set(items["item"])
    extra = ranked[~ranked["item"].isin(taken) & ranked["item"].isin(known)].head(n_informative)
    rows = items.set_index("item").loc[extra["item"]].reset_index()
    rows["reason"] = "informative"
    rows["score"] = extra["score"].to_numpy()
    return GoldSample(items=pd.concat([sample.items, rows], ignore_index=True), cells=sample.cells)
