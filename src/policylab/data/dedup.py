"""Exact and near-duplicate detection for eval items.

Exact duplicates share a content hash (the conversation after `normalise_text`). Near duplicates are
found with MinHash LSH (datasketch) over character 5-shingles of the conversation's text,
casefolded, with punctuation dropped and whitespace collapsed. Why characters, not word 3-shingles:
eval prompts are short (a median of 10 to 20 words in HarmBench, Do-Not-Answer and AILuminate), and
one edited word removes up to three of a short prompt's handful of word 3-shingles, so `adult
movies.` against `adult movies2.` scores 0.71 with words and 0.98 with characters. Character
shingles keep local word order and tolerate typos, numbering and template fills.

The index is in memory and keyed by ordinals (0, 1, 2, ... in the order items are added), so a
caller can add items before they have database ids and map ordinals to ids itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from datasketch import MinHash, MinHashLSH

from policylab.chat import ChatMessage

SHINGLE_CHARS = 5
DEFAULT_NEAR_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
_SEED = 1
_SCHEME = "affine32"  # datasketch's default: 32-bit hash values, 512 bytes a signature
_WORD = re.compile(r"\w+")
_BASE = np.uint64(1_000_003)
_MASK32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class Duplicate:
    """`of`: the ordinal of the earlier item this one duplicates; `similarity` 1.0 when exact."""

    kind: Literal["exact", "near"]
    of: int
    similarity: float


@dataclass(frozen=True)
class Lookup:
    """The result of `DuplicateIndex.lookup`, to pass to `DuplicateIndex.add`."""

    digest: bytes
    signature: MinHash | None
    duplicate: Duplicate | None


def near_text(messages: Sequence[ChatMessage]) -> str:
    """The text compared for near duplicates: every turn's text, without role labels."""
    return "\n".join(m.text for m in messages)


def _normalised_words(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def shingles(text: str, *, size: int = SHINGLE_CHARS) -> set[str]:
    """Character shingles of the casefolded words joined by spaces (empty when there are none)."""
    norm = _normalised_words(text)
    if len(norm) <= size:
        return {norm} if norm else set()
    return {norm[i : i + size] for i in range(len(norm) - size + 1)}


def shingle_hashes(text: str, *, size: int = SHINGLE_CHARS) -> np.ndarray[Any, np.dtype[np.uint32]]:
    """32-bit hashes of `shingles(text)`, distinct and sorted, computed with NumPy.

    A polynomial hash over each window of code points (mod 2**32); MinHash mixes the bits itself
    (datasketch's affine32 scheme applies fmix32), so the hash only has to tell shingles apart.
    Hashing each shingle with SHA-1 in Python cost ~80% of an import's time.
    """
    norm = _normalised_words(text)
    if not norm:
        return np.empty(0, dtype=np.uint32)
    points = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = max(len(points) - size + 1, 1)
    width = min(size, len(points))
    acc = np.zeros(n, dtype=np.uint64)
    for j in range(width):
        # acc < 2**32 and points < 2**21, so acc * base + point stays below 2**64.
        acc = (acc * _BASE + points[j : j + n]) & _MASK32
    return np.unique(acc.astype(np.uint32))


def _identity(value: int) -> int:
    return value


@cache
def _permutations(num_perm: int) -> Any:
    # MinHash draws its permutations from the seed on every construction: draw them once.
    return MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME).permutations


def signature(text: str, *, num_perm: int = DEFAULT_NUM_PERM) -> MinHash | None:
    """The MinHash of a text's shingles, or None when it has no words (an image-only item)."""
    hashes = shingle_hashes(text)
    if not len(hashes):
        return None
    mh = MinHash(
        num_perm=num_perm,
        seed=_SEED,
        hashfunc=_identity,
        permutations=_permutations(num_perm),
        scheme=_SCHEME,
    )
    mh.update_batch(hashes.tolist())
    return mh


class DuplicateIndex:
    """Content hashes and MinHash signatures of the items seen so far, to look new ones up against.

    Only canonical items (those not themselves duplicates) enter the near-duplicate index, so a
    duplicate always points at a canonical item, never along a chain.
    """

    def __init__(
        self,
        *,
        near_threshold: float | None = DEFAULT_NEAR_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
    ):
        if near_threshold is not None and not 0.0 < near_threshold <= 1.0:
            raise ValueError(f"near_threshold must be in (0, 1], got {near_threshold}")
        self.near_threshold = near_threshold
        self.num_perm = num_perm
        self._hashes: dict[bytes, int] = {}
        self._signatures: dict[int, np.ndarray[Any, np.dtype[np.uint32]]] = {}
        self._lsh = (
            MinHashLSH(threshold=near_threshold, num_perm=num_perm) if near_threshold else None
        )
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def lookup(self, content_hash: str, text: str) -> Lookup:
        """What an item duplicates among those added so far (without adding it)."""
        digest = bytes.fromhex(content_hash)
        earlier = self._hashes.get(digest)
        if earlier is not None:
            return Lookup(digest, None, Duplicate("exact", earlier, 1.0))
        sig = signature(text, num_perm=self.num_perm) if self._lsh is not None else None
        return Lookup(digest, sig, self._near(sig) if sig is not None else None)

    def add(self, found: Lookup) -> int:
        """Add a looked-up item; returns its ordinal.

        An exact duplicate takes an ordinal but adds nothing; a near duplicate is added for exact
        look-ups only; a canonical item for both.
        """
        ordinal = self._count
        self._count += 1
        if found.duplicate is not None and found.duplicate.kind == "exact":
            return ordinal
        self._hashes.setdefault(found.digest, ordinal)
        if found.duplicate is None and found.signature is not None and self._lsh is not None:
            self._insert(ordinal, found.signature)
        return ordinal

    def _insert(self, ordinal: int, sig: MinHash) -> None:
        assert self._lsh is not None
        self._lsh.insert(ordinal, sig, check_duplication=False)
        self._signatures[ordinal] = sig.hashvalues.astype(np.uint32, copy=False)

    def add_existing(self, content_hash: str, text: str, *, canonical: bool) -> int:
        """Register a stored item without looking it up (seeding the index from the store).

        A stored duplicate (`canonical=False`) is indexed for exact look-ups only.
        """
        ordinal = self._count
        self._count += 1
        digest = bytes.fromhex(content_hash)
        self._hashes.setdefault(digest, ordinal)
        if canonical and self._lsh is not None:
            sig = signature(text, num_perm=self.num_perm)
            if sig is not None:
                self._insert(ordinal, sig)
        return ordinal

    def _near(self, sig: MinHash) -> Duplicate | None:
        assert self._lsh is not None
        assert self.near_threshold is not None
        values = sig.hashvalues
        best: Duplicate | None = None
        for candidate in sorted(self._lsh.query(sig)):
            similarity = float(np.mean(self._signatures[candidate] == values))
            if similarity >= self.near_threshold and (best is None or similarity > best.similarity):
                best = Duplicate("near", candidate, similarity)
        return best
