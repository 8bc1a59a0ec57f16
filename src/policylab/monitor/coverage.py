"""Eval coverage of real traffic: which deployment conversations have an eval item nearby.

A conversation is covered when some eval item's request lies within cosine distance `radius`
(1 − cosine similarity of the two requests' sentence embeddings). The covered share comes with
its Wilson interval; the uncovered conversations are clustered (`policylab.monitor.clusters`) to
show where the eval set is blind, largest cluster first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from policylab.graders.embeddings import Embedder
from policylab.monitor.clusters import Cluster, Method, cluster_texts
from policylab.stats.intervals import Rate, wilson

__all__ = ["DEFAULT_RADIUS", "CoverageResult", "eval_coverage", "nearest_distance"]

DEFAULT_RADIUS = 0.35
_CHUNK = 2048


@dataclass
class CoverageResult:
    radius: float
    covered: Rate
    distances: NDArray[np.float32]
    uncovered: list[Cluster]


def nearest_distance(
    queries: NDArray[np.float32], items: NDArray[np.float32]
) -> NDArray[np.float32]:
    """For each unit-length query vector, the cosine distance to the nearest item vector."""
    if len(items) == 0:
        return np.full(len(queries), 2.0, dtype=np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), _CHUNK):
        sims = queries[start : start + _CHUNK] @ items.T
        out[start : start + _CHUNK] = 1.0 - sims.max(axis=1)
    return out


def eval_coverage(
    texts: Sequence[str],
    ids: Sequence[int],
    item_texts: Sequence[str],
    *,
    radius: float = DEFAULT_RADIUS,
    users: Sequence[str | None] | None = None,
    embedder: Embedder | None = None,
    method: Method = "hdbscan",
    min_size: int = 10,
    min_users: int = 1,
) -> CoverageResult:
    """The share of `texts` within `radius` of an eval item, and the uncovered clusters."""
    if not 0.0 < radius < 2.0:
        raise ValueError(f"radius is a cosine distance in (0, 2), got {radius}")
    embedder = embedder or Embedder()
    distances = nearest_distance(embedder.encode(list(texts)), embedder.encode(list(item_texts)))
    covered = distances <= radius
    blind = [int(i) for i in np.flatnonzero(~covered)]
    clusters = cluster_texts(
        [texts[i] for i in blind],
        [ids[i] for i in blind],
        users=[users[i] for i in blind] if users is not None else None,
        embedder=embedder,
        method=method,
        min_size=min_size,
        min_users=min_users,
    )
    return CoverageResult(radius, wilson(int(covered.sum()), len(texts)), distances, clusters)
