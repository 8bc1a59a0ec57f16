"""File conversations under the policy's categories by embedding similarity, or under none.

Each category is described by reference texts: its title and description, and the prompt of each
of its examples. A conversation's request (its user turns) is embedded with the local sentence
encoder (`policylab.graders.embeddings.Embedder`, shared with the graders and its cache) and
compared with every reference text; the category of the most similar one wins. When even that
similarity is below `threshold`, no category fits: the conversation is a candidate for taxonomy
discovery (`policylab.monitor.clusters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policylab.chat import ChatMessage
from policylab.graders.embeddings import Embedder
from policylab.policy.schema import Policy

__all__ = ["DEFAULT_FIT_THRESHOLD", "Categoriser", "request_text"]

DEFAULT_FIT_THRESHOLD = 0.4
"""Cosine similarity to the nearest category's reference texts below which no category fits."""
MAX_CHARS = 2000


def request_text(messages: Sequence[ChatMessage] | Sequence[dict[str, Any]]) -> str:
    """The user turns of a conversation joined (what is asked, without the answer)."""
    parts: list[str] = []
    for m in messages:
        msg = m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)
        if msg.role == "user":
            parts.append(msg.text)
    return "\n".join(parts)[:MAX_CHARS]


class Categoriser:
    """Nearest-category assignment by embedding similarity (module docstring)."""

    def __init__(
        self,
        policy: Policy,
        *,
        threshold: float = DEFAULT_FIT_THRESHOLD,
        embedder: Embedder | None = None,
    ) -> None:
        if not policy.categories:
            raise ValueError(f"policy {policy.id} has no categories to file conversations under")
        self.policy = policy
        self.threshold = threshold
        self.embedder = embedder or Embedder()
        texts: list[str] = []
        owners: list[int] = []
        self.category_ids = [c.id for c in policy.categories]
        index = {cid: i for i, cid in enumerate(self.category_ids)}
        for c in policy.categories:
            texts.append(f"{c.title}: {c.description}")
            owners.append(index[c.id])
        for e in policy.examples:
            if e.category in index:
                text = request_text(e.conversation)
                if text:
                    texts.append(text)
                    owners.append(index[e.category])
        self._owners = np.array(owners, dtype=np.int64)
        self._references = self.embedder.encode(texts)

    def similarities(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Per text and category, the highest cosine similarity to that category's references."""
        vectors = self.embedder.encode(list(texts))
        sims = vectors @ self._references.T
        out = np.full((len(texts), len(self.category_ids)), -1.0, dtype=np.float32)
        for j in range(len(self.category_ids)):
            cols = self._owners == j
            out[:, j] = sims[:, cols].max(axis=1)
        return out

    def assign(self, texts: Sequence[str]) -> tuple[list[str | None], NDArray[np.float32]]:
        """The category of each text (None when none fits) and the nearest category's similarity."""
        if not texts:
            return [], np.zeros(0, dtype=np.float32)
        sims = self.similarities(texts)
        best = sims.argmax(axis=1)
        score = sims[np.arange(len(texts)), best]
        cats: list[str | None] = [
            self.category_ids[b] if s >= self.threshold else None
            for b, s in zip(best.tolist(), score.tolist(), strict=True)
        ]
        return cats, score
