"""Grading deployment conversations at scale: one batch function, run locally or on Ray Data.

The input is a Parquet file with a `conversation_id` (int64) and `messages` (the conversation as a
JSON string) column. `GradeBatch` turns one Arrow batch into one batch of verdict columns
(`VERDICT_SCHEMA`): it files each request under a policy category (optional, `Categoriser`) and
grades the last assistant turn with any registered grader or cascade. Both engines stream the
same function over the file, so results are identical and memory stays flat as the input grows:

- `engine="local"`: `pyarrow.parquet.ParquetFile.iter_batches`, in this process;
- `engine="ray"`: `ray.data.read_parquet(...).map_batches(GradeBatch, concurrency=N)` on a local
  Ray instance (`ray.init(num_cpus=...)`) or an existing cluster (`address`), whose streaming
  executor keeps a bounded number of blocks in flight; graded batches stream back to the caller.

A remote Ray cluster needs policylab installed on its workers.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from policylab.chat import ChatMessage
from policylab.errors import PolicylabError
from policylab.graders.base import REGISTRY, Sample, Verdict, build_grader
from policylab.monitor.categorise import DEFAULT_FIT_THRESHOLD, Categoriser, request_text
from policylab.policy.schema import Policy

__all__ = [
    "INPUT_SCHEMA",
    "NO_RESPONSE",
    "VERDICT_SCHEMA",
    "Engine",
    "GradeBatch",
    "GradeSpec",
    "iter_graded",
    "make_grader",
    "write_parquet",
]

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]

INPUT_SCHEMA = pa.schema([("conversation_id", pa.int64()), ("messages", pa.string())])
VERDICT_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.int64()),
        ("behavior", pa.string()),
        ("violation", pa.bool_()),
        ("category", pa.string()),
        ("category_similarity", pa.float32()),
        ("rule_ids", pa.list_(pa.string())),
        ("confidence", pa.float64()),
        ("rationale", pa.string()),
        ("error", pa.string()),
    ]
)
NO_RESPONSE = "no_response: the conversation has no assistant turn to grade"


def make_grader(name: str, policy: Policy | None, params: Mapping[str, Any] | None = None) -> Any:
    """The grader `name`: the CLI's presets (`rules`, `local`, `llm`, `cascade`: local, then the
    LLM judge, with `judge_model` in `params`) or any registered grader, given the policy when
    its constructor takes one."""
    import policylab.graders  # noqa: F401  (registers the built-in graders)
    from policylab.graders import presets

    if name in presets.NAMES:
        return presets.make_grader(name, policy=policy, **dict(params or {}))
    cls = REGISTRY.get(name)
    if cls is None:
        raise PolicylabError(
            f"no grader named {name!r}", hint=f"choose one of: {', '.join(sorted(REGISTRY))}"
        )
    full = dict(params or {})
    if policy is not None and "policy" in inspect.signature(cls.__init__).parameters:
        full.setdefault("policy", policy)
    return build_grader(name, full)


@dataclass(frozen=True)
class GradeSpec:
    """What to grade with: plain values only, so it travels to Ray workers as it is."""

    grader: str
    grader_params: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    categorise: bool = True
    fit_threshold: float = DEFAULT_FIT_THRESHOLD
    embed_threads: int | None = None

    def load_policy(self) -> Policy | None:
        return Policy.model_validate(self.policy) if self.policy is not None else None


def split_conversation(messages: list[ChatMessage]) -> tuple[list[ChatMessage], str | None]:
    """The request (every turn before the last assistant turn) and that turn's text."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "assistant":
            return messages[:i], messages[i].text
    return messages, None


class GradeBatch:
    """Categorise and grade one Arrow batch (a callable class: one grader per Ray actor)."""

    def __init__(self, spec: GradeSpec) -> None:
        self.spec = spec
        policy = spec.load_policy()
        self.grader = make_grader(spec.grader, policy, spec.grader_params)
        self.categoriser: Categoriser | None = None
        if spec.categorise:
            if policy is None:
                raise PolicylabError(
                    "filing conversations under categories needs a policy",
                    hint="pass --policy FILE, or --no-categorise",
                )
            from policylab.graders.embeddings import Embedder

            self.categoriser = Categoriser(
                policy,
                threshold=spec.fit_threshold,
                embedder=Embedder(threads=spec.embed_threads),
            )

    def __call__(self, batch: pa.Table | pa.RecordBatch) -> pa.Table:
        ids = batch.column("conversation_id").to_pylist()
        raw = batch.column("messages").to_pylist()
        n = len(ids)
        conversations = [[ChatMessage.model_validate(m) for m in orjson.loads(r)] for r in raw]
        categories: list[str | None] = [None] * n
        similarity: list[float | None] = [None] * n
        if self.categoriser is not None:
            cats, sims = self.categoriser.assign([request_text(c) for c in conversations])
            categories = cats
            similarity = [float(s) for s in sims]
        samples: list[Sample] = []
        positions: list[int] = []
        verdicts: list[Verdict | None] = [None] * n
        for i, (cid, messages) in enumerate(zip(ids, conversations, strict=True)):
            request, response = split_conversation(messages)
            if response is None or not request:
                continue
            samples.append(
                Sample(id=str(cid), messages=request, response=response, category=categories[i])
            )
            positions.append(i)
        if samples:
            for pos, verdict in zip(positions, self.grader.grade(samples), strict=True):
                verdicts[pos] = verdict
        return pa.Table.from_pydict(
            {
                "conversation_id": ids,
                "behavior": [v.behavior.value if v and v.behavior else None for v in verdicts],
                "violation": [v.violation if v else None for v in verdicts],
                "category": categories,
                "category_similarity": similarity,
                "rule_ids": [list(v.rule_ids) if v else [] for v in verdicts],
                "confidence": [v.confidence if v else None for v in verdicts],
                "rationale": [v.rationale if v else None for v in verdicts],
                "error": [(v.error if v else NO_RESPONSE) for v in verdicts],
            },
            schema=VERDICT_SCHEMA,
        )


def _iter_local(path: Path, spec: GradeSpec, batch_size: int) -> Iterator[pa.Table]:
    fn = GradeBatch(spec)
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        yield fn(batch)


def _iter_ray(
    path: Path,
    spec: GradeSpec,
    batch_size: int,
    *,
    address: str | None,
    num_cpus: int,
    concurrency: int,
    object_store_mb: int,
) -> Iterator[pa.Table]:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise PolicylabError(
            "grading on Ray needs the `scale` extra", hint="pip install 'policylab[scale]'"
        ) from exc
    started = False
    limits = ray.data.DataContext.get_current().execution_options.resource_limits
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # Ray sizes a local object store from the machine's RAM (30% of it), and Ray Data lets
            # blocks read ahead of the actors fill its share of that: measured here, memory grew
            # with the input (2.0 -> 3.0 GiB PSS from 200,000 to 1,000,000 conversations) until
            # it would reach that budget. A fixed store keeps it flat whatever the input size.
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=object_store_mb * 2**20,
            )
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # Also bounded on a cluster: blocks in flight for this job, whatever the store's size.
        context.execution_options.resource_limits = limits.copy(
            object_store_memory=object_store_mb * 2**20 // 2
        )
        # Ray's CPUs are logical: with a whole CPU per actor the actors hold every CPU and the
        # file-listing and read tasks (one CPU, a quarter) are never scheduled, a deadlock. The
        # actors still use whole cores; one logical CPU is left for reading.
        read_cpus = 0.25
        actor_cpus = max((num_cpus - 1) / concurrency, 0.1)
        rows = pq.ParquetFile(path).metadata.num_rows
        # Enough blocks to keep every actor busy, each a few batches long.
        blocks = max(concurrency * 2, min(rows // (batch_size * 4), 2000), 1)
        # One read task at a time on a local instance: reading is cheap next to grading, and each
        # concurrent read task holds a row group in a worker process of its own (measured: four
        # readers of ~500 MiB each at 1,000,000 conversations, against one at 200,000).
        ds = ray.data.read_parquet(
            str(path),
            num_cpus=read_cpus,
            override_num_blocks=blocks,
            concurrency=None if address else 1,
        )
        # A read task's output is split only by Ray's target block size (128 MiB), so a file
        # smaller than that (typical for the costly graders) reached a single actor: measured
        # here, one of two actors did all the work. Streaming re-blocking (no shuffle, no
        # barrier) hands every actor its share.
        ds = ds.repartition(target_num_rows_per_block=batch_size).map_batches(
            GradeBatch,
            fn_constructor_kwargs={"spec": spec},
            batch_size=batch_size,
            batch_format="pyarrow",
            concurrency=concurrency,
            num_cpus=actor_cpus,
        )
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")
    finally:
        ray.data.DataContext.get_current().execution_options.resource_limits = limits
        if started:
            ray.shutdown()


def iter_graded(
    path: Path,
    spec: GradeSpec,
    *,
    engine: Engine = "ray",
    batch_size: int = 1024,
    address: str | None = None,
    num_cpus: int = 2,
    concurrency: int | None = None,
    object_store_mb: int = 256,
) -> Iterator[pa.Table]:
    """Stream verdict batches (`VERDICT_SCHEMA`) for the conversations in the Parquet file `path`.

    Order is kept with `engine="local"`; Ray may return batches in any order (rows carry their
    `conversation_id`). `object_store_mb` sizes a local Ray instance's object store; Ray Data
    keeps at most half of it in blocks for this job (on a cluster too).
    """
    if engine == "local":
        yield from _iter_local(path, spec, batch_size)
    elif engine == "ray":
        yield from _iter_ray(
            path,
            spec,
            batch_size,
            address=address,
            num_cpus=num_cpus,
            concurrency=concurrency or num_cpus,
            object_store_mb=object_store_mb,
        )
    else:
        raise PolicylabError(f"unknown engine {engine!r}", hint="use local or ray")


def write_parquet(batches: Iterator[pa.Table], path: Path) -> int:
    """Write verdict batches to one Parquet file as they come; returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(path, VERDICT_SCHEMA) as writer:
        for table in batches:
            writer.write_table(table.cast(VERDICT_SCHEMA))
            rows += table.num_rows
    return rows
