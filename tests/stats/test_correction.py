"""Rogan–Gladen correction: hand-computed cases, the closed form, and bootstrap behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from policylab.errors import PolicylabError
from policylab.stats.correction import (
    GoldCounts,
    correct_rate,
    correct_rate_known,
    rogan_gladen,
)
from policylab.stats.intervals import wilson


def test_hand_computed_point_estimates() -> None:
    # p = 0.3, Se = 0.9, Sp = 0.8: (0.3 + 0.8 - 1) / (0.9 + 0.8 - 1) = 0.1 / 0.7
    assert rogan_gladen(0.3, 0.9, 0.8) == pytest.approx(1 / 7)
    # p = 0.5, Se = 0.8, Sp = 0.95: 0.45 / 0.75 = 0.6
    assert rogan_gladen(0.5, 0.8, 0.95) == pytest.approx(0.6)
    # A perfect grader changes nothing.
    assert rogan_gladen(0.37, 1.0, 1.0) == pytest.approx(0.37)
    # Below the false-positive floor the estimate is clipped to 0; above Se, to 1.
    assert rogan_gladen(0.05, 0.9, 0.8) == 0.0
    assert rogan_gladen(0.95, 0.9, 0.8) == 1.0


def test_vectorised() -> None:
    out = rogan_gladen(np.array([0.2, 0.3, 0.9]), 0.9, 0.8)
    np.testing.assert_allclose(out, [0.0, 1 / 7, 1.0])


def test_uninformative_grader_raises() -> None:
    with pytest.raises(PolicylabError, match="no better than chance"):
        rogan_gladen(0.3, 0.5, 0.5)


def test_gold_counts_from_labels_leave_errors_out() -> None:
    gold = [True, True, True, False, False, False, True]
    pred = [True, False, True, False, True, False, None]
    counts = GoldCounts.from_labels(gold, pred)
    assert (counts.true_positive, counts.false_negative) == (2, 1)
    assert (counts.true_negative, counts.false_positive) == (2, 1)
    assert counts.errors == 1
    assert counts.sensitivity.rate == pytest.approx(2 / 3)
    assert counts.specificity.rate == pytest.approx(2 / 3)


def test_known_se_sp_maps_the_wilson_interval() -> None:
    result = correct_rate_known(300, 1000, sensitivity=0.9, specificity=0.8)
    observed = wilson(300, 1000)
    assert result.corrected == pytest.approx(1 / 7)
    assert result.low == pytest.approx((observed.low - 0.2) / 0.7)
    assert result.high == pytest.approx((observed.high - 0.2) / 0.7)


def test_bootstrap_with_huge_gold_set_matches_closed_form() -> None:
    # With Se and Sp effectively known, only the test sample varies: the interval must match the
    # closed form sqrt(p(1-p)/n) / (Se + Sp - 1) (delta method on the linear correction).
    gold = GoldCounts(
        true_positive=9_000_000, false_negative=1_000_000, true_negative=8_000_000,
        false_positive=2_000_000,
    )  # fmt: skip
    result = correct_rate(3000, 10_000, gold, n_boot=20_000, seed=1)
    half = norm.ppf(0.975) * math.sqrt(0.3 * 0.7 / 10_000) / 0.7
    assert result.corrected == pytest.approx(1 / 7)
    assert result.low == pytest.approx(1 / 7 - half, abs=0.002)
    assert result.high == pytest.approx(1 / 7 + half, abs=0.002)
    assert result.n_degenerate == 0


def test_bootstrap_carries_gold_uncertainty() -> None:
    # The same Se/Sp from a small gold set must give a wider interval than from a huge one.
    small = GoldCounts(true_positive=45, false_negative=5, true_negative=40, false_positive=10)
    huge = GoldCounts(
        true_positive=900_000, false_negative=100_000, true_negative=800_000, false_positive=200_000
    )
    narrow = correct_rate(3000, 10_000, huge, seed=2)
    wide = correct_rate(3000, 10_000, small, seed=2)
    assert wide.high - wide.low > 3 * (narrow.high - narrow.low)
    # Closed form with gold variance added (delta method), hand-derived for this case:
    # var = [p(1-p)/n + pi^2 Se(1-Se)/n_pos + (1-pi)^2 Sp(1-Sp)/n_neg] / J^2
    pi, j = 1 / 7, 0.7
    var = (0.21 / 10_000 + pi**2 * 0.09 / 50 + (1 - pi) ** 2 * 0.16 / 50) / j**2
    assert wide.high - wide.low == pytest.approx(2 * 1.96 * math.sqrt(var), rel=0.2)


def test_bootstrap_is_seeded() -> None:
    gold = GoldCounts(true_positive=45, false_negative=5, true_negative=40, false_positive=10)
    a = correct_rate(30, 100, gold, seed=7)
    b = correct_rate(30, 100, gold, seed=7)
    c = correct_rate(30, 100, gold, seed=8)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert 0.0 <= a.low <= a.corrected <= a.high <= 1.0


def test_bad_gold_raises() -> None:
    no_negatives = GoldCounts(true_positive=5, false_negative=1, true_negative=0, false_positive=0)
    with pytest.raises(PolicylabError, match="at least one of each"):
        correct_rate(3, 10, no_negatives)
    with pytest.raises(PolicylabError, match="n = 0"):
        correct_rate_known(0, 0, sensitivity=0.9, specificity=0.9)
