"""Monitoring benchmarks: ingest + redact throughput, and grading on Ray against the same code
without Ray, with peak memory at two input sizes.

    python bench/bench_monitor.py [--ingest 50000] [--rules 200000 1000000] [--local 5000 20000]
        [--cascade 5000 20000] [--judge-latency 0.05] [--distinct-responses]

`--cascade` grades with the `cascade` preset (the local grader, then an LLM judge for verdicts
below 0.9 confidence). The judge is a mock OpenAI-compatible server started by this script in its
own process (`--serve-judge`): after `--judge-latency` seconds it answers a well-formed verdict
(refuse when the response reads as a refusal, else comply). The local grader is trained once
before timing (its seed-set embeddings go to an on-disk cache that every run starts from), so the
runs time grading, not training. The synthetic conversations reuse 4 assistant answers, so the
local grader's embeddings are cached after the first batch; `--distinct-responses` appends a
random phrase to every answer, so every response is embedded cold.

Peak memory is the largest sum of resident memory over this process and all its children (Ray's
raylet, object store and workers included), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
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


def conversation(rng: random.Random, i: int, *, distinct: bool = False) -> list[dict[str, str]]:
    user = _text(rng, rng.randint(15, 60))
    if i % 10 == 0:
        user += f" my email is user{i}@example.com and my phone is +1 415 555 {i % 10000:04d}"
    if i % 25 == 0:
        user += " card 4111 1111 1111 1111, server 10.0.0.1, I live at 12 Baker Street"
    answer = rng.choice(ANSWERS)
    if distinct:
        answer = f"{answer} {_text(rng, rng.randint(5, 20))} ({i})."
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
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


ROW_GROUP = 50_000


def write_conversations(path: Path, n: int, *, distinct: bool = False) -> None:
    rng = random.Random(2)
    schema = pa.schema([("conversation_id", pa.int64()), ("messages", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, ROW_GROUP):
            ids = list(range(start, min(n, start + ROW_GROUP)))
            writer.write_table(
                pa.Table.from_pydict(
                    {
                        "conversation_id": ids,
                        "messages": [
                            orjson.dumps(conversation(rng, i, distinct=distinct)).decode()
                            for i in ids
                        ],
                    },
                    schema=schema,
                )
            )


class PeakMemory:
    """Peaks of the summed RSS and PSS of this process tree, and of its process count, sampled
    in a thread. RSS counts a shared page (Ray's object store, shared libraries) once in every
    process that maps it; PSS splits it between them, so summed PSS is the memory really used."""

    def __init__(self, *, exclude: set[int] | None = None) -> None:
        self.peak = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self._exclude = exclude or set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = pss = procs = 0
            for p in [me, *me.children(recursive=True)]:
                if p.pid in self._exclude:
                    continue
                with contextlib.suppress(psutil.Error):
                    info = p.memory_full_info()
                    total += info.rss
                    pss += info.pss
                    procs += 1
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, procs)
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


def _judge_reply(body: dict[str, Any]) -> bytes:
    """A well-formed verdict for the last message of a judge request (the text under review)."""
    messages = body.get("messages") or []
    text = str(messages[-1].get("content") or "") if messages else ""
    refused = any(w in text for w in ("I'm sorry", "I can't", "can't give"))
    verdict = {
        "behavior": "refuse" if refused else "comply",
        "violation": False,
        "confidence": 0.8,
        "rationale": "mock judge",
    }
    return orjson.dumps(
        {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "mock-judge"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": orjson.dumps(verdict).decode()},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


def serve_judge(latency: float) -> None:
    """Serve the mock judge on a free port; print `PORT <n>` once listening (runs until killed)."""
    import asyncio

    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        await asyncio.sleep(latency)
        return web.Response(body=_judge_reply(body), content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"PORT {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


@contextlib.contextmanager
def judge_server(latency: float) -> Any:
    """The mock judge in a child process: yields (base URL, pid)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-judge", "--judge-latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"the mock judge did not start: {line}")
        yield f"http://127.0.0.1:{line[1]}/v1", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_grade(
    grader: str,
    sizes: list[int],
    tmp: Path,
    *,
    policy: dict[str, Any] | None,
    params: dict[str, Any] | None = None,
    warm_cache: Path | None = None,
    distinct: bool = False,
    exclude: set[int] | None = None,
    engines: tuple[str, ...] = ("local", "ray"),
) -> None:
    """Grade each size with both engines. `warm_cache` is copied afresh before every run and
    passed as the local grader's `cache_dir`, so every run starts from the same cache."""
    for n in sizes:
        path = tmp / f"conv-{n}{'-distinct' if distinct else ''}.parquet"
        if not path.exists():
            write_conversations(path, n, distinct=distinct)
        for engine in engines:
            full = dict(params or {})
            if warm_cache is not None:
                cache = tmp / f"cache-{grader}-{engine}-{n}"
                shutil.rmtree(cache, ignore_errors=True)
                shutil.copytree(warm_cache, cache)
                full["cache_dir"] = str(cache)
            spec = GradeSpec(
                grader=grader, grader_params=full, policy=policy, categorise=False, embed_threads=1
            )
            load_before = os.getloadavg()[0]
            rows = judged = errors = 0
            with PeakMemory(exclude=exclude) as mem:
                started = time.perf_counter()
                for table in iter_graded(path, spec, engine=engine, num_cpus=2):  # type: ignore[arg-type]
                    rows += table.num_rows
                    judged += sum(r == "mock judge" for r in table.column("rationale").to_pylist())
                    errors += table.num_rows - table.column("error").null_count
                seconds = time.perf_counter() - started
            extra = f", escalated to the judge {judged / rows:.1%}" if grader == "cascade" else ""
            print(
                f"grade {grader} {engine:5} n={n:>9,}: {seconds:8.1f} s, {rows / seconds:9,.0f}/s, "
                f"peak RSS {mem.peak / 2**20:,.0f} MiB, PSS {mem.peak_pss / 2**20:,.0f} MiB, "
                f"{mem.peak_procs} processes, errors {errors}{extra}, "
                f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
                flush=True,
            )


def bench_cascade(
    sizes: list[int], tmp: Path, *, latency: float, distinct: bool, engines: tuple[str, ...]
) -> None:
    from policylab.graders.local import LocalGrader

    warm = tmp / "seed-cache"
    started = time.perf_counter()
    LocalGrader(None, cache_dir=str(warm)).fit().embedder.close()
    print(
        f"cascade: local grader trained (seed embeddings cached) in {time.perf_counter() - started:.0f} s"
    )
    with judge_server(latency) as (url, pid):
        bench_grade(
            "cascade",
            sizes,
            tmp,
            policy=None,
            params={"judge_model": f"openai:mock-judge@{url}"},
            warm_cache=warm,
            distinct=distinct,
            exclude={pid},
            engines=engines,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ingest", type=int, default=50_000, help="conversations to ingest (0: skip)"
    )
    parser.add_argument(
        "--rules", type=int, nargs="*", default=[200_000, 1_000_000], help="sizes for `rules`"
    )
    parser.add_argument(
        "--local", type=int, nargs="*", default=[], help="sizes for the plain `local` grader"
    )
    parser.add_argument(
        "--cascade", type=int, nargs="*", default=[5_000, 20_000], help="sizes for the cascade"
    )
    parser.add_argument(
        "--judge-latency", type=float, default=0.05, help="the mock judge's seconds per answer"
    )
    parser.add_argument(
        "--distinct-responses", action="store_true", help="make every assistant answer unique"
    )
    parser.add_argument(
        "--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"], help="engines"
    )
    parser.add_argument(
        "--row-group",
        type=int,
        default=50_000,
        help="rows per Parquet row group of the input (Ray reads one block per row group)",
    )
    parser.add_argument("--serve-judge", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_judge:
        serve_judge(args.judge_latency)
        return
    global ROW_GROUP
    ROW_GROUP = args.row_group
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.ingest:
            bench_ingest(args.ingest, tmp)
        if args.rules:
            bench_grade("rules", args.rules, tmp, policy=None, engines=tuple(args.engines))
        if args.local:
            bench_grade(
                "local",
                args.local,
                tmp,
                policy=None,
                distinct=args.distinct_responses,
                engines=tuple(args.engines),
            )
        if args.cascade:
            bench_cascade(
                args.cascade,
                tmp,
                latency=args.judge_latency,
                distinct=args.distinct_responses,
                engines=tuple(args.engines),
            )


if __name__ == "__main__":
    main()
