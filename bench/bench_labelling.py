"""Fetch-next and submit latency of the labelling API with many concurrent annotators.

A real `policylab serve` runs in a subprocess on 127.0.0.1; the simulated annotators run in this
process (a separate one), each an asyncio task with its own HTTP client and cookies, looping:
fetch the next item, think, submit a label. Humans take seconds per item, so each annotator thinks
`--think` seconds (uniform in [0.5x, 1.5x]) between fetching an item and submitting its label,
then fetches the next at once (as the labelling page does); with `--think 0` the run measures
saturation instead.

    python bench/bench_labelling.py --backend sqlite --annotators 50
    python bench/bench_labelling.py --backend postgresql --annotators 200 --workers 2

Latency is measured by the client, from sending the request to having read the whole response,
over loopback. Requests started in the first `--warmup` seconds (sign-in, connection pools,
statement caches) are left out; p50/p95/p99 are over every other request until `--duration`
seconds after the warm-up. Also reported: throughput, errors, the CPU time per request of the
server, of the client and (PostgreSQL) of the database's backends, which all share the machine's
cores; the client's event-loop lag (how late a timer fires: latency the client itself adds); and
the load average, since other work on a shared machine moves the tail.

Prints Markdown table rows for docs/benchmarks.md; `--json FILE` writes the raw numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from argon2 import PasswordHasher

from policylab.data.items import ItemRecord
from policylab.policy.loader import load_policy
from policylab.store.campaigns import CampaignSpec, create_campaign
from policylab.store.items import get_or_create_eval_set, insert_items
from policylab.store.policies import add_policy_version
from policylab.store.users import create_user
from policylab.store.workspace import Workspace

POLICY = Path(__file__).resolve().parents[1] / "examples" / "policies" / "acme" / "policy.yaml"
PASSWORD = "benchmark password"
PG_ADMIN = os.environ.get("POLICYLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def setup(folder: Path, db_url: str | None, n_items: int, n_annotators: int) -> Workspace:
    ws = Workspace.init(folder, db_url=db_url)
    loaded = load_policy(POLICY)
    cats = [c.id for c in loaded.policy.categories]
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with ws.session() as s:
        row, _ = add_policy_version(s, loaded)
        es, _ = get_or_create_eval_set(s, "bench")
        insert_items(
            s,
            es.id,
            [
                ItemRecord.from_prompt(
                    f"Benchmark prompt {i}", id=f"b{i}", categories=[cats[i % len(cats)]]
                )
                for i in range(n_items)
            ],
        )
        create_campaign(s, CampaignSpec(name="bench", k=3), policy=row, set_name="bench")
        for i in range(n_annotators):
            create_user(s, f"a{i:03d}", PASSWORD, ["annotator"], hasher=cheap)
    return ws


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants still running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(process_cpu(int(c)) for c in children)


def database_cpu(dbname: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving `dbname` (none for SQLite)."""
    if dbname is None:
        return {}
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [dbname])
        ]
    return {pid: process_cpu(pid) for pid in pids}


@dataclass
class Sample:
    kind: str
    started: float
    ms: float
    ok: bool


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Client:
    """One annotator's HTTP client (aiohttp, or httpx with `--client httpx`)."""

    def __init__(self, url: str, kind: str):
        self.kind = kind
        if kind == "httpx":
            self.httpx = httpx.AsyncClient(base_url=url, timeout=60)
        else:
            # unsafe=True: keep cookies set by an IP address such as 127.0.0.1.
            self.aiohttp = aiohttp.ClientSession(
                base_url=url,
                timeout=aiohttp.ClientTimeout(total=60),
                cookie_jar=aiohttp.CookieJar(unsafe=True),
            )
        self.headers: dict[str, str] = {}

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.kind == "httpx":
            r = await self.httpx.request(method, path, json=body, headers=self.headers)
            return r.status_code, r.json()
        async with self.aiohttp.request(method, path, json=body, headers=self.headers) as resp:
            return resp.status, await resp.json()

    async def close(self) -> None:
        if self.kind == "httpx":
            await self.httpx.aclose()
        else:
            await self.aiohttp.close()


async def annotator(
    url: str, name: str, args: argparse.Namespace, start: float, end: float, run: Run
) -> None:
    client = Client(url, args.client)
    try:
        _, body = await client.request("GET", "/api/csrf")
        client.headers["X-CSRF-Token"] = body["csrf_token"]
        status, body = await client.request(
            "POST", "/api/session", {"name": name, "password": PASSWORD}
        )
        if status != 200:
            run.failures.append(f"{name}: sign-in answered {status}: {body}")
            return
        await asyncio.sleep(random.uniform(0, args.think or 0.01))

        async def timed(kind: str, method: str, path: str, payload: Any = None) -> Any:
            t0 = time.perf_counter()
            status, body = await client.request(method, path, payload)
            ms = (time.perf_counter() - t0) * 1000
            ok = status in (200, 201)
            run.samples.append(Sample(kind, t0 - start, ms, ok))
            if not ok:
                run.failures.append(f"{name}: {kind} answered {status}: {body}")
            return body if ok else None

        while time.perf_counter() < end:
            work = await timed("next", "POST", "/api/campaigns/bench/next")
            if work is None or "assignment_id" not in work:
                return
            await asyncio.sleep(random.uniform(0.5 * args.think, 1.5 * args.think))
            path = f"/api/campaigns/bench/assignments/{work['assignment_id']}/label"
            if await timed("submit", "POST", path, {"behavior": "refuse"}) is None:
                return
    finally:
        await client.close()


async def loop_lag(end: float, run: Run) -> None:
    """How late a 10 ms timer fires in the client's event loop."""
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        run.lag_ms.append((time.perf_counter() - t0 - 0.01) * 1000)


def percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(values) if values else np.zeros(1)
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(v.max())}


def start_server(folder: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "policylab", "serve", "--workspace", str(folder)]
    command += ["--port", str(port)]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit code {server.returncode})")
        try:
            httpx.get(url + "/login", timeout=1)
            return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start within 60 s")


def measure(
    url: str, server_pid: int, dbname: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    run = Run()
    start = time.perf_counter()
    end = start + args.warmup + args.duration
    cpu: dict[str, float] = {}
    backends: dict[int, float] = {}

    async def all_annotators() -> None:
        async def mark_warm() -> None:
            await asyncio.sleep(args.warmup)
            backends.update(await asyncio.to_thread(database_cpu, dbname))
            cpu["server"], cpu["client"] = process_cpu(server_pid), time.process_time()
            cpu["wall"] = time.perf_counter()

        await asyncio.gather(
            mark_warm(),
            loop_lag(end, run),
            *(annotator(url, f"a{i:03d}", args, start, end, run) for i in range(args.annotators)),
        )

    # A full collection over this process's objects (the setup imported pandas, SQLAlchemy, ...)
    # takes ~150 ms: it would stall every request in flight and show up as server latency.
    gc.collect()
    gc.freeze()
    load_before = os.getloadavg()[0]
    asyncio.run(all_annotators())
    wall = time.perf_counter() - cpu["wall"]
    server_cpu = process_cpu(server_pid) - cpu["server"]
    client_cpu = time.process_time() - cpu["client"]
    # Backends started during the run count from zero.
    db_cpu = sum(t - backends.get(pid, 0.0) for pid, t in database_cpu(dbname).items())
    measured = [s for s in run.samples if s.started >= args.warmup]
    out: dict[str, Any] = {
        "backend": args.backend,
        "annotators": args.annotators,
        "workers": args.workers,
        "threads": args.threads,
        "think_s": args.think,
        "client": args.client,
        "duration_s": round(wall, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "errors": sum(not s.ok for s in run.samples),
        "failures": run.failures[:5],
        "requests_per_s": round(len(measured) / wall, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(len(measured), 1), 2),
        "client_cpu_ms_per_request": round(1000 * client_cpu / max(len(measured), 1), 2),
        "database_cpu_ms_per_request": round(1000 * db_cpu / max(len(measured), 1), 2),
        "client_loop_lag_ms": percentiles(run.lag_ms),
        "requests": {},
    }
    for kind in ("next", "submit"):
        values = [s.ms for s in measured if s.kind == kind]
        out["requests"][kind] = {"n": len(values), **percentiles(values)}
    return out


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for kind, r in result["requests"].items():
        rows.append(
            f"| {result['backend']} | {result['annotators']} | {result['workers']} | {kind} | "
            f"{r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
            f"{result['requests_per_s']:.0f} | {result['server_cpu_ms_per_request']:.2f} | "
            f"{result['load_average'][0]:.1f}–{result['load_average'][1]:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out first")
    parser.add_argument("--think", type=float, default=2.0, help="mean think time (s)")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--threads", type=int, default=None, help="threads per server process")
    parser.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp()) / ".policylab"
    db_url = None
    dbname = None
    if args.backend == "postgresql":
        import psycopg

        dbname = f"policylab_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        db_url = (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            + f"/{dbname}"
        )
    try:
        setup(folder, db_url, args.items, args.annotators).close()
        server, url = start_server(folder, args)
        try:
            result = measure(url, server.pid, dbname, args)
        finally:
            server.terminate()
            server.wait()
    finally:
        if dbname:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        "| backend | annotators | workers | request | n | p50 | p95 | p99 | req/s | "
        "server CPU ms/req | load avg |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    print(markdown(result))
    print(
        f"errors {result['errors']}; client CPU {result['client_cpu_ms_per_request']} ms/req; "
        f"database CPU {result['database_cpu_ms_per_request']} ms/req; "
        f"client loop lag p99 {result['client_loop_lag_ms']['p99']:.1f} ms, "
        f"max {result['client_loop_lag_ms']['max']:.1f} ms"
    )
    for failure in result["failures"]:
        print("  ", failure)


if __name__ == "__main__":
    main()
