"""A two-level cache of embedding vectors: an LRU in memory over an optional SQLite file on disk.

Keys are the SHA-256 of the model id and the text, so a changed model or text never hits a stale
vector. The file uses WAL so several processes can share it; writes are `INSERT OR IGNORE` (the
same key always maps to the same vector).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_CHUNK = 500  # SQLite's default limit on bound parameters is 999 in old builds


def text_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class VectorCache:
    """Vectors of one dimension by key; `path=None` keeps them in memory only."""

    def __init__(self, path: Path | None, *, dim: int, memory_items: int = 50_000) -> None:
        self.path = path
        self.dim = dim
        self.memory_items = memory_items
        self._memory: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
            )
            self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """The cached vectors among `keys` (memory first, then disk)."""
        found: dict[str, NDArray[np.float32]] = {}
        with self._lock:
            missing: list[str] = []
            for key in keys:
                vec = self._memory.get(key)
                if vec is None:
                    missing.append(key)
                else:
                    self._memory.move_to_end(key)
                    found[key] = vec
            if self._db is not None and missing:
                for start in range(0, len(missing), _CHUNK):
                    chunk = missing[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk
                    ).fetchall()
                    for key, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        if vec.shape[0] == self.dim:
                            found[key] = vec
                            self._remember(key, vec)
        return found

    def put_many(self, items: dict[str, NDArray[np.float32]]) -> None:
        with self._lock:
            for key, vec in items.items():
                self._remember(key, np.ascontiguousarray(vec, dtype=np.float32))
            if self._db is not None and items:
                self._db.executemany(
                    "INSERT OR IGNORE INTO vectors (key, vec) VALUES (?, ?)",
                    [
                        (k, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                        for k, v in items.items()
                    ],
                )
                self._db.commit()

    def _remember(self, key: str, vec: NDArray[np.float32]) -> None:
        self._memory[key] = vec
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def clear_memory(self) -> None:
        """Forget the vectors held in memory (the disk file, if any, keeps them)."""
        with self._lock:
            self._memory.clear()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
