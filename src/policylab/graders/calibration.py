"""How well a grader's confidences match its accuracy: expected calibration error and Brier score.

ECE (Naeini, Cooper and Hauskrecht, 2015; "top-label" form as in Guo et al., 2017): the predictions
are binned by their confidence (the probability of the predicted class) into `n_bins` equal-width
bins; ECE is the average over bins of |accuracy - mean confidence|, weighted by the bin's share.
Brier score (Brier, 1950), multi-class form: the mean over samples of the squared distance between
the probability vector and the one-hot true label (0 is perfect, 2 the worst).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from policylab.errors import PolicylabError

__all__ = ["brier_score", "expected_calibration_error"]


def _check(proba: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=float)
    t = np.asarray(y, dtype=int)
    if p.ndim != 2 or t.ndim != 1 or p.shape[0] != t.shape[0]:
        raise PolicylabError(
            f"expected probabilities (n, k) and labels (n,), got {p.shape} and {t.shape}"
        )
    if p.shape[0] == 0:
        raise PolicylabError("no predictions to score")
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise PolicylabError(f"labels must be class indices in [0, {p.shape[1]})")
    return p, t


def expected_calibration_error(proba: ArrayLike, y: ArrayLike, *, n_bins: int = 10) -> float:
    """Top-label ECE of probabilities `proba` (n, k) against class indices `y` (n,)."""
    p, t = _check(proba, y)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(float)
    # Bins are (lo, hi], the first one [0, hi]: a confidence of exactly 1 falls in the last bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def brier_score(proba: ArrayLike, y: ArrayLike) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot label."""
    p, t = _check(proba, y)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(t)), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())
