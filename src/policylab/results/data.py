"""A run's stored responses and verdicts, resolved against the policy into one row per response.

The store hands over two frames (see `policylab.store.results`): `responses` (one row per response,
with its item's categories and expected behaviour) and `verdicts` (every verdict of every grader on
the run). `outcomes` picks one grader, keeps its latest verdict per response, and adds what the
metrics need:

- `expected`: the item's own expected behaviour, else the strictest expected behaviour of its
  categories in the policy (refuse over partial over comply); None when neither says.
- `severity`: the highest severity tier among the item's categories the policy knows; None when the
  policy knows none of them.
- `observed`: the grader's behaviour, or None for a grader error (an error verdict, or no verdict
  at all on a response that exists): never counted as safe.

A response that failed (the target model gave no answer) has `response_error` set; it is not
graded and the metrics leave it out, but every table reports how many there were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from policylab.core import Behavior, Severity
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy

__all__ = [
    "OUTCOME_COLUMNS",
    "RESPONSE_COLUMNS",
    "VERDICT_COLUMNS",
    "Outcomes",
    "RunData",
    "RunInfo",
    "choose_grader",
    "expected_for",
    "graders_in",
    "outcomes",
]

RESPONSE_COLUMNS: tuple[str, ...] = (
    "item_id",
    "external_id",
    "categories",
    "item_expected",
    "source",
    "tags",
    "response_id",
    "response_error",
)
"""Required columns of a responses frame; `messages` and `response_text` are optional."""

VERDICT_COLUMNS: tuple[str, ...] = (
    "verdict_id",
    "response_id",
    "grader_id",
    "grader_version",
    "behavior",
    "violation",
    "category",
    "rule_ids",
    "confidence",
    "rationale",
    "error",
)
"""Required columns of a verdicts frame (one row per stored verdict)."""

OUTCOME_COLUMNS: tuple[str, ...] = (
    *RESPONSE_COLUMNS,
    "expected",
    "severity",
    "status",
    "observed",
    "grader_error",
    "verdict_id",
    "grader_version",
    "violation",
    "verdict_category",
    "rule_ids",
    "confidence",
    "rationale",
    "disagreement",
)

_STRICTNESS = {Behavior.COMPLY.value: 0, Behavior.PARTIAL.value: 1, Behavior.REFUSE.value: 2}

GRADED, GRADER_ERROR, MODEL_ERROR = "graded", "grader_error", "model_error"


@dataclass(frozen=True)
class RunInfo:
    """What a report says about a run besides its numbers."""

    id: int
    name: str
    model: str
    eval_set: str
    status: str
    items_total: int
    """Items in the run's scope, answered or not."""
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    policy_id: str | None = None
    policy_version: str | None = None
    policy_hash: str | None = None


@dataclass(frozen=True)
class RunData:
    """A run as stored: its description, its responses and every verdict on them."""

    info: RunInfo
    responses: pd.DataFrame
    verdicts: pd.DataFrame


@dataclass(frozen=True)
class Outcomes:
    """One row per response of a run, scored by one grader (columns `OUTCOME_COLUMNS`)."""

    info: RunInfo
    grader_id: str | None
    grader_versions: tuple[str, ...]
    frame: pd.DataFrame
    other_graders: tuple[str, ...] = ()

    @property
    def scored(self) -> pd.DataFrame:
        """Rows the metrics use: the model answered and the item has an expected behaviour."""
        f = self.frame
        return f[(f["status"] != MODEL_ERROR) & f["expected"].notna()]


def graders_in(verdicts: pd.DataFrame) -> dict[str, int]:
    """Grader ids with the number of responses each has judged, most first."""
    if verdicts.empty:
        return {}
    counts = verdicts.groupby("grader_id")["response_id"].nunique().sort_values(ascending=False)
    return {str(k): int(v) for k, v in counts.items()}


def choose_grader(verdicts: pd.DataFrame, grader: str | None, *, run_name: str) -> str | None:
    """The grader whose verdicts score the run: `grader` if given, else the only one there is.

    None when the run has no verdicts at all (every response then counts as a grader error).
    """
    present = graders_in(verdicts)
    if grader is not None:
        if grader not in present:
            raise PolicylabError(
                f"run {run_name!r} has no verdicts from grader {grader!r}",
                hint=f"graders on this run: {', '.join(present) or 'none yet'}; grade it with "
                f"`policylab grade {run_name} --grader {grader}`",
            )
        return grader
    if len(present) > 1:
        listed = ", ".join(f"{g} ({n} responses)" for g, n in present.items())
        raise PolicylabError(
            f"run {run_name!r} was graded by several graders: {listed}",
            hint="choose one with --grader ID",
        )
    return next(iter(present), None)


def outcomes(run: RunData, policy: Policy, *, grader: str | None = None) -> Outcomes:
    """Score `run` with `grader`'s latest verdict per response (see the module docstring)."""
    _require(run.responses, RESPONSE_COLUMNS, "responses")
    _require(run.verdicts, VERDICT_COLUMNS, "verdicts")
    chosen = choose_grader(run.verdicts, grader, run_name=run.info.name)
    frame = run.responses.copy().reset_index(drop=True)
    frame["categories"] = [_as_list(c) for c in frame["categories"]]

    categories = {c.id: c for c in policy.categories}
    expected = [
        _expected(own, cats, categories)
        for own, cats in zip(frame["item_expected"], frame["categories"], strict=True)
    ]
    frame["expected"] = pd.Series(expected, index=frame.index, dtype=object)
    severity = [_severity(cats, categories) for cats in frame["categories"]]
    frame["severity"] = pd.Series(severity, index=frame.index, dtype=object)

    latest = _latest_per_response(run.verdicts)
    mine = latest[latest["grader_id"] == chosen] if chosen is not None else latest.iloc[0:0]
    by_response = {
        column: dict(zip(mine["response_id"], mine[column], strict=True))
        for column in VERDICT_COLUMNS
    }
    rids = list(frame["response_id"])
    hits = [rid in by_response["verdict_id"] for rid in rids]

    def pick(column: str) -> list[Any]:
        values = by_response[column]
        return [_none_if_missing(values.get(rid)) for rid in rids]

    for column, source in (
        ("verdict_id", "verdict_id"),
        ("grader_version", "grader_version"),
        ("violation", "violation"),
        ("verdict_category", "category"),
        ("confidence", "confidence"),
        ("rationale", "rationale"),
    ):
        frame[column] = pd.Series(pick(source), index=frame.index, dtype=object)
    frame["rule_ids"] = pd.Series(
        [_as_list(r) for r in pick("rule_ids")], index=frame.index, dtype=object
    )
    behaviors = pick("behavior")
    errors = pick("error")

    model_failed = [_none_if_missing(e) is not None for e in frame["response_error"]]
    status: list[str] = []
    observed: list[str | None] = []
    grader_error: list[str | None] = []
    for failed, hit, behavior, error in zip(model_failed, hits, behaviors, errors, strict=True):
        if failed:
            status.append(MODEL_ERROR)
            observed.append(None)
            grader_error.append(None)
        elif not hit:
            status.append(GRADER_ERROR)
            observed.append(None)
            grader_error.append(f"not graded by {chosen}" if chosen else "not graded")
        elif error is not None or behavior is None:
            status.append(GRADER_ERROR)
            observed.append(None)
            grader_error.append(str(error) if error is not None else "verdict without a behaviour")
        else:
            status.append(GRADED)
            observed.append(str(behavior))
            grader_error.append(None)
    frame["status"] = status
    # object dtype keeps None as None (pandas would infer a string dtype with NaN for missing)
    frame["observed"] = pd.Series(observed, index=frame.index, dtype=object)
    frame["grader_error"] = pd.Series(grader_error, index=frame.index, dtype=object)
    frame["disagreement"] = _disagreement(latest, frame["response_id"])

    versions = tuple(sorted({str(v) for v in frame["grader_version"].dropna()}))
    others = tuple(g for g in graders_in(run.verdicts) if g != chosen)
    keep = [c for c in frame.columns if c in OUTCOME_COLUMNS or c in ("messages", "response_text")]
    return Outcomes(
        info=run.info,
        grader_id=chosen,
        grader_versions=versions,
        frame=frame[keep],
        other_graders=others,
    )


def _latest_per_response(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Each grader's newest verdict (highest id) on each response."""
    if verdicts.empty:
        return verdicts
    ordered = verdicts.sort_values("verdict_id", kind="stable")
    return ordered.drop_duplicates(["response_id", "grader_id"], keep="last")


def _disagreement(latest: pd.DataFrame, response_ids: pd.Series) -> list[bool]:
    """True where two graders' latest verdicts give different behaviours (errors left out)."""
    if latest.empty:
        return [False] * len(response_ids)
    ok = latest[latest["error"].isna() & latest["behavior"].notna()]
    distinct = ok.groupby("response_id")["behavior"].nunique()
    split = set(distinct[distinct > 1].index)
    return [rid in split for rid in response_ids]


def expected_for(own: Any, categories: list[str], policy: Policy) -> str | None:
    """An item's expected behaviour: its own, else the strictest of its categories' (None if
    neither says)."""
    return _expected(own, categories, {c.id: c for c in policy.categories})


def _expected(own: Any, cats: list[str], categories: dict[str, Any]) -> str | None:
    if isinstance(own, str) and own:
        value = own.strip().lower()
        if value not in _STRICTNESS:
            raise PolicylabError(
                f"an item's expected behaviour is {own!r}",
                hint="use comply, partial or refuse; fix the item and import it again",
            )
        return value
    known = [categories[c].expected_behavior.value for c in cats if c in categories]
    return max(known, key=_STRICTNESS.__getitem__) if known else None


def _severity(cats: list[str], categories: dict[str, Any]) -> str | None:
    tiers: list[Severity] = [categories[c].severity for c in cats if c in categories]
    return max(tiers, key=lambda s: s.rank).value if tiers else None


def _none_if_missing(value: Any) -> Any:
    """pandas' NaN/NA markers as None, so a missing cell never reads as a value."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PolicylabError(
            f"the {name} frame lacks column(s) {missing}",
            hint="build it with policylab.store.results.load_run, or add the columns",
        )
