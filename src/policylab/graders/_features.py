"""Features of a (request, response) pair for the local grader's classifier head.

Parts, joined in the order given by a spec such as ``"response+opening+rules+structure"``:

- ``response``: the embedding of the whole response (truncated by the embedder);
- ``opening``: the embedding of its first `OPENING_CHARS` characters, where refusals and
  safe-completion framing sit, so they are not averaged away by a long body;
- ``request``: the embedding of the request; ``product``: request times response, element-wise;
- ``rules``: which refusal and safe-completion patterns of the `rules` grader occur, in the opening
  and later, as 0/1;
- ``structure``: length, line count, share of list lines, a code fence, questions per 100
  characters.

The default (`DEFAULT_FEATURES`) was chosen by cross-validation held out by domain on the seed set
and policy examples only (see docs/graders.md): the request parts did not help there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from policylab.errors import PolicylabError
from policylab.graders.embeddings import Embedder
from policylab.graders.rules import OPENING_CHARS, PATTERNS, find_matches

PARTS: tuple[str, ...] = ("response", "opening", "request", "product", "rules", "structure")
DEFAULT_FEATURES = "response+opening+rules+structure"
_LIST_LINE = re.compile(r"\s*(?:\d+[.)]|[-*•])\s")
_PATTERN_INDEX = {p.id: i for i, p in enumerate(PATTERNS)}


def parse_spec(spec: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in spec.split("+") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise PolicylabError(
            f"unknown feature part(s) {unknown or [spec]}",
            hint=f"join parts from {', '.join(PARTS)} with '+', e.g. {DEFAULT_FEATURES!r}",
        )
    if "response" not in parts and "opening" not in parts:
        raise PolicylabError(f"features {spec!r} read nothing of the response: add 'response'")
    return parts


def opening(text: str) -> str:
    return text.strip()[:OPENING_CHARS]


def rule_features(texts: Sequence[str]) -> NDArray[np.float32]:
    n = len(PATTERNS)
    out = np.zeros((len(texts), 2 * n), dtype=np.float32)
    for row, text in enumerate(texts):
        for m in find_matches(text.strip()):
            col = _PATTERN_INDEX[m.pattern.id]
            out[row, col if m.start < OPENING_CHARS else n + col] = 1.0
    return out


def structure_features(texts: Sequence[str]) -> NDArray[np.float32]:
    out = np.zeros((len(texts), 5), dtype=np.float32)
    for row, text in enumerate(texts):
        body = text.strip()
        lines = body.splitlines() or [""]
        out[row] = (
            np.log1p(len(body)) / 8.0,
            np.log1p(len(lines)) / 4.0,
            sum(bool(_LIST_LINE.match(line)) for line in lines) / len(lines),
            float("```" in body),
            body.count("?") / max(1.0, len(body) / 100.0),
        )
    return out


def features(
    parts: Sequence[str], embedder: Embedder, requests: Sequence[str], responses: Sequence[str]
) -> NDArray[np.float32]:
    """The feature matrix, one row per (request, response)."""
    blocks: list[NDArray[np.float32]] = []
    response_vec: NDArray[np.float32] | None = None
    request_vec: NDArray[np.float32] | None = None
    for part in parts:
        if part in ("response", "product") and response_vec is None:
            response_vec = embedder.encode(responses)
        if part in ("request", "product") and request_vec is None:
            request_vec = embedder.encode(requests)
        if part == "response":
            assert response_vec is not None
            blocks.append(response_vec)
        elif part == "opening":
            blocks.append(embedder.encode([opening(t) for t in responses]))
        elif part == "request":
            assert request_vec is not None
            blocks.append(request_vec)
        elif part == "product":
            assert request_vec is not None
            assert response_vec is not None
            blocks.append(request_vec * response_vec)
        elif part == "rules":
            blocks.append(rule_features(responses))
        elif part == "structure":
            blocks.append(structure_features(responses))
    return np.hstack(blocks).astype(np.float32, copy=False)
