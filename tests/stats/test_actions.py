"""Action metrics per rule, against hand-counted cases and statsmodels' Wilson interval."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from policylab.errors import PolicylabError
from policylab.stats.actions import ACTION_METRICS, action_metrics


def _row(rule: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "rule_id": rule,
        "in_scope": True,
        "graded": True,
        "violated": False,
        "expected": "comply",
        "refused": False,
        "confirmation": "none",
    }
    return base | fields


# Rule PAY: 7 transcripts in scope, 1 out of scope, 1 in scope without a verdict.
#   violated: 2 of the 6 graded in scope (t1, t2)
#   benign (expected comply): t1..t4 graded -> refused: t4 -> 1 of 4; the ungraded one is benign
#   confirmation arose: t1 unconfirmed, t2 unconfirmed, t3 confirmed, t5 asked -> 2 of 4 complied
ROWS = [
    _row("PAY", violated=True, confirmation="unconfirmed"),  # t1
    _row("PAY", violated=True, confirmation="unconfirmed"),  # t2
    _row("PAY", confirmation="confirmed"),  # t3
    _row("PAY", refused=True),  # t4
    _row("PAY", expected="refuse", confirmation="asked"),  # t5
    _row("PAY", expected="partial", refused=True),  # t6
    _row("PAY", graded=False, violated=None, refused=None),  # t7: grader error
    _row("PAY", in_scope=False, violated=True, confirmation="unconfirmed"),  # out of scope
    _row("DEL"),
    _row("DEL", graded=False, expected="refuse"),
]


def _cell(frame: pd.DataFrame, rule: str, metric: str) -> pd.Series:
    return frame[(frame["rule_id"] == rule) & (frame["metric"] == metric)].iloc[0]


@pytest.mark.parametrize(
    ("rule", "metric", "n", "k", "errors"),
    [
        ("PAY", "unsafe_action", 6, 2, 1),
        ("PAY", "over_refusal", 4, 1, 1),
        ("PAY", "confirmation_compliance", 4, 2, 0),
        ("DEL", "unsafe_action", 1, 0, 1),
        ("DEL", "over_refusal", 1, 0, 0),
        ("DEL", "confirmation_compliance", 0, 0, 0),
    ],
)
def test_counts_and_wilson_intervals(rule: str, metric: str, n: int, k: int, errors: int) -> None:
    frame = action_metrics(pd.DataFrame(ROWS))
    cell = _cell(frame, rule, metric)
    assert (cell["n"], cell["k"], cell["errors"]) == (n, k, errors)
    if n == 0:
        assert math.isnan(cell["rate"])
        assert (cell["low"], cell["high"]) == (0.0, 1.0)
        return
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert cell["rate"] == pytest.approx(k / n)
    assert cell["low"] == pytest.approx(low, abs=1e-12)
    assert cell["high"] == pytest.approx(high, abs=1e-12)


def test_layout() -> None:
    frame = action_metrics(pd.DataFrame(ROWS))
    assert list(frame.columns) == ["rule_id", "metric", "n", "k", "rate", "low", "high", "errors"]
    assert list(frame["rule_id"]) == ["PAY"] * 3 + ["DEL"] * 3
    assert list(frame["metric"]) == list(ACTION_METRICS) * 2


def test_reference_figures() -> None:
    # 2 of 6: Wilson 95% interval (0.0968, 0.7000), worked by hand from Wilson (1927).
    cell = _cell(action_metrics(pd.DataFrame(ROWS)), "PAY", "unsafe_action")
    assert (round(cell["low"], 4), round(cell["high"], 4)) == (0.0968, 0.7)


def test_bad_input() -> None:
    with pytest.raises(PolicylabError, match="need the columns"):
        action_metrics(pd.DataFrame([{"rule_id": "x"}]))
    with pytest.raises(PolicylabError, match="unknown confirmation"):
        action_metrics(pd.DataFrame([_row("X", confirmation="maybe")]))
    empty = action_metrics(pd.DataFrame(columns=list(_row("x"))))
    assert empty.empty
