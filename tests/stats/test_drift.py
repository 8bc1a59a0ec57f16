from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare

from policylab.stats.drift import (
    categorical_drift,
    chi_square_drift,
    jensen_shannon_distance,
    p_chart,
)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ([50, 30, 20], [45, 35, 20]),
        ([5, 5], [8, 3]),
        ([400, 300, 200, 100], [100, 200, 300, 400]),
        ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
    ],
)
def test_chi_square_matches_scipy(reference: list[int], current: list[int]) -> None:
    ref, cur = np.array(reference, float), np.array(current, float)
    expected = chisquare(cur, ref * cur.sum() / ref.sum())
    statistic, p = chi_square_drift(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_by_hand() -> None:
    # 5 a + 5 b against 8 a + 3 b: expected 5.5 each, statistic 2 · 2.5² / 5.5 = 2.2727 on one
    # degree of freedom, p = 0.13167. (Evidently's early `chi_stat_test` swapped observed and
    # expected and got 0.11690; its current one agrees with this.)
    statistic, p = chi_square_drift([5, 5], [8, 3])
    assert statistic == pytest.approx(2 * 2.5**2 / 5.5)
    assert p == pytest.approx(0.131668, abs=1e-6)


def test_a_category_new_in_the_current_window_is_drift() -> None:
    statistic, p = chi_square_drift([10, 10, 0], [10, 10, 1])
    assert math.isinf(statistic)
    assert p == 0.0
    # A category in neither window is ignored.
    assert chi_square_drift([10, 10, 0], [12, 8, 0]) == pytest.approx(chisquare([12, 8]))


@pytest.mark.parametrize(
    ("p", "q"),
    [([1, 2, 3], [3, 2, 1]), ([10, 0, 5], [0, 10, 5]), ([0.2, 0.8], [0.2, 0.8]), ([7, 1], [1, 7])],
)
def test_jensen_shannon_matches_scipy(p: list[float], q: list[float]) -> None:
    assert jensen_shannon_distance(p, q) == pytest.approx(float(jensenshannon(p, q)), abs=1e-12)


def test_disjoint_distributions_are_at_the_maximum_distance() -> None:
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)))


def test_evidently_default_choice_of_test() -> None:
    small = categorical_drift({"a": 500, "b": 500}, {"a": 80, "b": 30})
    assert small.method == "chi_square"
    assert small.threshold == 0.05
    assert small.drifted
    assert small.score == pytest.approx(chisquare([80, 30], [55, 55]).pvalue)
    large = categorical_drift({"a": 600, "b": 401}, {"a": 60, "b": 40})
    assert large.method == "jensen_shannon"
    assert large.threshold == 0.1
    assert not large.drifted
    assert large.score == pytest.approx(float(jensenshannon([600, 401], [60, 40])))
    moved = categorical_drift({"a": 900, "b": 100, "c": 1}, {"a": 50, "b": 50})
    assert moved.drifted
    assert moved.moved()[0][0] in {"a", "b"}
    assert moved.categories == ("a", "b", "c")


def test_p_chart_by_hand() -> None:
    # p̄ = 0.1; n = 100: 3σ = 3·sqrt(0.1·0.9/100) = 0.09 -> limits [0.01, 0.19].
    # n = 25: 3σ = 0.18 -> [0, 0.28] after clipping.
    chart = p_chart([5, 20, 2, 1, 8], [100, 100, 25, 100, 25], centre=0.1)
    assert chart.centre == 0.1
    np.testing.assert_allclose(chart.lower, [0.01, 0.01, 0.0, 0.01, 0.0], atol=1e-12)
    np.testing.assert_allclose(chart.upper, [0.19, 0.19, 0.28, 0.19, 0.28], atol=1e-12)
    np.testing.assert_allclose(chart.rate, [0.05, 0.20, 0.08, 0.01, 0.32])
    assert chart.out_of_control.tolist() == [False, True, False, False, True]


def test_p_chart_default_centre_is_the_pooled_rate_and_empty_windows_are_in_control() -> None:
    chart = p_chart([3, 0, 7], [50, 0, 50])
    assert chart.centre == pytest.approx(0.1)
    assert chart.out_of_control.tolist() == [False, False, False]
    with pytest.raises(ValueError, match="events and totals"):
        p_chart([5], [4])
