"""The embedder: the int8 ONNX export agrees with sentence-transformers, the cache serves repeats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policylab.errors import PolicylabError
from policylab.graders._onnx import CHECK_SENTENCES
from policylab.graders.embeddings import DIM, Embedder
from policylab.graders.training import seed_rows


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rows = seed_rows()
    # Every length class: one-line refusals to long essays (truncated at 256 tokens).
    picked = sorted(rows, key=lambda r: len(r.response))[:: max(1, len(rows) // 80)]
    return [r.response for r in picked] + list(CHECK_SENTENCES)


@pytest.fixture(scope="module")
def reference(texts: list[str]) -> np.ndarray:
    return Embedder(backend="torch").encode_uncached(texts)


def test_int8_onnx_agrees_with_sentence_transformers(
    texts: list[str], reference: np.ndarray
) -> None:
    got = Embedder(backend="onnx-int8").encode_uncached(texts)
    assert got.shape == (len(texts), DIM)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * reference).sum(axis=1)
    assert cosine.mean() >= 0.98
    assert cosine.min() >= 0.95


def test_fp32_onnx_matches_sentence_transformers(texts: list[str], reference: np.ndarray) -> None:
    got = Embedder(backend="onnx").encode_uncached(texts)
    assert (got * reference).sum(axis=1).min() >= 0.9999


def test_dynamic_padding_barely_changes_a_vector(texts: list[str]) -> None:
    emb = Embedder(backend="onnx")
    batch = emb.encode_uncached(texts[:20])
    alone = np.vstack([emb.encode_uncached([t]) for t in texts[:20]])
    np.testing.assert_allclose(batch, alone, atol=1e-4)


def test_cache_serves_repeats_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Embedder(cache_dir=tmp_path)
    vectors = first.encode(["alpha", "beta", "alpha"])
    np.testing.assert_array_equal(vectors[0], vectors[2])
    first.close()
    assert (tmp_path / "embeddings.sqlite").exists()

    second = Embedder(cache_dir=tmp_path)

    def boom(texts: object) -> np.ndarray:
        raise AssertionError(f"recomputed {texts}")

    monkeypatch.setattr(second, "encode_uncached", boom)
    np.testing.assert_array_equal(second.encode(["beta", "alpha"]), vectors[[1, 0]])


def test_the_cache_key_follows_the_backend(tmp_path: Path) -> None:
    a = Embedder(cache_dir=tmp_path, backend="onnx-int8")
    b = Embedder(cache_dir=tmp_path, backend="torch")
    assert a.model_id != b.model_id


def test_bad_settings_are_named() -> None:
    with pytest.raises(PolicylabError, match="unknown embedding backend"):
        Embedder(backend="gpu")  # type: ignore[arg-type]
    with pytest.raises(PolicylabError, match="max_tokens"):
        Embedder(max_tokens=4)
