"""Grader-versus-gold agreement against scikit-learn, with grader errors counted as wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from policylab.errors import PolicylabError
from policylab.stats.classification import grader_agreement

LABELS = ["comply", "partial", "refuse"]


def _random_case(seed: int, n: int = 500) -> tuple[list[str], list[str | None]]:
    rng = np.random.default_rng(seed)
    gold = rng.choice(LABELS, size=n).tolist()
    pred: list[str | None] = [g if rng.random() < 0.7 else str(rng.choice(LABELS)) for g in gold]
    for i in rng.choice(n, size=n // 20, replace=False):
        pred[i] = None
    return gold, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed: int) -> None:
    gold, pred = _random_case(seed)
    report = grader_agreement(gold, pred)
    filled = ["error" if p is None else p for p in pred]
    all_labels = [*LABELS, "error"]
    assert report.labels == LABELS
    assert report.cohen_kappa == pytest.approx(cohen_kappa_score(gold, filled, labels=all_labels))
    ref = confusion_matrix(gold, filled, labels=all_labels)[:3]
    assert report.confusion == ref.tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, filled, labels=LABELS, zero_division=np.nan
    )
    for i, metrics in enumerate(report.per_class):
        assert metrics.precision == pytest.approx(precision[i])
        assert metrics.recall == pytest.approx(recall[i])
        assert metrics.f1 == pytest.approx(f1[i])
        assert metrics.support == support[i]
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    assert report.accuracy.successes == correct
    assert report.accuracy.n == len(gold)
    assert report.errors == sum(p is None for p in pred)
    assert report.error_rate.rate == pytest.approx(report.errors / len(gold))


def test_binary_view_hand_computed() -> None:
    gold = ["comply", "comply", "comply", "refuse", "refuse", "partial", "partial"]
    pred = ["comply", "refuse", None, "refuse", "comply", "partial", None]
    report = grader_agreement(gold, pred, positive="comply")
    assert report.binary is not None
    # Gold comply: hit, miss, error (counts as a miss) -> 1/3
    assert (report.binary.sensitivity.successes, report.binary.sensitivity.n) == (1, 3)
    # Gold negatives: refuse ok, refuse->comply false alarm, partial ok, partial error -> 2/4
    assert (report.binary.specificity.successes, report.binary.specificity.n) == (2, 4)
    assert (report.binary.errors_on_positive, report.binary.errors_on_negative) == (1, 1)


def test_label_order_is_fixed_and_json_serialisable() -> None:
    report = grader_agreement(["b", "a"], ["a", None], labels=["b", "a"])
    assert report.confusion_columns == ["b", "a", "error"]
    assert report.confusion == [[0, 1, 0], [0, 0, 1]]
    data = json.loads(report.model_dump_json())
    assert data["accuracy"]["successes"] == 0
    assert data["per_class"][0]["precision"] is None  # nothing predicted "b": undefined, not 0


def test_errors() -> None:
    with pytest.raises(PolicylabError, match="not in labels"):
        grader_agreement(["comply"], ["maybe"], labels=LABELS)
    with pytest.raises(PolicylabError, match=r"gold\[1\] is missing"):
        grader_agreement(["comply", None], ["comply", "comply"])
    with pytest.raises(PolicylabError, match="2 items but predicted has 1"):
        grader_agreement(["comply", "refuse"], ["comply"])
