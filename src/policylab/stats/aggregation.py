"""Turning several annotators' labels into one label per item.

- `majority_vote`: the most frequent label; a tie is reported with the tied labels, never broken
  silently (choosing one would hide that the annotators are split).
- `dawid_skene`: Dawid, A. P. & Skene, A. M. (1979). Maximum likelihood estimation of observer
  error-rates using the EM algorithm. Journal of the Royal Statistical Society C 28(1), 20-28.
  Each annotator has a confusion matrix theta[true, given]; EM alternates posteriors over each
  item's true label (E-step) with priors and confusion matrices re-estimated from them (M-step).
  It starts from majority-vote shares, as crowd-kit does. Gold items are clamped to their known
  label at every step. Both steps are two sparse (ratings x classes) products, so an iteration
  costs O(ratings x classes).
- `annotator_accuracy`: each annotator's accuracy on gold items, with a Wilson interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from policylab.errors import PolicylabError
from policylab.stats._long import Ratings, ratings_from_frame
from policylab.stats.intervals import wilson_intervals

__all__ = ["DawidSkeneResult", "annotator_accuracy", "dawid_skene", "majority_vote"]

# Floor for probabilities, so an unseen (annotator, label) pair is unlikely rather than impossible.
_EPS = 1e-10


def majority_vote(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    rater: str = "rater",
    value: str = "value",
    source: str = "data",
) -> pd.DataFrame:
    """One row per item: ``item, label, tie, tied, votes, n_ratings, share``.

    `label` is the most frequent value, or None on a tie; `tied` lists the values sharing the top
    count (a one-element tuple when there is no tie); `share` = votes / n_ratings.
    """
    ratings = ratings_from_frame(frame, item=item, rater=rater, value=value, source=source)
    counts = sp.coo_array(
        (np.ones(ratings.item.size), (ratings.item, ratings.value)),
        shape=(ratings.n_items, ratings.n_values),
    ).tocsr()
    coo = counts.tocoo()  # CSR -> COO keeps rows sorted
    rows, cols, data = coo.row, coo.col, coo.data
    top = np.zeros(ratings.n_items)
    np.maximum.at(top, rows, data)
    is_top = data == top[rows]
    n_top = np.bincount(rows[is_top], minlength=ratings.n_items)
    top_values = cols[is_top]
    bounds = np.cumsum(n_top)[:-1]
    domain = ratings.domain
    tied = [tuple(domain[j] for j in group) for group in np.split(top_values, bounds)]
    n_ratings = np.bincount(ratings.item, minlength=ratings.n_items)
    return pd.DataFrame(
        {
            "item": ratings.items,
            # object dtype keeps None (a tie) distinct from a missing label
            "label": pd.Series([t[0] if len(t) == 1 else None for t in tied], dtype=object),
            "tie": n_top > 1,
            "tied": pd.Series(tied, dtype=object),
            "votes": top.astype(np.int64),
            "n_ratings": n_ratings,
            "share": top / n_ratings,
        }
    )


@dataclass(frozen=True)
class DawidSkeneResult:
    """Fitted Dawid–Skene model.

    `posteriors[u, k]` = P(true label of items[u] is labels[k]); `confusion[r, k, j]` =
    P(raters[r] says labels[j] | true label labels[k]); `aggregated` maps each item to its most
    probable label (ties between equal posteriors go to the first label in `labels`).
    """

    labels: list[Any]
    items: list[Any]
    raters: list[Any]
    posteriors: NDArray[np.float64]
    priors: NDArray[np.float64]
    confusion: NDArray[np.float64]
    aggregated: pd.Series
    n_iter: int
    converged: bool
    log_likelihood: float
    """Marginal log-likelihood of the ratings (and gold labels) at the returned parameters."""

    def to_frame(self) -> pd.DataFrame:
        """``item, label`` and one ``p_<label>`` column per label."""
        out = pd.DataFrame({"item": self.items, "label": list(self.aggregated)})
        for k, label in enumerate(self.labels):
            out[f"p_{label}"] = self.posteriors[:, k]
        return out


def dawid_skene(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    rater: str = "rater",
    value: str = "value",
    gold: Mapping[Any, Any] | pd.Series | None = None,
    labels: list[Any] | None = None,
    tol: float = 1e-5,
    max_iter: int = 100,
    source: str = "data",
) -> DawidSkeneResult:
    """Fit Dawid–Skene by EM on long-format ratings.

    `gold` maps item ids to known labels; those items' posteriors are clamped to the known label.
    `labels` fixes the label set and order (default: the labels used, sorted). Stops when the
    log-likelihood per rating improves by less than `tol`, or after `max_iter` iterations.
    """
    if max_iter < 1:
        raise PolicylabError(f"max_iter must be at least 1, got {max_iter}")
    ratings = ratings_from_frame(
        frame, item=item, rater=rater, value=value, order=labels, source=source
    )
    u, r, k = ratings.n_items, ratings.n_raters, ratings.n_values
    clamp_rows, clamp_cols = _gold_codes(ratings, gold)

    # incidence[(rater, given), item] = 1 for each rating
    incidence = sp.csr_array(
        (np.ones(ratings.item.size), (ratings.rater * k + ratings.value, ratings.item)),
        shape=(r * k, u),
    )
    incidence_t = incidence.T.tocsr()

    # Posteriors are kept as (labels x items): the per-item sums over labels then run along
    # contiguous rows, far faster than reducing a short last axis.
    votes = np.bincount(ratings.item * k + ratings.value, minlength=u * k).reshape(u, k)
    post = np.ascontiguousarray((votes / votes.sum(axis=1, keepdims=True)).T)
    _clamp(post, clamp_rows, clamp_cols)

    log_lik = -math.inf
    converged = False
    n_iter = 0
    n_ratings = max(int(ratings.item.size), 1)
    while n_iter < max_iter:
        n_iter += 1
        priors, log_theta = _m_step(post, incidence, r, k)
        post, new_log_lik = _e_step(priors, log_theta, incidence_t, clamp_rows, clamp_cols)
        if abs(new_log_lik - log_lik) / n_ratings < tol:
            converged = True
            log_lik = new_log_lik
            break
        log_lik = new_log_lik

    priors, log_theta = _m_step(post, incidence, r, k)
    _, final_log_lik = _e_step(priors, log_theta, incidence_t, clamp_rows, clamp_cols)
    confusion = np.exp(log_theta).reshape(r, k, k).transpose(0, 2, 1)
    best = post.argmax(axis=0)
    return DawidSkeneResult(
        labels=list(ratings.domain),
        items=list(ratings.items),
        raters=list(ratings.raters),
        posteriors=np.ascontiguousarray(post.T),
        priors=priors,
        confusion=confusion,
        aggregated=pd.Series(
            np.asarray(ratings.domain, dtype=object)[best],
            index=pd.Index(ratings.items, name=item),
            name="label",
        ),
        n_iter=n_iter,
        converged=converged,
        log_likelihood=final_log_lik,
    )


def _m_step(
    post: NDArray[np.float64], incidence: sp.csr_array, r: int, k: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Priors, and log theta as a ((rater, given) x true) matrix, from (labels x items) posteriors."""
    priors = np.clip(post.mean(axis=1), _EPS, None)
    priors = priors / priors.sum()
    theta = np.asarray(incidence @ np.ascontiguousarray(post.T)).reshape(r, k, k)
    theta = np.clip(theta, _EPS, None)  # [rater, given, true]
    theta /= theta.sum(axis=1, keepdims=True)
    return priors, np.log(theta).reshape(r * k, k)


def _e_step(
    priors: NDArray[np.float64],
    log_theta: NDArray[np.float64],
    incidence_t: sp.csr_array,
    clamp_rows: NDArray[np.intp],
    clamp_cols: NDArray[np.intp],
) -> tuple[NDArray[np.float64], float]:
    """(labels x items) posteriors and the marginal log-likelihood of the data.

    The log-likelihood is sum_u log sum_k P(k) P(ratings_u | k); a gold item contributes only its
    known label's term.
    """
    joint = np.ascontiguousarray(np.asarray(incidence_t @ log_theta).T)
    joint += np.log(priors)[:, None]
    gold_terms = float(joint[clamp_cols, clamp_rows].sum())
    top = joint.max(axis=0)
    joint -= top
    np.exp(joint, out=joint)
    total = joint.sum(axis=0)
    joint /= total
    per_item = top + np.log(total)
    log_lik = float(per_item.sum() - per_item[clamp_rows].sum()) + gold_terms
    _clamp(joint, clamp_rows, clamp_cols)
    return joint, log_lik


def _clamp(post: NDArray[np.float64], rows: NDArray[np.intp], cols: NDArray[np.intp]) -> None:
    """Set gold items' posteriors to their known label; `post` is (labels x items)."""
    post[:, rows] = 0.0
    post[cols, rows] = 1.0


def _gold_codes(
    ratings: Ratings, gold: Mapping[Any, Any] | pd.Series | None
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    if gold is None:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    pairs = gold.items() if isinstance(gold, Mapping) else gold.to_dict().items()
    item_index = {v: i for i, v in enumerate(ratings.items)}
    label_index = {v: i for i, v in enumerate(ratings.domain)}
    rows, cols = [], []
    for key, label in pairs:
        if key not in item_index:
            continue  # a gold item nobody rated says nothing about the annotators
        if label not in label_index:
            raise PolicylabError(
                f"gold label {label!r} of item {key!r} is not among the labels "
                f"{list(ratings.domain)}",
                hint="pass labels=[...] listing every label, or fix the gold set",
            )
        rows.append(item_index[key])
        cols.append(label_index[label])
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def annotator_accuracy(
    frame: pd.DataFrame,
    gold: Mapping[Any, Any] | pd.Series,
    *,
    item: str = "item",
    rater: str = "rater",
    value: str = "value",
    confidence: float = 0.95,
    source: str = "data",
) -> pd.DataFrame:
    """Each annotator's accuracy on the gold items they rated: ``rater, n, k, accuracy, low, high``.

    Annotators who rated no gold item get n = 0, accuracy NaN and the interval (0, 1).
    """
    ratings = ratings_from_frame(frame, item=item, rater=rater, value=value, source=source)
    gold_map = dict(gold.items()) if isinstance(gold, Mapping) else gold.to_dict()
    truth = [gold_map.get(i, _NO_GOLD) for i in ratings.items]
    rated = np.array([truth[i] is not _NO_GOLD for i in ratings.item], dtype=bool)
    correct = np.array(
        [
            ok and ratings.domain[v] == truth[i]
            for i, v, ok in zip(ratings.item, ratings.value, rated, strict=True)
        ],
        dtype=bool,
    )
    n = np.bincount(ratings.rater, weights=rated, minlength=ratings.n_raters)
    k = np.bincount(ratings.rater, weights=correct, minlength=ratings.n_raters)
    low, high = wilson_intervals(k, n, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    return pd.DataFrame(
        {
            "rater": ratings.raters,
            "n": n.astype(np.int64),
            "k": k.astype(np.int64),
            "accuracy": accuracy,
            "low": low,
            "high": high,
        }
    )


_NO_GOLD = object()
