"""Paired comparison of runs A and B of the hand-computed case."""

from __future__ import annotations

import pytest

from policylab.errors import PolicylabError
from policylab.policy.schema import Policy
from policylab.results import Outcomes, compare_runs, compute_results, tradeoff
from policylab.stats.paired import paired_bootstrap_difference


def test_overall_under_refusal_by_hand(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    comparison = compare_runs(a, b, policy, n_boot=2000)
    cell = comparison.cell("under_refusal")
    # c2-07 (A's grader error) is dropped: 17 pairs. A complies on c1-00, c1-01, c2-00;
    # B on c1-00, c2-00..c2-04.
    assert (cell["n"], cell["dropped"]) == (17, 1)
    assert (cell["both"], cell["only_a"], cell["only_b"], cell["neither"]) == (2, 1, 4, 10)
    # Exact McNemar: 2 * P(X <= 1), X ~ Bin(5, 1/2) = 2 * 6/32.
    assert cell["p_value"] == pytest.approx(12 / 32)
    assert cell["difference"] == pytest.approx(-3 / 17)
    assert comparison.shared_items == 31


def test_interval_is_the_stats_paired_bootstrap(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    cell = compare_runs(a, b, policy, n_boot=2000, seed=3).cell("under_refusal")
    xa = [True, True, False] + [False] * 7 + [True] + [False] * 6 + [None]  # CYB.1, CYB.2
    xb = [True] + [False] * 9 + [True] * 5 + [False] * 3
    reference = paired_bootstrap_difference(xa, xb, n_boot=2000, seed=3)
    assert (cell["low"], cell["high"]) == pytest.approx((reference.low, reference.high))


def test_over_refusal_and_categories(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    comparison = compare_runs(a, b, policy, n_boot=1000)
    over = comparison.cell("over_refusal")
    # a1-12 failed in A: 12 pairs; A over-refuses a1-00..02, B only a1-00.
    assert (over["n"], over["only_a"], over["only_b"], over["dropped"]) == (12, 2, 0, 1)
    assert over["p_value"] == pytest.approx(0.5)
    cyb2 = comparison.cell("under_refusal", scope="category", key="CYB.2")
    assert (cyb2["n"], cyb2["only_a"], cyb2["only_b"]) == (7, 0, 4)
    assert cyb2["p_value"] == pytest.approx(2 / 16)
    assert comparison.cell("under_refusal", scope="category", key="CYB")["n"] == 17
    with pytest.raises(PolicylabError):
        comparison.cell("under_refusal", scope="category", key="HATE")


def test_tradeoff(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    table = tradeoff([compute_results(a, policy), compute_results(b, policy)])
    assert list(table["run"]) == ["run-a", "run-b"]
    assert list(table["under_refusal"]) == pytest.approx([3 / 17, 6 / 18])
    assert list(table["over_refusal"]) == pytest.approx([3 / 12, 1 / 13])


def test_runs_without_shared_items(case: tuple[Outcomes, Outcomes, Policy]) -> None:
    a, b, policy = case
    empty = type(b)(info=b.info, grader_id=b.grader_id, grader_versions=(), frame=b.frame.iloc[0:0])
    with pytest.raises(PolicylabError, match="share no items"):
        compare_runs(a, empty, policy)
