"""Exact and near-duplicate detection for eval items.

Exact duplicates share a content hash (the conversation after `normalise_text`). Near duplicates
are found with MinHash LSH over character 5-shingles of the conversation's text, casefolded, with
punctuation dropped and whitespace collapsed.

Why characters, not word 3-shingles: eval prompts are short (median 13 words in HarmBench, 9 in
Do-Not-Answer, 23 in AILuminate), and one edited word removes up to three of a short prompt's
handful of word 3-shingles: `... adult movies.` against `... adult movies2.` scores 0.71 with word
3-shingles and 0.98 with character 5-shingles. Character shingles keep local word order and
tolerate typos, numbering and template fills.

The signatures are datasketch's MinHash (its `affine32` scheme and seeded permutations, computed in
one NumPy pass), and the banding uses the bands and rows `datasketch.MinHashLSH` picks for the
threshold; the tests check both against datasketch. The band tables are plain dicts of ints rather
than a `MinHashLSH`, whose per-bucket sets cost ~3 KB an item (700 MB of RSS for 100,000 items).

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

Signature = np.ndarray[Any, np.dtype[np.uint32]]


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
    signature: Signature | None
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


def _window_hashes(text: str, size: int) -> Signature:
    norm = _normalised_words(text)
    if not norm:
        return np.empty(0, dtype=np.uint32)
    points = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = max(len(points) - size + 1, 1)
    acc = np.zeros(n, dtype=np.uint64)
    for j in range(min(size, len(points))):
        # acc < 2**32 and a code point < 2**21, so acc * base + point stays below 2**64.
        acc = (acc * _BASE + points[j : j + n]) & _MASK32
    return acc.astype(np.uint32)


def shingle_hashes(text: str, *, size: int = SHINGLE_CHARS) -> Signature:
    """32-bit hashes of `shingles(text)`, distinct and sorted, computed with NumPy.

    A polynomial hash over each window of code points (mod 2**32). The MinHash mixes the bits
    itself, so this hash only has to tell shingles apart. (SHA-1 on each shingle in Python, as
    datasketch does by default, took 80% of an import's time.)
    """
    return np.unique(_window_hashes(text, size))


def _fmix32(h: Signature) -> Signature:
    """MurmurHash3's 32-bit finaliser, as datasketch applies it before the permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@cache
def _permutations(num_perm: int) -> tuple[Signature, Signature]:
    """datasketch's affine32 permutations `h -> a*h + b mod 2**32` for `_SEED`."""
    a, b = MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def signature(text: str, *, num_perm: int = DEFAULT_NUM_PERM) -> Signature | None:
    """The MinHash signature of a text's shingles (None when it has no words, e.g. images only).

    Equal to `datasketch.MinHash(scheme="affine32", seed=1).update_batch` over `shingle_hashes`,
    without a Python call per shingle.
    """
    hashes = _window_hashes(text, SHINGLE_CHARS)  # repeats do not change a minimum: no unique()
    if not len(hashes):
        return None
    a, b = _permutations(num_perm)
    with np.errstate(over="ignore"):  # arithmetic mod 2**32 is the point
        values: Signature = (_fmix32(hashes)[:, None] * a + b).min(axis=0)
    return values


def similarity(a: Signature, b: Signature) -> float:
    """The MinHash estimate of the Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


@cache
def band_ranges(threshold: float, num_perm: int) -> tuple[tuple[int, int], ...]:
    """The (start, end) of each band, as `datasketch.MinHashLSH` chooses them for `threshold`."""
    return tuple(MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges)


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
        self._ranges = band_ranges(near_threshold, num_perm) if near_threshold else ()
        # Band key -> ordinal (an int while the bucket holds one item, a list once it holds more).
        self._bands: list[dict[int, int | list[int]]] = [{} for _ in self._ranges]
        self._hashes: dict[bytes, int] = {}
        self._signatures: dict[int, Signature] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def lookup(self, content_hash: str, text: str) -> Lookup:
        """What an item duplicates among those added so far (without adding it)."""
        digest = bytes.fromhex(content_hash)
        earlier = self._hashes.get(digest)
        if earlier is not None:
            return Lookup(digest, None, Duplicate("exact", earlier, 1.0))
        sig = signature(text, num_perm=self.num_perm) if self._ranges else None
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
        if found.duplicate is None and found.signature is not None:
            self._insert(ordinal, found.signature)
        return ordinal

    def add_existing(self, content_hash: str, text: str, *, canonical: bool) -> int:
        """Register a stored item without looking it up (seeding the index from the store).

        A stored duplicate (`canonical=False`) is indexed for exact look-ups only.
        """
        ordinal = self._count
        self._count += 1
        self._hashes.setdefault(bytes.fromhex(content_hash), ordinal)
        if canonical and self._ranges:
            sig = signature(text, num_perm=self.num_perm)
            if sig is not None:
                self._insert(ordinal, sig)
        return ordinal

    def _keys(self, sig: Signature) -> list[int]:
        return [hash(sig[start:end].tobytes()) for start, end in self._ranges]

    def _insert(self, ordinal: int, sig: Signature) -> None:
        self._signatures[ordinal] = sig
        for table, key in zip(self._bands, self._keys(sig), strict=True):
            bucket = table.get(key)
            if bucket is None:
                table[key] = ordinal
            elif isinstance(bucket, list):
                bucket.append(ordinal)
            else:
                table[key] = [bucket, ordinal]

    def candidates(self, sig: Signature) -> set[int]:
        """Ordinals sharing at least one band with `sig` (what `MinHashLSH.query` returns)."""
        found: set[int] = set()
        for table, key in zip(self._bands, self._keys(sig), strict=True):
            bucket = table.get(key)
            if isinstance(bucket, list):
                found.update(bucket)
            elif bucket is not None:
                found.add(bucket)
        return found

    def _near(self, sig: Signature) -> Duplicate | None:
        assert self.near_threshold is not None
        best: Duplicate | None = None
        for candidate in sorted(self.candidates(sig)):
            score = similarity(self._signatures[candidate], sig)
            if score >= self.near_threshold and (best is None or score > best.similarity):
                best = Duplicate("near", candidate, score)
        return best
