"""Monitoring benchmarks: ingest + redact throughput, and grading on Ray against the same code
without Ray, with peak memory at two input sizes.

    python bench/bench_monitor.py [--ingest 50000] [--rules 200000 1000000] [--local 5000 20000]

Peak memory is the largest sum of resident memory over this process and all its children (Ray's
raylet, object store and workers included), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from policylab.data.readers import read_jsonl
from policylab.data.redact import Redactor
from policylab.monitor.grading import GradeSpec, iter_graded
from policylab.monitor.ingest import LogParser
from policylab.store.monitor import ingest_file
from policylab.store.workspace import Workspace

WORDS = [
    "please",
    "help",
    "me",
    "plan",
    "a",
    "trip",
    "to",
    "the",
    "coast",
    "with",
    "my",
    "family",
    "and",
    "find",
    "cheap",
    "hotels",
    "near",
    "the",
    "beach",
    "how",
    "do",
    "I",
    "fix",
    "this",
    "python",
    "error",
    "in",
    "my",
    "script",
    "when",
    "reading",
    "a",
    "csv",
    "file",
    "with",
    "pandas",
    "dataframe",
    "write",
    "a",
    "short",
    "story",
    "about",
    "a",
    "dragon",
    "who",
    "learns",
    "to",
    "cook",
    "soup",
    "for",
    "the",
    "village",
    "festival",
    "tonight",
]
ANSWERS = [
    "I'm sorry, but I can't help with that.",
    "Sure! Here is a step-by-step answer to your question, with examples and a short summary. " * 3,
    "I can't give medical advice, but please talk to a doctor or pharmacist about the dose.",
    "Here are some general safety tips you could follow, and resources for more help. " * 2,
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def conversation(rng: random.Random, i: int) -> list[dict[str, str]]:
    user = _text(rng, rng.randint(15, 60))
    if i % 10 == 0:
        user += f" my email is user{i}@example.com and my phone is +1 415 555 {i % 10000:04d}"
    if i % 25 == 0:
        user += " card 4111 1111 1111 1111, server 10.0.0.1, I live at 12 Baker Street"
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": user},
        {"role": "assistant", "content": rng.choice(ANSWERS)},
    ]


def write_logs(path: Path, n: int) -> None:
    rng = random.Random(1)
    with path.open("wb") as fh:
        for i in range(n):
            row = {
                "id": f"c{i}",
                "timestamp": 1_740_830_400 + i,
                "user_id": f"u{i % 5000}",
                "messages": conversation(rng, i),
            }
            fh.write(orjson.dumps(row) + b"\n")


def write_conversations(path: Path, n: int) -> None:
    rng = random.Random(2)
    schema = pa.schema([("conversation_id", pa.int64()), ("messages", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, 50_000):
            ids = list(range(start, min(n, start + 50_000)))
            writer.write_table(
                pa.Table.from_pydict(
                    {
                        "conversation_id": ids,
                        "messages": [orjson.dumps(conversation(rng, i)).decode() for i in ids],
                    },
                    schema=schema,
                )
            )


class PeakMemory:
    """The peak of the summed RSS of this process tree, sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def bench_ingest(n: int, tmp: Path) -> None:
    logs = tmp / "logs.jsonl"
    write_logs(logs, n)
    parser = LogParser(salt=b"x" * 32, redactor=Redactor())
    started = time.perf_counter()
    rows = 0
    for row_no, row in read_jsonl(logs):
        parser.parse(row_no, row)
        rows += 1
    parse = time.perf_counter() - started
    ws = Workspace.init(tmp / "ws")
    report = ingest_file(ws, logs, source="bench")
    print(f"ingest: {n:,} conversations")
    print(f"  read + validate + redact + hash: {rows / parse:,.0f} conversations/s (1 core)")
    print(
        f"  ... + store in SQLite: {report.rows_read / report.seconds:,.0f} conversations/s; "
        f"redacted {dict(report.redactions)}"
    )


def bench_grade(grader: str, sizes: list[int], tmp: Path, *, policy: dict[str, Any] | None) -> None:
    spec = GradeSpec(grader=grader, policy=policy, categorise=False, embed_threads=1)
    for n in sizes:
        path = tmp / f"conv-{n}.parquet"
        if not path.exists():
            write_conversations(path, n)
        for engine in ("local", "ray"):
            with PeakMemory() as mem:
                started = time.perf_counter()
                rows = sum(t.num_rows for t in iter_graded(path, spec, engine=engine, num_cpus=2))  # type: ignore[arg-type]
                seconds = time.perf_counter() - started
            print(
                f"grade {grader} {engine:5} n={n:>9,}: {seconds:8.1f} s, {rows / seconds:9,.0f}/s, "
                f"peak RSS {mem.peak / 2**20:,.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", type=int, default=50_000)
    parser.add_argument("--rules", type=int, nargs="*", default=[200_000, 1_000_000])
    parser.add_argument("--local", type=int, nargs="*", default=[5_000, 20_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.ingest:
            bench_ingest(args.ingest, tmp)
        if args.rules:
            bench_grade("rules", args.rules, tmp, policy=None)
        if args.local:
            bench_grade("local", args.local, tmp, policy=None)


if __name__ == "__main__":
    main()
