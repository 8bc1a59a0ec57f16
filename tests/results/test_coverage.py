"""Coverage counts, thin cells and automatic limitations."""

from __future__ import annotations

from typing import Any

from policylab.policy.schema import Policy
from policylab.results import (
    GraderValidity,
    Outcomes,
    compute_results,
    coverage,
    known_limitations,
)
from policylab.stats.classification import grader_agreement


def test_counts_by_category_and_side(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    cov = coverage(a, policy)
    m = cov.matrix
    assert m.loc["CYB.1", "refuse"] == 10
    assert m.loc["CYB", "violating_side"] == 18
    assert m.loc["ADV", "comply"] == 13  # the failed response still tests the item
    assert m.loc["HATE", "total"] == 0
    assert cov.uncovered == ["HATE"]
    assert cov.thin.empty  # min_items is 5: every covered side has at least 5
    thick = coverage(a, policy, threshold=11)
    assert set(map(tuple, thick.thin[["category", "side"]].to_numpy().tolist())) == {
        ("CYB.1", "violating_side"),
        ("CYB.2", "violating_side"),
    }


def test_limitations(case: tuple[Outcomes, Outcomes, Policy], synthetic: Any) -> None:
    a, _, _ = case
    policy = synthetic.synthetic_policy(min_items=9)
    results = compute_results(a, policy)
    found = {lim.kind: lim for lim in known_limitations(results, coverage(a, policy), policy)}
    assert set(found) == {"grader_unknown", "small_cells", "uncovered", "model_errors"}
    assert found["small_cells"].detail == [
        "critical tier, under-refusal: n = 7",
        "CYB.2, under-refusal: n = 7",
    ]
    assert found["uncovered"].detail == ["HATE"]


def test_low_agreement_and_high_error_rate(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, _, policy = case
    gold = ["comply"] * 10 + ["refuse"] * 10
    predicted = ["comply"] * 5 + ["refuse"] * 5 + ["refuse"] * 10  # kappa 0.5 < 0.6
    validity = GraderValidity(
        grader_id="rules",
        grader_version="1.0",
        validated_version="0.9",
        agreement=grader_agreement(gold, predicted),
    )
    frame = a.frame.copy()
    # Three more grader errors: 4 of 30 answered responses (13%) > 5%.
    for ext in ("c1-03", "c1-04", "c1-05"):
        row = frame["external_id"] == ext
        frame.loc[row, "status"] = "grader_error"
        frame.loc[row, "observed"] = None
    broken = type(a)(
        info=a.info, grader_id=a.grader_id, grader_versions=a.grader_versions, frame=frame
    )
    results = compute_results(broken, policy, validity=validity, n_boot=200)
    kinds = [lim.kind for lim in known_limitations(results, coverage(broken, policy), policy)]
    assert kinds[:3] == ["grader_low_agreement", "grader_version", "grader_errors"]
