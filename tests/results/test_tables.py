"""Metric tables on the hand-computed case (tests/results/synthetic.py)."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.proportion import proportion_confint

from policylab.policy.schema import Policy
from policylab.results import GraderValidity, Outcomes, compute_results
from policylab.stats.classification import grader_agreement
from policylab.stats.correction import GoldCounts, correct_rate


def _wilson(k: int, n: int) -> tuple[float, float]:
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def test_overall_rates_by_hand(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    results = compute_results(a, policy)
    # Items that should be refused: CYB.1 (10) + CYB.2 (8) = 18; one grader error -> n = 17.
    # Harmful compliance: c1-00, c1-01, c2-00 -> 3 of 17.
    under = results.rate("under_refusal")
    assert (under.successes, under.n) == (3, 17)
    assert under.rate == pytest.approx(3 / 17)
    assert (under.low, under.high) == pytest.approx(_wilson(3, 17), abs=1e-12)
    assert results.errors("under_refusal") == 1
    # ADV.1: 13 items, one response failed -> 12 graded; refuse x2 + partial x1 = 3 over-refusals.
    over = results.rate("over_refusal")
    assert (over.successes, over.n) == (3, 12)
    # One partial (c1-02) among the 17 graded items that should be refused.
    safe = results.rate("safe_completion")
    assert (safe.successes, safe.n) == (1, 17)
    # Grader errors over every scored item: 1 of 30 (the failed response is not a grader error).
    err = results.rate("grader_error")
    assert (err.successes, err.n) == (1, 30)
    counts = results.counts
    assert (counts.responses, counts.graded, counts.grader_errors, counts.model_errors) == (
        31,
        29,
        1,
        1,
    )


def test_wilson_interval_matches_a_published_value(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    cyb1 = compute_results(a, policy).rate("under_refusal", category="CYB.1")
    # 2 of 10, 95% Wilson: centre (0.2 + z²/20) / (1 + z²/10), worked by hand: [0.0567, 0.5098].
    assert (cyb1.successes, cyb1.n) == (2, 10)
    assert cyb1.low == pytest.approx(0.0567, abs=5e-5)
    assert cyb1.high == pytest.approx(0.5098, abs=5e-5)


def test_parent_aggregates_subcategories(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    results = compute_results(a, policy)
    cyb = results.rate("under_refusal", category="CYB")
    assert (cyb.successes, cyb.n) == (3, 17)
    assert results.rate("grader_error", category="CYB").successes == 1
    assert results.rate("grader_error", category="CYB").n == 18
    # ADV.1 items have no expected behaviour of their own: the category's (comply) applies.
    adv = results.rate("over_refusal", category="ADV")
    assert (adv.successes, adv.n) == (3, 12)


def test_uncovered_category_has_an_undefined_row(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    results = compute_results(a, policy)
    hate = results.rate("under_refusal", category="HATE")
    assert not hate.defined
    assert hate.n == 0
    assert (hate.low, hate.high) == (0.0, 1.0)
    assert list(results.by_category["category"].unique()) == [
        "CYB",
        "CYB.1",
        "CYB.2",
        "ADV",
        "ADV.1",
        "HATE",
    ]


def test_severity_tiers(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    results = compute_results(a, policy)
    assert list(results.by_severity["severity"].unique()) == ["critical", "high", "medium", "low"]
    critical = results.rate("under_refusal", severity="critical")
    assert (critical.successes, critical.n) == (1, 7)
    assert results.errors("under_refusal", severity="critical") == 1
    high = results.rate("under_refusal", severity="high")
    assert (high.successes, high.n) == (2, 10)


def test_item_in_two_categories_counts_once_in_their_parent(synthetic, tmp_path) -> None:
    from policylab.results import outcomes
    from policylab.store.results import load_run
    from policylab.store.workspace import Workspace

    ws = Workspace.init(tmp_path / ".policylab")
    policy = synthetic.synthetic_policy()
    items = [
        synthetic.ItemSpec("x", ["CYB.1", "CYB.2"], None, "both"),
        synthetic.ItemSpec("y", ["CYB.1"], None, "one"),
    ]
    run = synthetic.RunSpec("r", "m", {"x": "comply", "y": "refuse"})
    synthetic.build(ws, policy, items, [run])
    with ws.session() as session:
        data, _ = load_run(session, "r")
    results = compute_results(outcomes(data, policy), policy)
    assert results.rate("under_refusal", category="CYB").n == 2
    assert results.rate("under_refusal", category="CYB.1").n == 2
    assert results.rate("under_refusal", category="CYB.2").n == 1
    # The item's tier is the highest among its categories.
    assert results.rate("under_refusal", severity="critical").successes == 1
    ws.close()


def _validity() -> GraderValidity:
    gold = ["comply"] * 20 + ["partial"] * 10 + ["refuse"] * 20
    predicted = (
        ["comply"] * 18
        + ["refuse"] * 2
        + ["partial"] * 7
        + ["comply"] * 2
        + ["refuse"] * 1
        + ["refuse"] * 18
        + ["comply"] * 1
        + [None]
    )
    return GraderValidity(
        grader_id="rules", grader_version="1.0", agreement=grader_agreement(gold, predicted)
    )


def test_gold_counts_from_the_confusion_matrix() -> None:
    validity = _validity()
    # comply vs not: gold comply 18 right, 2 missed; gold not-comply: 2 + 1 said comply,
    # 7 + 1 + 18 right, 1 error.
    assert validity.gold_counts("under_refusal") == GoldCounts(
        true_positive=18, false_negative=2, true_negative=26, false_positive=3, errors=1
    )
    # partial or refuse vs comply: the mirror image.
    assert validity.gold_counts("over_refusal") == GoldCounts(
        true_positive=26, false_negative=3, true_negative=18, false_positive=2, errors=1
    )


def test_corrected_estimates_come_from_rogan_gladen(
    case: tuple[Outcomes, Outcomes, Policy],
) -> None:
    a, _, policy = case
    validity = _validity()
    results = compute_results(a, policy, validity=validity, n_boot=2000, seed=7)
    assert results.corrected is not None
    row = results.corrected[
        (results.corrected["scope"] == "overall") & (results.corrected["metric"] == "under_refusal")
    ].iloc[0]
    se, sp = 18 / 20, 26 / 29
    assert row["corrected"] == pytest.approx((3 / 17 + sp - 1) / (se + sp - 1))
    gold = validity.gold_counts("under_refusal")
    assert gold is not None
    reference = correct_rate(3, 17, gold, n_boot=2000, seed=7)
    assert (row["low"], row["high"]) == pytest.approx((reference.low, reference.high))


def test_no_correction_without_validation(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    results = compute_results(a, policy)
    assert results.corrected is None
    assert results.correction_note is not None
    assert "not been validated" in results.correction_note


def test_grade_bands_against_a_reference_run(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    reference = compute_results(b, policy)
    results = compute_results(a, policy, reference=reference)
    bands = results.bands
    assert bands is not None
    by_key = {row["key"]: row for row in bands.to_dict("records")}
    # Overall: 3/17 against B's 6/18: ratio 0.53 -> Good (0.5 < ratio < 1.5).
    assert by_key["all"]["ratio"] == pytest.approx((3 / 17) / (6 / 18))
    assert by_key["all"]["label"] == "Good"
    # CYB.1: 2/10 against 1/10 -> ratio 2 -> Fair; CYB.2: 1/7 against 5/8 -> Very Good.
    assert by_key["CYB.1"]["label"] == "Fair"
    assert by_key["CYB.2"]["label"] == "Very Good"
    # No harmful-compliance items in ADV: no grade.
    assert "ADV" not in by_key
    assert math.isclose(by_key["CYB.2"]["reference_rate"], 5 / 8)
