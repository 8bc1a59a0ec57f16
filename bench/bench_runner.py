"""Runner throughput, client CPU and peak memory against a 50 ms mock OpenAI-compatible server.

    python bench/bench_runner.py                 # 10,000 items at concurrency 64 and 256, + 100,000
    python bench/bench_runner.py --local         # and time local:smollm2 on the example eval set
    python bench/bench_runner.py --update-docs   # and rewrite the Runner section of docs/benchmarks.md

Processes: the mock server (bench/mock_server.py) runs in its own process, and every measured client
(the bare aiohttp loop, the runner, optionally the openai SDK) runs in a fresh child process of its
own, so each one's CPU time and peak memory are its alone. Nothing is pinned: the operating system
spreads the server and the client over the machine's cores; the report gives the CPU each side spent
per request, so the split is visible. The bare loop is the ceiling: the same requests, the same
server, nothing else (no database, no cache, no retries), measured in the same session.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- runner:start -->", "<!-- runner:end -->"
LATENCY = 0.05


# -- measurements inside a child process -----------------------------------------------------------
def _reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM), so the peak covers the run
    # only, not the set-up before it.
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _prompt(i: int) -> str:
    return f"Item {i}: explain, in two sentences, why the sky looks blue at noon."


async def _bare(url: str, n: int, concurrency: int) -> None:
    """The ceiling: concurrency workers posting pre-built bodies over one pooled session."""
    import aiohttp
    import orjson

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                body = orjson.dumps(
                    {"model": "mock", "messages": [{"role": "user", "content": _prompt(i)}]}
                )
                async with session.post(url, data=body) as resp:
                    data = orjson.loads(await resp.read())
                    assert data["choices"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _sdk(url: str, n: int, concurrency: int) -> None:
    """The openai SDK on the same requests, for comparison."""
    import httpx
    from openai import AsyncOpenAI

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = AsyncOpenAI(
        base_url=url.removesuffix("/chat/completions"),
        api_key="none",
        http_client=httpx.AsyncClient(limits=limits),
        max_retries=0,
    )
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            out = await client.chat.completions.create(
                model="mock", messages=[{"role": "user", "content": _prompt(i)}]
            )
            assert out.choices

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()


def _fill_workspace(folder: Path, n: int) -> Any:
    from sqlalchemy import insert

    from policylab.store.models import EvalSet, Item
    from policylab.store.workspace import Workspace

    ws = Workspace.init(folder / ".policylab")
    with ws.session() as session:
        eval_set = EvalSet(name="bench")
        session.add(eval_set)
        session.flush()
        set_id = eval_set.id
    for start in range(0, n, 5000):
        rows = [
            {
                "eval_set_id": set_id,
                "external_id": f"i{i}",
                "messages": [{"role": "user", "content": _prompt(i)}],
                "content_hash": hashlib.sha256(_prompt(i).encode()).hexdigest(),
            }
            for i in range(start, min(n, start + 5000))
        ]
        with ws.session() as session:
            session.execute(insert(Item), rows)
    return ws


async def _runner(ws: Any, base_url: str, n: int, concurrency: int) -> dict[str, Any]:
    from policylab.models.openai_compat import OpenAICompatModel
    from policylab.runs import RunOptions, run_model

    model = OpenAICompatModel("mock", base_url, max_connections=concurrency)
    try:
        summary = await run_model(
            ws, model, items="bench", name="bench", options=RunOptions(concurrency=concurrency)
        )
    finally:
        await model.aclose()
    assert summary.counts.succeeded == n, summary
    return {"status": summary.status}


def local_demo() -> dict[str, Any]:
    """The README demo's model step: local:smollm2 answering the example eval set (166 prompts),
    model loading included, with the default settings of `policylab run`."""
    from sqlalchemy import insert

    from policylab.models.local import LocalModel
    from policylab.runs import run_model
    from policylab.store.models import EvalSet, Item
    from policylab.store.workspace import Workspace

    records = [
        json.loads(line)
        for line in (ROOT / "examples" / "eval" / "acme-eval.jsonl").read_text().splitlines()
        if line.strip()
    ]
    tmp = Path(tempfile.mkdtemp(prefix="policylab-bench-"))
    try:
        ws = Workspace.init(tmp / ".policylab")
        with ws.session() as session:
            eval_set = EvalSet(name="acme")
            session.add(eval_set)
            session.flush()
            rows = [
                {
                    "eval_set_id": eval_set.id,
                    "external_id": r["id"],
                    "messages": r["messages"],
                    "content_hash": hashlib.sha256(r["id"].encode()).hexdigest(),
                }
                for r in records
            ]
            session.execute(insert(Item), rows)

        async def go() -> Any:
            model = LocalModel()
            try:
                return await run_model(ws, model, items="acme")
            finally:
                await model.aclose()

        t0 = time.perf_counter()
        summary = asyncio.run(go())
        elapsed = time.perf_counter() - t0
        c = summary.counts
        assert c.succeeded == len(records), summary
        return {
            "items": c.succeeded,
            "elapsed": elapsed,
            "tokens": c.completion_tokens,
            "workers": len(os.sched_getaffinity(0)),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child(phase: str, port: int, n: int, concurrency: int) -> dict[str, Any]:
    base_url = f"http://127.0.0.1:{port}/v1"
    url = f"{base_url}/chat/completions"
    tmp = Path(tempfile.mkdtemp(prefix="policylab-bench-"))
    try:
        ws = _fill_workspace(tmp, n) if phase == "runner" else None
        # Imports happen before the clock starts, for every client alike: the figure is the
        # throughput of the run, not the start-up of a fresh interpreter (given apart, `import_s`).
        t_import = time.perf_counter()
        importlib.import_module(
            {"bare": "aiohttp", "sdk": "openai", "runner": "policylab.runs"}[phase]
        )
        if phase == "runner":
            importlib.import_module("policylab.models.openai_compat")
        import_s = time.perf_counter() - t_import
        _reset_peak_rss()
        cpu0, t0 = _cpu(), time.perf_counter()
        if phase == "bare":
            asyncio.run(_bare(url, n, concurrency))
        elif phase == "sdk":
            asyncio.run(_sdk(url, n, concurrency))
        else:
            asyncio.run(_runner(ws, base_url, n, concurrency))
        elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
        # The store process is started by the run, so its whole life is the run's.
        kids_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {
            "elapsed": elapsed,
            "cpu": cpu,
            "peak_mb": _peak_rss_mb(),
            "child_mb": kids_peak,
            "import_s": import_s,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the driver ------------------------------------------------------------------------------------
def _server_cpu(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as resp:
        return float(json.loads(resp.read())["cpu_s"])


def _measure(phase: str, port: int, n: int, concurrency: int) -> dict[str, Any]:
    server0 = _server_cpu(port)
    args = ["--child", phase, "--port", str(port), "--items", str(n), "--concurrency"]
    out = subprocess.run(
        [sys.executable, __file__, *args, str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(
        phase=phase,
        n=n,
        concurrency=concurrency,
        rate=n / result["elapsed"],
        cpu_ms=1000 * result["cpu"] / n,
        server_cpu_ms=1000 * (_server_cpu(port) - server0) / n,
    )
    return result


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return max(runs, key=lambda r: r["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the runner against a mock server.")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000, help="the memory check's item count")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--repeat", type=int, default=2, help="runs per phase; the best is kept")
    parser.add_argument("--with-sdk", action="store_true", help="also time the openai SDK at 64")
    parser.add_argument(
        "--local", action="store_true", help="also time local:smollm2 on the example eval set"
    )
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--child", choices=["bare", "runner", "sdk"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.port, args.items, args.concurrency[0])))
        return
    if args.with_sdk and importlib.util.find_spec("openai") is None:
        raise SystemExit("--with-sdk needs the openai package: .venv/bin/pip install openai")

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "mock_server.py"), "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        load = os.getloadavg()[0]
        rows: list[dict[str, Any]] = []
        for concurrency in args.concurrency:
            bare, ours = [], []
            for _ in range(args.repeat):  # interleaved, so a busy moment hits both alike
                bare.append(_measure("bare", port, args.items, concurrency))
                ours.append(_measure("runner", port, args.items, concurrency))
            b, r = _best(bare), _best(ours)
            r["ratio"] = r["rate"] / b["rate"]
            b["ratio"] = 1.0
            rows += [b, r]
            print(_line(b), _line(r), sep="\n", flush=True)
        large = _measure("runner", port, args.large, max(args.concurrency))
        large["ratio"] = float("nan")
        rows.append(large)
        print(_line(large), flush=True)
        if args.with_sdk:
            sdk = _measure("sdk", port, min(args.items, 5000), 64)
            sdk["ratio"] = float("nan")
            rows.append(sdk)
            print(_line(sdk), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    local = None
    if args.local:
        local = local_demo()
        print(f"local:smollm2: {local}", flush=True)
    report = _report(rows, load, local)
    print(report)
    if args.update_docs:
        _update_docs(report)


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['phase']:>6} n={r['n']:>7,} c={r['concurrency']:>3}: {r['rate']:>7,.0f}/s "
        f"({r['rate'] / (r['concurrency'] / LATENCY):.2f} of ideal), ratio {r['ratio']:.2f}, "
        f"client {r['cpu_ms']:.3f} ms/req, server {r['server_cpu_ms']:.3f} ms/req, "
        f"peak {r['peak_mb']:.0f} MB"
        + (f" (+ store process {r['child_mb']:.0f} MB)" if r["phase"] == "runner" else "")
    )


NAMES = {"bare": "bare aiohttp loop (ceiling)", "runner": "policylab runner", "sdk": "openai SDK"}


def _report(rows: list[dict[str, Any]], load: float, local: dict[str, Any] | None) -> str:
    lines = [
        f"Measured by `python bench/bench_runner.py` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, mock server latency "
        f"{LATENCY * 1000:.0f} ms, load average {load:.1f} at the start (the machine is shared). "
        "Best of the interleaved repeats; the runner includes the response cache and the "
        "workspace writes (SQLite).",
        "",
        "| client | items | concurrency | requests/s | of ideal | ratio to ceiling "
        "| client CPU/request | server CPU/request | peak RSS during run (store process) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "–" if r["ratio"] != r["ratio"] else f"{r['ratio']:.2f}"
        lines.append(
            f"| {NAMES[r['phase']]} | {r['n']:,} | {r['concurrency']} | {r['rate']:,.0f} "
            f"| {r['rate'] / (r['concurrency'] / LATENCY):.2f} | {ratio} | {r['cpu_ms']:.3f} ms "
            f"| {r['server_cpu_ms']:.3f} ms | {r['peak_mb']:.0f} MB"
            + (f" ({r['child_mb']:.0f} MB) |" if r["phase"] == "runner" else " |")
        )
    lines += [
        "",
        "Client CPU counts the measured process and its children (the runner's store process); "
        "server CPU is the mock server's own. The ideal is concurrency / latency requests/s. "
        "The clock starts after each client's imports (a fresh interpreter's start-up, not the "
        "run's throughput): "
        + ", ".join(
            f"{NAMES[p]} {max(r['import_s'] for r in rows if r['phase'] == p):.2f} s"
            for p in dict.fromkeys(r["phase"] for r in rows)
        )
        + "; everything else the run does (opening the run, starting the store process, "
        "reading items, writing answers, the summary) is inside it.",
    ]
    if local is not None:
        lines += [
            "",
            f"Local model: `local:smollm2` answered the example eval set ({local['items']} "
            f"prompts, at most 96 new tokens each) in {local['elapsed']:.0f} s, model loading "
            f"included ({local['tokens']:,} tokens generated, {local['workers']} worker "
            "processes with one torch thread each).",
        ]
    return "\n".join(lines)


def _update_docs(report: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    block = f"{START}\n{report}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + f"\n\n## Runner\n\n{block}\n"
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
