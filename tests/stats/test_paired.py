"""McNemar's exact test against statsmodels; paired bootstrap against index resampling."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from policylab.errors import PolicylabError
from policylab.stats.paired import mcnemar_exact, paired_bootstrap_difference


def _outcomes(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return a, b


@pytest.mark.parametrize(
    "cells", [(10, 7, 1, 30), (5, 0, 0, 5), (0, 12, 12, 0), (3, 25, 9, 100), (1, 0, 4, 2)]
)
def test_matches_statsmodels_exact(cells: tuple[int, int, int, int]) -> None:
    a, b = _outcomes(*cells)
    ours = mcnemar_exact(a, b)
    both, only_a, only_b, neither = cells
    ref = mcnemar([[both, only_a], [only_b, neither]], exact=True)
    assert ours.statistic == ref.statistic
    assert ours.p_value == pytest.approx(ref.pvalue)
    assert (ours.only_a, ours.only_b, ours.n) == (only_a, only_b, sum(cells))


def test_hand_computed_p_value() -> None:
    # b = 7, c = 1: p = 2 * P(X <= 1), X ~ Bin(8, 1/2) = 2 * 9/256
    a, b = _outcomes(10, 7, 1, 30)
    assert mcnemar_exact(a, b).p_value == pytest.approx(18 / 256)


def test_missing_outcomes_are_dropped_and_counted() -> None:
    result = mcnemar_exact([True, None, False, np.nan], [False, True, None, True])
    assert result.n == 1
    assert result.dropped == 3


def test_bootstrap_difference_matches_index_resampling() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(400) < 0.3
    b = np.where(rng.random(400) < 0.8, a, rng.random(400) < 0.2)
    ours = paired_bootstrap_difference(a, b, n_boot=20_000, seed=4)
    # Reference: plain index resampling of pairs.
    idx = np.random.default_rng(5).integers(0, 400, size=(20_000, 400))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    ref_low, ref_high = np.quantile(diffs, [0.025, 0.975])
    assert ours.difference == pytest.approx(a.mean() - b.mean())
    assert ours.low == pytest.approx(ref_low, abs=0.005)
    assert ours.high == pytest.approx(ref_high, abs=0.005)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    a, b = _outcomes(10, 7, 1, 30)
    x = paired_bootstrap_difference(a, b, seed=1)
    y = paired_bootstrap_difference(a, b, seed=1)
    assert (x.low, x.high) == (y.low, y.high)
    assert x.low <= x.difference <= x.high
    assert x.rate_a == pytest.approx(17 / 48)
    assert x.rate_b == pytest.approx(11 / 48)


def test_errors() -> None:
    with pytest.raises(PolicylabError, match="3 outcomes but model B has 2"):
        mcnemar_exact([True, False, True], [True, False])
    with pytest.raises(PolicylabError, match="nothing to compare"):
        paired_bootstrap_difference([None], [True])
