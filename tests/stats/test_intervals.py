"""Wilson intervals against statsmodels and Newcombe's published worked examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from policylab.errors import PolicylabError
from policylab.stats.intervals import Rate, wilson, wilson_interval, wilson_intervals


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion:
        # comparison of seven methods. Statistics in Medicine 17, 857-872, Table II (method 3).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_newcombe_published_examples(k: int, n: int, low: float, high: float) -> None:
    rate = wilson(k, n)
    assert rate.low == pytest.approx(low, abs=5e-5)
    assert rate.high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_matches_statsmodels_wilson(confidence: float) -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 2000, size=300)
    k = rng.integers(0, n + 1)
    low, high = wilson_intervals(k, n, confidence=confidence)
    ref_low, ref_high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)


def test_extremes_are_exact() -> None:
    # k = 0: upper bound z^2 / (n + z^2); k = n: lower bound n / (n + z^2) (hand-derived).
    z2 = 1.959963984540054**2
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z2)), 1.0)


def test_empty_rate_is_undefined_not_zero() -> None:
    rate = wilson(0, 0)
    assert not rate.defined
    assert math.isnan(rate.rate)
    assert (rate.low, rate.high) == (0.0, 1.0)
    assert json.loads(rate.model_dump_json())["rate"] is None
    assert "n/a" in str(rate)


def test_rate_fields_and_text() -> None:
    rate = wilson(3, 12, confidence=0.9)
    assert isinstance(rate, Rate)
    assert (rate.successes, rate.n, rate.rate, rate.method) == (3, 12, 0.25, "wilson")
    assert rate.defined
    assert rate.confidence == 0.9
    assert str(rate).startswith("25.0% [")


@pytest.mark.parametrize(("k", "n"), [(5, 3), (-1, 3), (1.5, 3)])
def test_bad_counts_raise(k: float, n: int) -> None:
    with pytest.raises(PolicylabError):
        wilson(k, n)  # type: ignore[arg-type]


def test_bad_confidence_raises() -> None:
    with pytest.raises(PolicylabError, match="confidence"):
        wilson(1, 2, confidence=95)
