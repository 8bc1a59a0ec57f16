"""How well a grader agrees with gold labels.

Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and Psychological
Measurement 20(1), 37-46.

A prediction of None/NaN is a grader error. It is counted as wrong everywhere (accuracy, kappa,
recall, sensitivity/specificity) and reported separately (`errors`, `error_rate`): a grader that
fails on the hard items must not look better than one that answers them. For kappa and the
confusion matrix the errors form an extra predicted column, "error", that never matches a gold
label; precision is over the items predicted as each label, so errors do not enter it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.stats._behaviors import is_missing
from policylab.stats.intervals import Rate, wilson

__all__ = ["ERROR_COLUMN", "BinaryView", "ClassMetrics", "GraderAgreement", "grader_agreement"]

ERROR_COLUMN = "error"


class ClassMetrics(BaseModel):
    """Precision, recall and F1 for one label; NaN (JSON null) when undefined."""

    model_config = ConfigDict(frozen=True)

    label: str
    support: int
    """Gold items with this label."""
    predicted: int
    """Items the grader gave this label."""
    precision: float
    recall: float
    f1: float


class BinaryView(BaseModel):
    """The labels collapsed to positive (any of `positive`) versus negative."""

    model_config = ConfigDict(frozen=True)

    positive: list[str]
    sensitivity: Rate
    """Gold positives predicted positive; an error on a gold positive is a miss."""
    specificity: Rate
    """Gold negatives predicted negative; an error on a gold negative is a false alarm."""
    errors_on_positive: int
    errors_on_negative: int


class GraderAgreement(BaseModel):
    """Agreement of a grader with gold labels. Serialise with `model_dump_json()`."""

    model_config = ConfigDict(frozen=True)

    labels: list[str]
    n: int
    errors: int
    accuracy: Rate
    error_rate: Rate
    cohen_kappa: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    """Rows: gold labels in `labels` order; columns: `labels` then "error"."""
    confusion_columns: list[str]
    binary: BinaryView | None = None


def grader_agreement(
    gold: Sequence[Any] | NDArray[Any],
    predicted: Sequence[Any] | NDArray[Any],
    *,
    labels: Sequence[str] | None = None,
    positive: str | Sequence[str] | None = None,
    confidence: float = 0.95,
) -> GraderAgreement:
    """Accuracy, Cohen's kappa, per-label precision/recall/F1 and the confusion matrix.

    `labels` fixes the order (default: comply, partial, refuse when every label is a behaviour,
    else sorted). `positive` (one label or several) adds a binary view with sensitivity and
    specificity, e.g. ``positive="comply"`` for detecting harmful compliance.
    """
    g = [None if is_missing(x) else str(x) for x in gold]
    p = [None if is_missing(x) else str(x) for x in predicted]
    if len(g) != len(p):
        raise PolicylabError(
            f"gold has {len(g)} items but predicted has {len(p)}",
            hint="pass one gold and one predicted label per item, in the same order",
        )
    missing_gold = [i for i, x in enumerate(g) if x is None]
    if missing_gold:
        raise PolicylabError(
            f"gold[{missing_gold[0]}] is missing ({len(missing_gold)} gold labels missing)",
            hint="drop items without a gold label before measuring agreement",
        )
    order = _label_order(g, p, labels)
    index = {label: i for i, label in enumerate(order)}
    unknown = sorted({x for x in (*g, *p) if x is not None and x not in index})
    if unknown:
        raise PolicylabError(
            f"label(s) {unknown} are not in labels={order}",
            hint="add them to `labels` or fix the data",
        )
    k = len(order)
    gi = np.array([index[str(x)] for x in g], dtype=np.intp)
    pi = np.array([k if x is None else index[x] for x in p], dtype=np.intp)
    n = len(g)
    confusion = np.bincount(gi * (k + 1) + pi, minlength=k * (k + 1)).reshape(k, k + 1)
    errors = int(confusion[:, k].sum())
    correct = int(np.trace(confusion[:, :k]))

    per_class = []
    for i, label in enumerate(order):
        tp = int(confusion[i, i])
        support = int(confusion[i].sum())
        predicted_as = int(confusion[:, i].sum())
        precision = tp / predicted_as if predicted_as else math.nan
        recall = tp / support if support else math.nan
        f1 = 2 * tp / (support + predicted_as) if support + predicted_as else math.nan
        per_class.append(
            ClassMetrics(
                label=label,
                support=support,
                predicted=predicted_as,
                precision=precision,
                recall=recall,
                f1=f1,
            )
        )

    return GraderAgreement(
        labels=order,
        n=n,
        errors=errors,
        accuracy=wilson(correct, n, confidence=confidence),
        error_rate=wilson(errors, n, confidence=confidence),
        cohen_kappa=_kappa_from_confusion(confusion),
        per_class=per_class,
        confusion=confusion.tolist(),
        confusion_columns=[*order, ERROR_COLUMN],
        binary=None if positive is None else _binary(confusion, order, positive, confidence),
    )


def _label_order(
    gold: list[str | None], predicted: list[str | None], labels: Sequence[str] | None
) -> list[str]:
    if labels is not None:
        order = [str(x) for x in labels]
        if len(set(order)) != len(order):
            raise PolicylabError(f"labels has duplicates: {order}")
        return order
    seen = {x for x in (*gold, *predicted) if x is not None}
    behaviours = [b.value for b in Behavior]
    if seen <= set(behaviours):
        return behaviours
    return sorted(seen)


def _kappa_from_confusion(confusion: NDArray[np.int64]) -> float:
    """Cohen's kappa over a (gold x predicted) table whose predicted side may have extra columns."""
    n = confusion.sum()
    if n == 0:
        return math.nan
    k = confusion.shape[0]
    observed = np.trace(confusion[:, :k]) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)[:k]) / (n * n)
    if expected == 1.0:
        return math.nan
    return float((observed - expected) / (1.0 - expected))


def _binary(
    confusion: NDArray[np.int64], order: list[str], positive: str | Sequence[str], confidence: float
) -> BinaryView:
    pos = [positive] if isinstance(positive, str) else [str(x) for x in positive]
    missing = [x for x in pos if x not in order]
    if missing:
        raise PolicylabError(f"positive label(s) {missing} are not in labels={order}")
    is_pos = np.array([label in pos for label in order])
    k = len(order)
    gold_pos, gold_neg = confusion[is_pos], confusion[~is_pos]
    return BinaryView(
        positive=pos,
        sensitivity=wilson(
            int(gold_pos[:, :k][:, is_pos].sum()), int(gold_pos.sum()), confidence=confidence
        ),
        specificity=wilson(
            int(gold_neg[:, :k][:, ~is_pos].sum()), int(gold_neg.sum()), confidence=confidence
        ),
        errors_on_positive=int(gold_pos[:, k].sum()),
        errors_on_negative=int(gold_neg[:, k].sum()),
    )
