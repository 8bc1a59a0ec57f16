"""Krippendorff's alpha against Krippendorff's published example, the `krippendorff` package (a
GPL test-time reference only) on random and real data, and a naive bootstrap."""

from __future__ import annotations

import tracemalloc

import krippendorff
import numpy as np
import pandas as pd
import pytest

from policylab.errors import PolicylabError
from policylab.stats.alpha import alpha_from_counts, krippendorff_alpha

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
# 12 units, missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
]


def _long(matrix: list[list[float]] | np.ndarray) -> pd.DataFrame:
    """raters x items matrix (NaN = missing) -> long format."""
    arr = np.asarray(matrix, dtype=float)
    raters, items = np.nonzero(~np.isnan(arr))
    return pd.DataFrame({"item": items, "rater": raters, "value": arr[raters, items]})


def _random_matrix(seed: int, raters: int, items: int, values: int, missing: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, values, size=items)
    noise = rng.integers(0, values, size=(raters, items))
    matrix = np.where(rng.random((raters, items)) < 0.6, truth, noise).astype(float)
    matrix[rng.random((raters, items)) < missing] = np.nan
    return matrix


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_2011_published_values(level: str, published: float) -> None:
    result = krippendorff_alpha(_long(K2011), level=level, n_boot=0)
    assert round(result.alpha, 3) == published
    reference = krippendorff.alpha(reliability_data=K2011, level_of_measurement=level)
    assert result.alpha == pytest.approx(reference, abs=1e-12)
    assert (result.n_items, result.n_pairable_items, result.n_pairable_values) == (12, 11, 40)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_package_on_random_data(level: str, seed: int) -> None:
    matrix = _random_matrix(seed, raters=6, items=300, values=5, missing=0.4)
    ours = krippendorff_alpha(_long(matrix), level=level, n_boot=0).alpha
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    assert ours == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_from_counts_matches_package_value_counts(level: str) -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 3, size=(200, 6))
    ours = alpha_from_counts(counts, level=level)
    reference = krippendorff.alpha(value_counts=counts, level_of_measurement=level)
    assert ours == pytest.approx(reference, abs=1e-10)


def test_interval_with_explicit_values() -> None:
    counts = np.array([[2, 0, 1], [0, 3, 0], [1, 1, 1], [0, 0, 2]])
    values = [0.5, 2.0, 10.0]
    reference = krippendorff.alpha(
        value_counts=counts, value_domain=values, level_of_measurement="interval"
    )
    assert alpha_from_counts(counts, level="interval", values=values) == pytest.approx(reference)


def test_interval_many_distinct_values_matches_package() -> None:
    # ~250 distinct values: the package builds items x values x values arrays, so keep it small.
    rng = np.random.default_rng(9)
    truth = rng.normal(size=100)
    matrix = np.round(truth + rng.normal(scale=0.5, size=(3, 100)), 3)
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    ours = krippendorff_alpha(_long(matrix), level="interval", n_boot=0).alpha
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    assert ours == pytest.approx(reference, abs=1e-9)


def test_interval_large_values_do_not_lose_precision() -> None:
    # Shifting every value leaves alpha unchanged; big offsets test the centring.
    matrix = _random_matrix(3, raters=4, items=200, values=7, missing=0.3)
    base = krippendorff_alpha(_long(matrix), level="interval", n_boot=0).alpha
    shifted = krippendorff_alpha(_long(matrix + 1e9), level="interval", n_boot=0).alpha
    assert shifted == pytest.approx(base, abs=1e-9)


def test_interval_memory_is_linear_in_distinct_values() -> None:
    # 10,000 distinct values over 30,000 ratings: a values x values float matrix alone would be
    # 800 MB; the algebraic form needs a few MB.
    rng = np.random.default_rng(11)
    n_items = 10_000
    values = rng.permutation(10_000).astype(float)
    frame = pd.DataFrame(
        {
            "item": np.repeat(np.arange(n_items), 3),
            "rater": np.tile(np.arange(3), n_items),
            "value": values[rng.integers(0, 10_000, size=3 * n_items)],
        }
    )
    tracemalloc.start()
    result = krippendorff_alpha(frame, level="interval", n_boot=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(result.alpha) < 0.05  # random values: no agreement
    assert peak < 100 * 2**20


def test_bootstrap_equals_naive_item_resampling() -> None:
    # Every item has >= 2 ratings, so the bootstrap resamples all 60 items; replicate i draws
    # rng.integers(0, 60, size=60, dtype=np.int32), which we replay through the package.
    matrix = _random_matrix(4, raters=3, items=60, values=3, missing=0.0)
    result = krippendorff_alpha(_long(matrix), level="nominal", n_boot=300, seed=42)
    rng = np.random.default_rng(42)
    picks = [rng.integers(0, 60, size=60, dtype=np.int32) for _ in range(300)]
    draws = [
        krippendorff.alpha(reliability_data=matrix[:, idx], level_of_measurement="nominal")
        for idx in picks
    ]
    low, high = np.quantile(draws, [0.025, 0.975])
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_bootstrap_ordinal_interval_are_seeded_and_bracket(level: str) -> None:
    frame = _long(_random_matrix(6, raters=4, items=150, values=4, missing=0.3))
    a = krippendorff_alpha(frame, level=level, n_boot=200, seed=1)
    b = krippendorff_alpha(frame, level=level, n_boot=200, seed=1)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low is not None
    assert a.high is not None
    assert a.low < a.alpha < a.high


def test_ordinal_labels_with_order_equal_numeric_codes() -> None:
    frame = _long(_random_matrix(8, raters=3, items=100, values=3, missing=0.2))
    names = {0.0: "comply", 1.0: "partial", 2.0: "refuse"}
    labelled = frame.assign(value=frame["value"].map(names))
    numeric = krippendorff_alpha(frame, level="ordinal", n_boot=0).alpha
    ordered = krippendorff_alpha(
        labelled, level="ordinal", order=["comply", "partial", "refuse"], n_boot=0
    ).alpha
    assert ordered == pytest.approx(numeric)


def test_perfect_and_undefined() -> None:
    perfect = _long([[1, 2, 3, 1], [1, 2, 3, 1]])
    assert krippendorff_alpha(perfect, n_boot=0).alpha == pytest.approx(1.0)
    constant = _long([[1, 1, 1], [1, 1, 1]])
    assert np.isnan(krippendorff_alpha(constant, n_boot=0).alpha)


def test_bad_input_messages() -> None:
    frame = pd.DataFrame({"item": [1, 1], "rater": ["a", "b"], "value": ["x", "y"]})
    with pytest.raises(PolicylabError, match="interval data must be numbers"):
        krippendorff_alpha(frame, level="interval")
    with pytest.raises(PolicylabError, match="order is unknown"):
        krippendorff_alpha(frame, level="ordinal")
    with pytest.raises(PolicylabError, match=r"labels.csv: no column 'label'.*item, rater, value"):
        krippendorff_alpha(frame, value="label", source="labels.csv")
    duplicated = pd.DataFrame({"item": [1, 1], "rater": ["a", "a"], "value": [0, 1]})
    with pytest.raises(PolicylabError, match="rated item 1 more than once"):
        krippendorff_alpha(duplicated)
    with pytest.raises(PolicylabError, match="level must be one of"):
        krippendorff_alpha(frame, level="ratio")


@pytest.mark.realdata
def test_harmbench_real_data(harmbench_labels: pd.DataFrame) -> None:
    frame = harmbench_labels
    result = krippendorff_alpha(frame, n_boot=500, seed=0)
    assert round(result.alpha, 3) == 0.744
    matrix = frame.pivot(index="rater", columns="item", values="value").to_numpy(dtype=float)
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert result.alpha == pytest.approx(reference, abs=1e-12)
    assert result.n_items == 602
    assert result.low is not None
    assert result.high is not None
    assert result.low < result.alpha < result.high
