"""Streaming readers for item files: JSONL, CSV, Parquet and Hugging Face datasets saved to disk.

Each reader is a generator of `(row_number, row)`: it never holds the whole file in memory. The row
number is what a person would look for: the line in a JSONL file, and the 1-based data row elsewhere
(a CSV's header is not a row; a CSV value may span several lines). A row that cannot be read as a
record (bad JSON, a CSV row with the wrong number of fields) is yielded as an `UnreadableRow`, so
the caller can quarantine it and go on; a file that cannot be read at all raises `PolicylabError`.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from policylab.errors import Location, PolicylabError

Format = Literal["auto", "jsonl", "csv", "parquet", "hf"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "csv", "parquet", "hf")

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

HF_HINT = "pip install policylab[hf]"

# Prompts with long context passages exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


@dataclass(frozen=True)
class UnreadableRow:
    """A row that could not be read as a record, with why and its raw text."""

    reason: str
    raw: str | dict[str, Any] | list[Any]


Row = dict[str, Any] | UnreadableRow


def detect_format(path: Path) -> str:
    """The format of `path` from its name: a folder is a saved HF dataset."""
    if path.is_dir():
        return "hf"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PolicylabError(
            f"{path}: cannot tell the format from the name",
            hint="pass --format jsonl, csv, parquet or hf",
        )
    return fmt


def read_rows(
    path: str | Path, *, format: str = "auto", hf_split: str | None = None
) -> Iterator[tuple[int, Row]]:
    """Stream the rows of a file in any supported format."""
    file = Path(path)
    if not file.exists():
        raise PolicylabError(f"{file}: no such file or folder")
    fmt = detect_format(file) if format == "auto" else format
    if fmt == "jsonl":
        return read_jsonl(file)
    if fmt == "csv":
        return read_csv(file)
    if fmt == "parquet":
        return read_parquet(file)
    if fmt == "hf":
        return read_hf(file, split=hf_split)
    raise PolicylabError(f"unknown format {format!r}", hint=f"use one of {', '.join(FORMATS)}")


def count_rows(
    path: str | Path, *, format: str = "auto", hf_split: str | None = None
) -> int | None:
    """The number of rows when the file says so without being read (Parquet, HF); else None."""
    file = Path(path)
    fmt = detect_format(file) if format == "auto" else format
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(file).metadata.num_rows)
    if fmt == "hf":
        return len(_hf_dataset(file, hf_split))
    return None


def read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    """One JSON object per line; blank lines are skipped. The row number is the line number."""
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield line_no, UnreadableRow(f"not valid JSON: {exc}", text)
                continue
            if not isinstance(value, dict):
                yield (
                    line_no,
                    UnreadableRow(f"expected a JSON object, found {type(value).__name__}", value),
                )
                continue
            yield line_no, value


def _utf8_lines(fh: IO[bytes], path: Path) -> Iterator[str]:
    """Decode line by line, so an encoding error names its line (a text file decodes by blocks)."""
    for line_no, raw in enumerate(fh, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicylabError(
                f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}",
                location=Location(path, line_no),
                hint="save the file as UTF-8",
            ) from exc
        yield text.removeprefix("\ufeff") if line_no == 1 else text


def read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    """A CSV file with a header row (UTF-8, a BOM allowed); values may span lines."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with path.open("rb") as fh:
        reader = csv.reader(_utf8_lines(fh, path))
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise PolicylabError(f"{path}: cannot read the header row: {exc}") from exc
        if not header:
            raise PolicylabError(f"{path}: empty file", hint="a CSV file needs a header row")
        blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
        if blank or len(set(header)) != len(header):
            raise PolicylabError(
                "the header row needs a distinct, non-empty name for every column",
                location=Location(path, 1),
            )
        row_no = 0
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row_no += 1
                yield row_no, UnreadableRow(f"line {start}: not valid CSV: {exc}", "")
                continue
            if not values:
                continue  # a blank line between records
            row_no += 1
            if len(values) != len(header):
                yield (
                    row_no,
                    UnreadableRow(
                        f"line {start}: {len(values)} fields, but the header has {len(header)}",
                        _pairs(header, values),
                    ),
                )
                continue
            yield row_no, dict(zip(header, values, strict=True))


def _pairs(header: list[str], values: list[str]) -> dict[str, Any]:
    """A broken row kept for the quarantine: known columns by name, extra values under `_extra`."""
    row: dict[str, Any] = dict(zip(header, values, strict=False))
    if len(values) > len(header):
        row["_extra"] = values[len(header) :]
    return row


def read_parquet(path: Path, *, batch_size: int = 1024) -> Iterator[tuple[int, Row]]:
    """A Parquet file, read one record batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PolicylabError(f"{path}: not a readable Parquet file: {exc}") from exc
    row_no = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row


def _hf_dataset(path: Path, split: str | None) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise PolicylabError(
            "reading a Hugging Face dataset needs the `datasets` package",
            hint=f"install it with `{HF_HINT}`",
        ) from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise PolicylabError(
            f"{path}: not a dataset saved with `save_to_disk`: {exc}",
            hint="save it with `Dataset.save_to_disk(PATH)` or pass another --format",
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        if split is None and len(names) == 1:
            split = names[0]
        if split is None or split not in loaded:
            raise PolicylabError(
                f"{path}: a dataset with splits {', '.join(names)}"
                + (f"; no split {split!r}" if split else ""),
                hint="choose one with --hf-split NAME",
            )
        return loaded[split]
    if split is not None:
        raise PolicylabError(f"{path}: a single dataset without splits; drop --hf-split")
    return loaded


def read_hf(
    path: Path, *, split: str | None = None, batch_size: int = 1000
) -> Iterator[tuple[int, Row]]:
    """A Hugging Face dataset saved with `save_to_disk` (memory-mapped Arrow, read in batches)."""
    dataset = _hf_dataset(path, split)
    row_no = 0
    for batch in dataset.iter(batch_size=batch_size):
        columns = list(batch)
        for values in zip(*(batch[c] for c in columns), strict=True):
            row_no += 1
            yield row_no, dict(zip(columns, values, strict=True))
