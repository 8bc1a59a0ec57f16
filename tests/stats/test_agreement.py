"""Fleiss' and Cohen's kappa, percent agreement and per-annotator agreement, against statsmodels,
scikit-learn, hand-computed cases and the HarmBench human labels."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from policylab.errors import PolicylabError
from policylab.stats.agreement import (
    agreement_by,
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    pairwise_cohen_kappa,
    percent_agreement,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "policylab"


def _random_long(seed: int, raters: int, items: int, values: int, missing: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, values, size=items)
    rows = []
    for u in range(items):
        for r in range(raters):
            if rng.random() < missing:
                continue
            value = truth[u] if rng.random() < 0.6 else rng.integers(0, values)
            rows.append((f"item{u}", f"r{r}", f"v{value}"))
    return pd.DataFrame(rows, columns=["item", "rater", "value"])


def test_fleiss_matches_statsmodels_on_complete_data() -> None:
    frame = _random_long(0, raters=5, items=400, values=4, missing=0.0)
    wide = frame.pivot(index="item", columns="rater", values="value")
    table, _ = aggregate_raters(wide.to_numpy())
    result = fleiss_kappa(frame)
    assert result.kappa == pytest.approx(sm_fleiss_kappa(table, method="fleiss"))
    # kappa_j equals Fleiss' kappa of the data dichotomised into j / not j.
    for j, value in enumerate(sorted(frame["value"].unique())):
        binary = np.column_stack([table[:, j], table.sum(axis=1) - table[:, j]])
        assert result.per_value[value] == pytest.approx(sm_fleiss_kappa(binary, method="fleiss"))


def test_fleiss_wikipedia_worked_example() -> None:
    # Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    rows = []
    for u, counts in enumerate(table):
        rater = 0
        for category, count in enumerate(counts):
            for _ in range(count):
                rows.append((u, rater, category + 1))
                rater += 1
    assert (
        round(fleiss_kappa(pd.DataFrame(rows, columns=["item", "rater", "value"])).kappa, 3)
        == 0.210
    )


def test_pairwise_cohen_matches_sklearn_with_missing_ratings() -> None:
    frame = _random_long(1, raters=4, items=300, values=3, missing=0.3)
    wide = frame.pivot(index="item", columns="rater", values="value")
    results = {(p.rater_a, p.rater_b): p for p in pairwise_cohen_kappa(frame)}
    assert len(results) == 6
    for a, b in itertools.combinations(wide.columns, 2):
        both = wide[[a, b]].dropna()
        pair = results[(a, b)]
        assert pair.n_items == len(both)
        assert pair.kappa == pytest.approx(cohen_kappa_score(both[a], both[b]))
        assert pair.percent_agreement == pytest.approx((both[a] == both[b]).mean())


def test_cohen_kappa_function() -> None:
    rng = np.random.default_rng(2)
    a = rng.choice(["x", "y", "z"], size=200)
    b = np.where(rng.random(200) < 0.7, a, rng.choice(["x", "y", "z"], size=200))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(["x", None, "y"], ["x", "y", None]) != cohen_kappa(["x"], ["x"])


def test_percent_agreement_and_per_annotator_hand_computed() -> None:
    # item 1: a=x b=x c=y -> pairs (a,b) agree, (a,c) no, (b,c) no -> 1/3
    # item 2: a=x b=x     -> 1/1
    # item 3: c=y         -> not pairable
    frame = pd.DataFrame(
        [(1, "a", "x"), (1, "b", "x"), (1, "c", "y"), (2, "a", "x"), (2, "b", "x"), (3, "c", "y")],
        columns=["item", "rater", "value"],
    )
    assert percent_agreement(frame) == pytest.approx((1 / 3 + 1) / 2)
    report = agreement_report(frame, n_boot=0)
    by_rater = {a.rater: a for a in report.per_annotator}
    # a: pairs (a,b)@1 agree, (a,c)@1 disagree, (a,b)@2 agree -> 2/3 over 3 pairs, 2 shared items
    assert (by_rater["a"].n_pairs, by_rater["a"].n_items) == (3, 2)
    assert by_rater["a"].percent_agreement == pytest.approx(2 / 3)
    # c: (c,a) and (c,b) at item 1, both disagree; pooled table has no agreement -> kappa from
    # the pooled (c value, other value) table: rows y,y; columns x,x -> po = 0, pe = 0 -> 0.
    assert by_rater["c"].percent_agreement == 0.0
    assert by_rater["c"].kappa == pytest.approx(0.0)
    assert by_rater["c"].n_items == 1


def test_per_annotator_kappa_matches_sklearn_on_pooled_pairs() -> None:
    frame = _random_long(3, raters=4, items=200, values=3, missing=0.25)
    wide = frame.pivot(index="item", columns="rater", values="value")
    report = agreement_report(frame, n_boot=0)
    for annotator in report.per_annotator:
        own, other = [], []
        for peer in wide.columns.drop(annotator.rater):
            both = wide[[annotator.rater, peer]].dropna()
            own += list(both[annotator.rater])
            other += list(both[peer])
        assert annotator.n_pairs == len(own)
        assert annotator.kappa == pytest.approx(cohen_kappa_score(own, other))


def test_agreement_by_category_equals_subsets() -> None:
    frame = _random_long(4, raters=3, items=120, values=2, missing=0.1)
    frame["category"] = frame["item"].str[-1:].map(lambda d: "even" if int(d) % 2 == 0 else "odd")
    reports = agreement_by(frame, "category", n_boot=0)
    assert set(reports) == {"even", "odd"}
    for key, report in reports.items():
        subset = agreement_report(frame[frame["category"] == key], n_boot=0)
        assert report.alpha.alpha == pytest.approx(subset.alpha.alpha)
        assert report.fleiss.kappa == pytest.approx(subset.fleiss.kappa)


def test_agreement_by_rejects_item_in_two_groups() -> None:
    frame = pd.DataFrame(
        {"item": [1, 1], "rater": ["a", "b"], "value": [0, 1], "category": ["x", "y"]}
    )
    with pytest.raises(PolicylabError, match="item 1 has more than one 'category'"):
        agreement_by(frame, "category")


def test_summary_has_exactly_the_headline_keys() -> None:
    report = agreement_report(_random_long(5, 3, 50, 2, 0.0), n_boot=100)
    summary = report.summary()
    assert list(summary) == [
        "krippendorff_alpha", "alpha_ci", "fleiss_kappa", "percent_agreement",
        "pairwise_cohen_kappa", "n_items", "n_raters",
    ]  # fmt: skip
    json.dumps(summary)  # plain JSON types only


@pytest.mark.realdata
def test_harmbench_published_agreement(harmbench_labels: pd.DataFrame) -> None:
    report = agreement_report(harmbench_labels, n_boot=200)
    assert (report.n_items, report.n_raters) == (602, 3)
    assert round(report.fleiss.kappa, 3) == 0.744
    assert round(report.alpha.alpha, 3) == 0.744
    pairs = {(p.rater_a, p.rater_b): round(p.kappa, 3) for p in report.pairwise}
    assert pairs == {
        ("human_0", "human_1"): 0.729,
        ("human_0", "human_2"): 0.783,
        ("human_1", "human_2"): 0.720,
    }
    wide = harmbench_labels.pivot(index="item", columns="rater", values="value")
    table, _ = aggregate_raters(wide.to_numpy())
    assert report.fleiss.kappa == pytest.approx(sm_fleiss_kappa(table, method="fleiss"))


def test_package_never_imports_krippendorff() -> None:
    # The `krippendorff` package is GPL: a test-time reference only.
    imports = re.compile(r"^\s*(?:import\s+krippendorff\b|from\s+krippendorff\b)", re.MULTILINE)
    for path in SRC.rglob("*.py"):
        assert not imports.search(path.read_text(encoding="utf-8")), path
    code = "import sys, policylab.stats; print('krippendorff' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
