"""Fetch-next and submit latency of the labelling API with many concurrent annotators.

A real `policylab serve` runs in a subprocess on 127.0.0.1; each simulated annotator is an asyncio
task with its own httpx client, looping: fetch the next item, think, submit a label. Humans take
seconds per item, so each annotator thinks `--think` seconds (uniform in [0.5x, 1.5x]) between
fetching and submitting; with no think time the run measures saturation instead.

    python bench/bench_labelling.py --backend sqlite --annotators 50
    python bench/bench_labelling.py --backend postgresql --annotators 200

Prints p50/p95/p99 of each request (ms) as a Markdown table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

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


async def annotator(
    url: str, name: str, duration: float, think: float, out: dict[str, list[float]]
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        token = (await client.get("/api/csrf")).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        (
            await client.post("/api/session", json={"name": name, "password": PASSWORD})
        ).raise_for_status()
        await asyncio.sleep(random.uniform(0, think or 0.01))
        end = time.monotonic() + duration
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = await client.post("/api/campaigns/bench/next")
            out["next"].append((time.perf_counter() - t0) * 1000)
            work = r.json()
            if "assignment_id" not in work:
                return
            await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))
            t0 = time.perf_counter()
            r = await client.post(
                f"/api/campaigns/bench/assignments/{work['assignment_id']}/label",
                json={"behavior": "refuse"},
            )
            out["submit"].append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--think", type=float, default=2.0)
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
    setup(folder, db_url, args.items, args.annotators).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "policylab",
            "serve",
            "--workspace",
            str(folder),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out: dict[str, list[float]] = {"next": [], "submit": []}

        async def run_all() -> None:
            await asyncio.gather(
                *(
                    annotator(url, f"a{i:03d}", args.duration, args.think, out)
                    for i in range(args.annotators)
                )
            )

        asyncio.run(run_all())
    finally:
        server.terminate()
        server.wait()
        if dbname:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    for what, values in out.items():
        v = np.array(values)
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        print(
            f"| {args.backend} | {args.annotators} | {args.think:g} s | {what} | {len(v)} | "
            f"{p50:.1f} | {p95:.1f} | {p99:.1f} |"
        )


if __name__ == "__main__":
    main()
