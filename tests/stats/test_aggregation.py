"""Majority vote with ties, Dawid–Skene against crowd-kit, and annotator accuracy on gold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policylab.errors import PolicylabError
from policylab.stats.aggregation import annotator_accuracy, dawid_skene, majority_vote
from policylab.stats.intervals import wilson


def _crowd(
    seed: int, items: int = 1500, raters: int = 15, classes: int = 3
) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(
        classes, size=items, p=[0.5, 0.3, 0.2][:classes] / np.sum([0.5, 0.3, 0.2][:classes])
    )
    accuracy = rng.uniform(0.45, 0.95, size=raters)
    item = np.repeat(np.arange(items), 3)
    rater = np.concatenate([rng.choice(raters, 3, replace=False) for _ in range(items)])
    correct = rng.random(item.size) < accuracy[rater]
    wrong = (truth[item] + rng.integers(1, classes, item.size)) % classes
    label = np.where(correct, truth[item], wrong)
    return pd.DataFrame({"task": item, "worker": rater, "label": label}), truth


def test_majority_vote_reports_ties() -> None:
    frame = pd.DataFrame(
        [
            ("a", "r1", "comply"), ("a", "r2", "comply"), ("a", "r3", "refuse"),
            ("b", "r1", "comply"), ("b", "r2", "refuse"),
            ("c", "r1", "partial"),
        ],
        columns=["item", "rater", "value"],
    )  # fmt: skip
    out = majority_vote(frame).set_index("item")
    assert out.loc["a", "label"] == "comply"
    assert not out.loc["a", "tie"]
    assert out.loc["a", "tied"] == ("comply",)
    assert out.loc["a", "share"] == pytest.approx(2 / 3)
    assert out.loc["b", "label"] is None
    assert out.loc["b", "tie"]
    assert out.loc["b", "tied"] == ("comply", "refuse")
    assert (out.loc["b", "votes"], out.loc["b", "n_ratings"]) == (1, 2)
    assert out.loc["c", "label"] == "partial"


def test_dawid_skene_unanimous_hand_case() -> None:
    # Unanimous raters: every posterior is certain and equals the shared label.
    frame = pd.DataFrame(
        [(i, r, "yes" if i % 2 else "no") for i in range(6) for r in ("a", "b", "c")],
        columns=["item", "rater", "value"],
    )
    result = dawid_skene(frame)
    assert list(result.aggregated) == ["no", "yes"] * 3
    np.testing.assert_allclose(result.posteriors.max(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(result.priors, [0.5, 0.5])
    # Each rater's confusion matrix is the identity.
    np.testing.assert_allclose(result.confusion, np.broadcast_to(np.eye(2), (3, 2, 2)), atol=1e-6)
    assert result.converged


def test_gold_items_are_clamped() -> None:
    frame, truth = _crowd(1, items=300)
    gold = {
        0: int(truth[0]),
        1: (int(truth[1]) + 1) % 3,
    }  # the second gold label is "wrong" on purpose
    result = dawid_skene(frame, item="task", rater="worker", value="label", gold=gold)
    assert result.aggregated.loc[1] == (truth[1] + 1) % 3
    np.testing.assert_array_equal(result.posteriors[1], np.eye(3)[(truth[1] + 1) % 3])


def test_unknown_gold_label_raises() -> None:
    frame, _ = _crowd(2, items=50)
    with pytest.raises(PolicylabError, match="gold label 7"):
        dawid_skene(frame, item="task", rater="worker", value="label", gold={0: 7})


@pytest.mark.filterwarnings("ignore::Warning:crowdkit.*")
@pytest.mark.parametrize("use_gold", [False, True])
def test_matches_crowdkit(use_gold: bool) -> None:
    crowdkit = pytest.importorskip("crowdkit.aggregation")
    frame, truth = _crowd(3)
    gold = pd.Series(truth[:150], index=np.arange(150)) if use_gold else None
    # Same start (majority vote), same number of EM steps, no early stop on either side.
    reference = crowdkit.DawidSkene(n_iter=40, tol=-1.0).fit(frame, true_labels=gold)
    ours = dawid_skene(
        frame, item="task", rater="worker", value="label", gold=gold, tol=0.0, max_iter=40
    )
    probas = reference.probas_.sort_index()[ours.labels].to_numpy()
    np.testing.assert_allclose(ours.posteriors, probas, atol=1e-8)
    np.testing.assert_allclose(ours.priors, reference.priors_[ours.labels].to_numpy(), atol=1e-8)
    errors = reference.errors_
    for r, worker in enumerate(ours.raters):
        # crowd-kit: errors[worker, observed][true]; ours: confusion[rater, true, observed]
        table = errors.loc[worker].reindex(index=ours.labels, columns=ours.labels).fillna(0.0)
        np.testing.assert_allclose(ours.confusion[r], table.to_numpy().T, atol=1e-8)
    assert (
        ours.aggregated.sort_index().to_numpy() == reference.labels_.sort_index().to_numpy()
    ).all()


def test_dawid_skene_beats_majority_vote_on_noisy_crowd() -> None:
    frame, truth = _crowd(4, items=3000, raters=20)
    ds = dawid_skene(frame, item="task", rater="worker", value="label")
    mv = majority_vote(frame, item="task", rater="worker", value="label")
    ds_accuracy = (ds.aggregated.to_numpy() == truth).mean()
    mv_accuracy = (mv["label"].to_numpy() == truth).mean()  # ties count as wrong
    assert ds_accuracy > mv_accuracy
    assert ds.log_likelihood < 0


def test_annotator_accuracy_hand_computed() -> None:
    frame = pd.DataFrame(
        [(1, "a", "x"), (2, "a", "y"), (3, "a", "x"), (1, "b", "y"), (4, "b", "x"), (4, "c", "x")],
        columns=["item", "rater", "value"],
    )
    gold = {1: "x", 2: "y", 3: "y"}
    out = annotator_accuracy(frame, gold).set_index("rater")
    assert (out.loc["a", "n"], out.loc["a", "k"]) == (3, 2)
    assert (out.loc["b", "n"], out.loc["b", "k"]) == (1, 0)
    assert out.loc["c", "n"] == 0
    assert np.isnan(out.loc["c", "accuracy"])
    reference = wilson(2, 3)
    assert (out.loc["a", "low"], out.loc["a", "high"]) == pytest.approx(
        (reference.low, reference.high)
    )
