"""Taxonomy discovery: cluster the conversations no category fits, and name each cluster.

Requests are embedded with the local sentence encoder and clustered with scikit-learn's HDBSCAN
(points in no dense region are left out as noise) or k-means. Each cluster is named by its most
distinctive terms under class-based TF-IDF, as BERTopic defines it (Grootendorst 2022, "BERTopic:
Neural topic modeling with a class-based TF-IDF procedure", arXiv:2203.05794): all the documents
of a cluster form one class, and a term's weight in class c is

    W(t, c) = tf(t, c) · log(1 + A / f(t)),

with tf(t, c) the term's frequency in the class (L1-normalised over the class), f(t) its frequency
over all classes and A the average number of words per class. Terms are counted with
scikit-learn's `CountVectorizer` (English stop words removed, unigrams and bigrams); the noise
points form a class of their own, so terms common to everything weigh little.

A cluster is shown only when it holds at least `min_size` conversations and, when user ids were
given, at least `min_users` distinct users: the aggregation thresholds Anthropic's Clio applies
before a cluster is shown to an analyst (Tamkin et al. 2024, "Clio: Privacy-Preserving Insights
into Real-World AI Use", arXiv:2412.13678), so no cluster describes a handful of people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import CountVectorizer

from policylab.graders.embeddings import Embedder

__all__ = ["Cluster", "class_tfidf", "cluster_texts", "cluster_vectors"]

Method = Literal["hdbscan", "kmeans"]


@dataclass
class Cluster:
    """A shown cluster: members (conversation ids) nearest its centre first, with their cosine
    similarity to the centre."""

    label: str
    terms: list[str]
    size: int
    users: int | None
    members: list[int]
    similarities: list[float]
    texts: list[str] = field(default_factory=list)


def class_tfidf(
    documents: Sequence[str], *, top_n: int = 8, ngram_range: tuple[int, int] = (1, 2)
) -> list[list[tuple[str, float]]]:
    """The `top_n` terms of each class (one document per class) by c-TF-IDF, highest first."""
    vectorizer = CountVectorizer(stop_words="english", ngram_range=ngram_range, min_df=1)
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError:  # only stop words, or empty documents
        return [[] for _ in documents]
    x = np.asarray(counts.toarray(), dtype=np.float64)
    terms = vectorizer.get_feature_names_out()
    words_per_class = x.sum(axis=1)
    average = float(words_per_class.mean())
    frequency = x.sum(axis=0)
    idf = np.log(1.0 + average / np.maximum(frequency, 1e-12))
    with np.errstate(invalid="ignore", divide="ignore"):
        tf = np.where(words_per_class[:, None] > 0, x / words_per_class[:, None], 0.0)
    weights = tf * idf
    out: list[list[tuple[str, float]]] = []
    for row in weights:
        order = np.argsort(-row, kind="stable")[:top_n]
        out.append([(str(terms[i]), float(row[i])) for i in order if row[i] > 0])
    return out


def cluster_vectors(
    vectors: NDArray[np.float32],
    *,
    method: Method = "hdbscan",
    min_size: int = 10,
    k: int | None = None,
    seed: int = 0,
) -> NDArray[np.int64]:
    """A label per vector (-1: noise, HDBSCAN only)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        if n < max(min_size, 2):
            return np.full(n, -1, dtype=np.int64)
        model = HDBSCAN(min_cluster_size=max(min_size, 2), min_samples=None, copy=True)
        return np.asarray(model.fit_predict(vectors), dtype=np.int64)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        clusters = k or max(1, min(n // max(min_size, 1), 50))
        clusters = min(clusters, n)
        model = KMeans(n_clusters=clusters, n_init=4, random_state=seed)
        return np.asarray(model.fit_predict(vectors), dtype=np.int64)
    raise ValueError(f"unknown clustering method {method!r}: use hdbscan or kmeans")


def cluster_texts(
    texts: Sequence[str],
    ids: Sequence[int],
    *,
    users: Sequence[str | None] | None = None,
    embedder: Embedder | None = None,
    method: Method = "hdbscan",
    min_size: int = 10,
    min_users: int = 1,
    k: int | None = None,
    examples: int = 5,
    top_terms: int = 8,
) -> list[Cluster]:
    """Cluster `texts` (with conversation `ids`) and return the clusters large enough to show,
    largest first."""
    if len(texts) != len(ids) or (users is not None and len(users) != len(texts)):
        raise ValueError("texts, ids and users must have the same length")
    if not texts:
        return []
    vectors = (embedder or Embedder()).encode(list(texts))
    labels = cluster_vectors(vectors, method=method, min_size=min_size, k=k)
    found = sorted({int(x) for x in labels} - {-1})
    classes = [*found, -1]
    documents = [
        "\n".join(t for t, lab in zip(texts, labels, strict=True) if lab == c) for c in classes
    ]
    named = dict(zip(classes, class_tfidf(documents, top_n=top_terms), strict=True))
    out: list[Cluster] = []
    for c in found:
        idx = [int(i) for i in np.flatnonzero(labels == c)]
        distinct: int | None = None
        if users is not None and any(users[i] for i in idx):
            distinct = len({users[i] for i in idx if users[i]})
        if len(idx) < min_size or (distinct is not None and distinct < min_users):
            continue
        centre = vectors[idx].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        sims = vectors[idx] @ centre
        order = [int(i) for i in np.argsort(-sims, kind="stable")]
        terms = [t for t, _ in named[c]]
        out.append(
            Cluster(
                label=", ".join(terms[:3]) or f"cluster {c}",
                terms=terms,
                size=len(idx),
                users=distinct,
                members=[int(ids[idx[i]]) for i in order],
                similarities=[float(sims[i]) for i in order],
                texts=[texts[idx[i]] for i in order[:examples]],
            )
        )
    out.sort(key=lambda cl: -cl.size)
    return out
