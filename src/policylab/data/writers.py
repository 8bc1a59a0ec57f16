"""Write items to JSONL, CSV or Parquet, streaming; the files import back unchanged.

Columns are the fields of `ItemRecord`. JSONL keeps every value as JSON. CSV has no lists or
objects, so `messages`, `categories`, `tags` and `metadata` are JSON text there; Parquet keeps
`categories` and `tags` as lists of strings and `messages` and `metadata` as JSON text (a
conversation's parts do not fit one Arrow type).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from policylab.data.items import ItemRecord
from policylab.errors import PolicylabError

COLUMNS = (
    "id",
    "messages",
    "categories",
    "expected_behavior",
    "source",
    "language",
    "tags",
    "split",
    "metadata",
)
EXPORT_FORMATS = ("auto", "jsonl", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def item_row(item: ItemRecord) -> dict[str, Any]:
    """An item as one JSON-ready row with the columns `COLUMNS`."""
    return {
        "id": item.id,
        "messages": item.messages_json(),
        "categories": list(item.categories),
        "expected_behavior": item.expected_behavior.value if item.expected_behavior else None,
        "source": item.source,
        "language": item.language,
        "tags": list(item.tags),
        "split": item.split,
        "metadata": item.metadata,
    }


def export_format(path: Path, format: str = "auto") -> str:
    if format != "auto":
        if format not in EXPORT_FORMATS:
            raise PolicylabError(
                f"unknown export format {format!r}", hint="use jsonl, csv or parquet"
            )
        return format
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PolicylabError(
            f"{path}: cannot tell the format from the name",
            hint="pass --format jsonl, csv or parquet",
        )
    return fmt


def write_items(items: Iterable[ItemRecord], path: str | Path, *, format: str = "auto") -> int:
    """Write items to `path`; returns how many were written."""
    file = Path(path)
    fmt = export_format(file, format)
    file.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        return _write_jsonl(items, file)
    if fmt == "csv":
        return _write_csv(items, file)
    return _write_parquet(items, file)


def _write_jsonl(items: Iterable[ItemRecord], file: Path) -> int:
    count = 0
    with file.open("wb") as fh:
        for item in items:
            fh.write(orjson.dumps(item_row(item)) + b"\n")
            count += 1
    return count


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def _write_csv(items: Iterable[ItemRecord], file: Path) -> int:
    count = 0
    with file.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for item in items:
            row = item_row(item)
            for key in ("messages", "categories", "tags", "metadata"):
                row[key] = _json_text(row[key])
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
            count += 1
    return count


def _batches(items: Iterable[ItemRecord], size: int) -> Iterator[list[ItemRecord]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _write_parquet(items: Iterable[ItemRecord], file: Path, *, batch_size: int = 1000) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text, texts = pa.string(), pa.list_(pa.string())
    schema = pa.schema(
        [
            ("id", text),
            ("messages", text),
            ("categories", texts),
            ("expected_behavior", text),
            ("source", text),
            ("language", text),
            ("tags", texts),
            ("split", text),
            ("metadata", text),
        ]
    )
    count = 0
    with pq.ParquetWriter(file, schema) as writer:
        for batch in _batches(items, batch_size):
            rows = [item_row(i) for i in batch]
            for row in rows:
                row["messages"] = _json_text(row["messages"])
                row["metadata"] = _json_text(row["metadata"])
            writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
            count += len(rows)
    return count
