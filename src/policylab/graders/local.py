"""The embedded default grader: sentence embeddings and a calibrated logistic-regression head.

Offline and on CPU. It learns the behaviour (comply, partial, refuse) from the seed set written by
the policylab team, the policy's labelled example responses, and any gold labels it is given
(`gold_files`, or rows passed to `fit`, such as the workspace's human labels). Training takes
seconds; embeddings are cached (see `Embedder`).

It predicts:
- `behavior` and `probabilities` from the head; `confidence` is the probability of the predicted
  behaviour. The L2-regularised logistic regression's own probabilities are the default: on
  held-out domains they were as well calibrated as isotonic recalibration (ECE 0.03) and had a
  lower Brier score than either Platt or isotonic (docs/graders.md);
- `violation` when the expected behaviour is known, from the sample or its category hint;
- `category`, with a policy, from the request's nearest labelled examples (cosine kNN over the
  policy's example requests); the sample's own category hint wins when given.

The rationale names the nearest training response, so a reader can see what the verdict rests on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.graders import _features
from policylab.graders._expect import expected_behavior, violates
from policylab.graders.base import Sample, SyncGrader, Verdict, error_verdict, grader
from policylab.graders.embeddings import Backend, Embedder
from policylab.graders.training import (
    TrainingRow,
    gold_rows,
    policy_requests,
    policy_rows,
    seed_rows,
    training_digest,
)
from policylab.policy.schema import Policy

__all__ = ["CLASSES", "LocalGrader"]

log = logging.getLogger(__name__)

CLASSES: tuple[Behavior, ...] = (Behavior.COMPLY, Behavior.PARTIAL, Behavior.REFUSE)
Calibration = Literal["sigmoid", "isotonic", "none"]


@grader("local")
class LocalGrader(SyncGrader):
    """Embeddings of the response plus transparent features, and a calibrated linear head.

    Parameters (all recorded with each verdict):
    - `policy`: adds the policy's labelled responses to training, enables category prediction and
      the violation flag from category hints;
    - `features`: see `_features` (default chosen by held-out cross-validation on the seed set);
    - `C`: inverse L2 regularisation of the logistic regression;
    - `calibration`: `none` (the regression's own probabilities, the default), `sigmoid` (Platt
      scaling) or `isotonic`, both by 5-fold `CalibratedClassifierCV`;
    - `use_seed`: train on the packaged seed set;
    - `gold_files`: JSONL gold files to train on as well;
    - `k_neighbors`, `category_min_similarity`: category kNN over the policy's example requests;
      below the similarity floor the category is left unknown;
    - `backend`, `max_tokens`: the embedder (see `Embedder`);
    - `cache_dir`: where embeddings are cached on disk (a runtime setting, not part of the model).
    """

    id: ClassVar[str] = "local"
    version: ClassVar[str] = "2"
    runtime_params: ClassVar[frozenset[str]] = frozenset({"cache_dir"})

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        features: str = _features.DEFAULT_FEATURES,
        C: float = 1.0,  # noqa: N803  (scikit-learn's name)
        calibration: Calibration = "none",
        use_seed: bool = True,
        gold_files: Sequence[str] = (),
        k_neighbors: int = 5,
        category_min_similarity: float = 0.3,
        backend: Backend = "onnx-int8",
        max_tokens: int = 256,
        cache_dir: str | None = None,
    ) -> None:
        self.policy = policy
        self.features = features
        self.C = C
        self.calibration = calibration
        self.use_seed = use_seed
        self.gold_files = list(gold_files)
        self.k_neighbors = k_neighbors
        self.category_min_similarity = category_min_similarity
        self.backend = backend
        self.max_tokens = max_tokens
        self.cache_dir = cache_dir
        self._parts = _features.parse_spec(features)
        if calibration not in ("sigmoid", "isotonic", "none"):
            raise PolicylabError(
                f"unknown calibration {calibration!r}", hint="use sigmoid, isotonic or none"
            )
        self._embedder: Embedder | None = None
        self._head: Any = None
        self._classes: list[Behavior] = []
        self._train: list[TrainingRow] = []
        self._train_vectors: NDArray[np.float32] | None = None
        self._digest: str | None = None
        self._neighbours: tuple[NDArray[np.float32], list[str], list[str]] | None = None

    # -- training --------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(
                backend=self.backend,
                max_tokens=self.max_tokens,
                cache_dir=Path(self.cache_dir) if self.cache_dir else None,
            )
        return self._embedder

    def training_rows(self, extra: Sequence[TrainingRow] = ()) -> list[TrainingRow]:
        rows: list[TrainingRow] = []
        if self.use_seed:
            rows.extend(seed_rows())
        if self.policy is not None:
            rows.extend(policy_rows(self.policy))
        for path in self.gold_files:
            rows.extend(gold_rows(Path(path)))
        rows.extend(extra)
        return rows

    def fit(self, extra: Sequence[TrainingRow] = ()) -> LocalGrader:
        """Train the head on the seed set, the policy's examples, gold files and `extra` rows."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression

        rows = self.training_rows(extra)
        counts = Counter(r.behavior for r in rows)
        if len(counts) < 2:
            raise PolicylabError(
                f"the local grader needs labelled responses of at least two behaviours, got {dict(counts)}",
                hint="keep use_seed=True, or add gold files with comply/partial/refuse labels",
            )
        x = self._matrix([r.request for r in rows], [r.response for r in rows])
        y = np.array([r.behavior.value for r in rows])
        head: Any = LogisticRegression(C=self.C, max_iter=5000)
        if self.calibration != "none":
            folds = min(5, min(counts.values()))
            if folds >= 2:
                head = CalibratedClassifierCV(head, method=self.calibration, cv=folds)
            else:
                log.warning("too few examples of a behaviour to calibrate; using raw probabilities")
        head.fit(x, y)
        self._head = head
        self._classes = [Behavior(c) for c in head.classes_]
        self._train = rows
        self._train_vectors = self.embedder.encode([r.response for r in rows])
        self._digest = training_digest(rows)
        if self.policy is not None and self.policy.examples:
            found = policy_requests(self.policy)
            self._neighbours = (
                self.embedder.encode([text for _, text, _ in found]),
                [eid for eid, _, _ in found],
                [cat for _, _, cat in found],
            )
        log.info("local grader trained on %d rows %s", len(rows), dict(counts))
        return self

    @property
    def is_fitted(self) -> bool:
        return self._head is not None

    def _matrix(self, requests: Sequence[str], responses: Sequence[str]) -> NDArray[np.float32]:
        return _features.features(self._parts, self.embedder, requests, responses)

    # -- prediction ------------------------------------------------------------------------------
    def predict_proba(self, samples: Sequence[Sample]) -> NDArray[np.float64]:
        """Probabilities per sample over `CLASSES` (comply, partial, refuse)."""
        if not self.is_fitted:
            self.fit()
        x = self._matrix([s.request_text for s in samples], [s.response for s in samples])
        raw = self._head.predict_proba(x)
        out = np.zeros((len(samples), len(CLASSES)))
        for j, behavior in enumerate(self._classes):
            out[:, CLASSES.index(behavior)] = raw[:, j]
        return out

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        if not samples:
            return []
        try:
            proba = self.predict_proba(samples)
            nearest = self._nearest_training(samples)
            categories = self._categories(samples)
        except PolicylabError:
            raise  # a configuration problem the user must fix, not a grading failure
        except Exception as exc:  # the grader failed: every sample gets an error, none a behaviour
            log.exception("local grader failed on a batch of %d", len(samples))
            message = f"local grader failed: {type(exc).__name__}: {exc}"
            return [
                error_verdict(
                    s.id,
                    message,
                    grader_id=self.id,
                    grader_version=self.version,
                    policy=self.policy,
                )
                for s in samples
            ]
        return [
            self._verdict(s, p, near, cat)
            for s, p, near, cat in zip(samples, proba, nearest, categories, strict=True)
        ]

    def _verdict(
        self,
        sample: Sample,
        proba: NDArray[np.float64],
        nearest: tuple[TrainingRow, float],
        category: tuple[str | None, str],
    ) -> Verdict:
        probabilities = {b: float(p) for b, p in zip(CLASSES, proba, strict=True)}
        behavior = CLASSES[int(np.argmax(proba))]
        row, similarity = nearest
        cat, cat_note = category
        rationale = (
            f"{behavior.value} (p={probabilities[behavior]:.2f}); nearest training response: "
            f"{row.id} [{row.source}] labelled {row.behavior.value} (cosine {similarity:.2f})"
        )
        if cat_note:
            rationale += f"; {cat_note}"
        return Verdict(
            sample_id=sample.id,
            behavior=behavior,
            violation=violates(behavior, expected_behavior(sample, self.policy)),
            category=cat,
            confidence=probabilities[behavior],
            probabilities=_normalised(probabilities),
            rationale=rationale,
            grader_id=self.id,
            grader_version=self.version,
            policy_id=self.policy.id if self.policy else None,
            policy_hash=self.policy.content_hash if self.policy else None,
            extra={"training_digest": self._digest, "training_rows": len(self._train)},
        )

    def _nearest_training(self, samples: Sequence[Sample]) -> list[tuple[TrainingRow, float]]:
        assert self._train_vectors is not None
        vectors = self.embedder.encode([s.response for s in samples])
        sims = vectors @ self._train_vectors.T
        best = sims.argmax(axis=1)
        return [(self._train[int(j)], float(sims[i, j])) for i, j in enumerate(best)]

    def _categories(self, samples: Sequence[Sample]) -> list[tuple[str | None, str]]:
        """The category hint, else the kNN vote over the policy's example requests, else None."""
        out: list[tuple[str | None, str]] = [(s.category, "") for s in samples]
        todo = [i for i, s in enumerate(samples) if s.category is None]
        if self._neighbours is None or not todo:
            return out
        vectors, ids, cats = self._neighbours
        queries = self.embedder.encode([samples[i].request_text for i in todo])
        sims = queries @ vectors.T
        k = min(self.k_neighbors, len(ids))
        for row, i in enumerate(todo):
            top = np.argsort(-sims[row])[:k]
            if sims[row, top[0]] < self.category_min_similarity:
                out[i] = (None, f"no policy example within cosine {self.category_min_similarity}")
                continue
            votes: dict[str, float] = {}
            for j in top:
                votes[cats[j]] = votes.get(cats[j], 0.0) + float(sims[row, j])
            winner = max(votes, key=lambda c: votes[c])
            out[i] = (
                winner,
                f"category {winner} from nearest examples ({', '.join(ids[j] for j in top[:3])})",
            )
        return out


def _normalised(probabilities: dict[Behavior, float]) -> dict[Behavior, float]:
    total = sum(probabilities.values())
    return {b: p / total for b, p in probabilities.items()} if total > 0 else probabilities
