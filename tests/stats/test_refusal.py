"""Refusal metrics on hand-counted cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from policylab.core import Behavior, Severity
from policylab.errors import PolicylabError
from policylab.stats.intervals import wilson
from policylab.stats.refusal import METRICS, refusal_metrics

# Ten items, counted by hand:
#   expected refuse  (4): observed comply, refuse, partial, None
#   expected partial (3): observed comply, partial, None
#   expected comply  (3): observed comply, refuse, partial
EXPECTED = ["refuse"] * 4 + ["partial"] * 3 + ["comply"] * 3
OBSERVED = [
    "comply",
    "refuse",
    "partial",
    None,
    "comply",
    "partial",
    None,
    "comply",
    "refuse",
    "partial",
]


def _row(frame: pd.DataFrame, metric: str) -> pd.Series:
    return frame.loc[frame["metric"] == metric].iloc[0]


def test_overall_counts() -> None:
    out = refusal_metrics(EXPECTED, OBSERVED)
    assert list(out["metric"]) == list(METRICS)
    under = _row(out, "under_refusal")
    # 5 graded items expected refuse/partial; 2 complied (one refuse, one partial); 2 errors.
    assert (under["n"], under["k"], under["errors"]) == (5, 2, 2)
    assert under["rate"] == pytest.approx(0.4)
    reference = wilson(2, 5)
    assert (under["low"], under["high"]) == pytest.approx((reference.low, reference.high))
    over = _row(out, "over_refusal")
    assert (over["n"], over["k"], over["errors"]) == (3, 2, 0)
    safe = _row(out, "safe_completion")
    assert (safe["n"], safe["k"], safe["errors"]) == (5, 2, 2)
    err = _row(out, "grader_error")
    assert (err["n"], err["k"], err["errors"]) == (10, 2, 2)


def test_errors_never_count_as_safe() -> None:
    # Every harmful item errors: the under-refusal rate is undefined, not 0%.
    out = refusal_metrics(["refuse", "refuse", "comply"], [None, None, "comply"])
    under = _row(out, "under_refusal")
    assert under["n"] == 0
    assert under["errors"] == 2
    assert math.isnan(under["rate"])
    assert (under["low"], under["high"]) == (0.0, 1.0)


def test_grouping_by_category_and_severity() -> None:
    category = ["cyber"] * 5 + ["hate"] * 5
    severity = [Severity.HIGH, Severity.LOW] * 5
    out = refusal_metrics(
        [Behavior(x) for x in EXPECTED], OBSERVED, by={"category": category, "severity": severity}
    )
    assert list(out.columns) == [
        "category", "severity", "metric", "n", "k", "rate", "low", "high", "errors",
    ]  # fmt: skip
    assert len(out) == 4 * len(METRICS)
    # cyber/high = items 0, 2, 4: expected refuse, refuse, partial;
    # observed comply, partial, comply
    cyber_high = out[(out["category"] == "cyber") & (out["severity"] == "high")]
    under = _row(cyber_high, "under_refusal")
    assert (under["n"], under["k"]) == (3, 2)
    # Sum over groups equals the overall counts.
    overall = refusal_metrics(EXPECTED, OBSERVED)
    summed = out.groupby("metric")[["n", "k", "errors"]].sum()
    for metric in METRICS:
        assert tuple(summed.loc[metric]) == tuple(_row(overall, metric)[["n", "k", "errors"]])


def test_grouping_frame_with_its_own_index_is_positional() -> None:
    keys = pd.DataFrame({"category": ["a", "b"]}, index=[10, 3])
    out = refusal_metrics(["refuse", "refuse"], ["comply", "refuse"], by=keys)
    a = out[(out["category"] == "a") & (out["metric"] == "under_refusal")].iloc[0]
    assert (a["n"], a["k"]) == (1, 1)


def test_nan_is_a_grader_error() -> None:
    out = refusal_metrics(["refuse", "refuse"], ["refuse", np.nan])
    assert _row(out, "grader_error")["k"] == 1


def test_bad_behaviour_names_position() -> None:
    with pytest.raises(PolicylabError, match=r"observed\[1\] is 'maybe'"):
        refusal_metrics(["refuse", "refuse"], ["refuse", "maybe"])
    with pytest.raises(PolicylabError, match=r"expected\[0\] is missing"):
        refusal_metrics([None], ["refuse"])


def test_length_mismatch() -> None:
    with pytest.raises(PolicylabError, match="2 items but observed has 1"):
        refusal_metrics(["refuse", "comply"], ["refuse"])
    with pytest.raises(PolicylabError, match="grouping keys have 1 rows"):
        refusal_metrics(["refuse", "comply"], ["refuse", "comply"], by={"c": ["x"]})
