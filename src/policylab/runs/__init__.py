"""The async pipeline that has a target model answer an eval set: limits, retries, cache, resume."""

from __future__ import annotations

import re
from collections.abc import Callable

from policylab.models.base import SamplingParams, TargetModel
from policylab.runs.runner import InDoubt, Runner, RunOptions, RunProgress, RunSummary
from policylab.store.runs import cache_key, open_run, run_lock
from policylab.store.workspace import Workspace

__all__ = [
    "InDoubt",
    "RunOptions",
    "RunProgress",
    "RunSummary",
    "Runner",
    "cache_key",
    "default_run_name",
    "run_model",
]


def default_run_name(model_name: str, set_name: str) -> str:
    """`<set>/<model>`, the model shortened to its name (`openai:gpt-4o@https://…` → `gpt-4o`)."""
    kind, _, rest = model_name.partition(":")
    if kind == "openai":
        short = rest.split("@", 1)[0]
    elif kind in {"replay", "local"}:
        stem = re.split(r"[\\/]", rest.rstrip("/"))[-1]
        short = f"{kind}-{stem.removesuffix('.jsonl').removesuffix('.gguf')}"
    else:
        short = model_name
    return f"{set_name}/{short}"


async def run_model(
    ws: Workspace,
    model: TargetModel,
    *,
    items: str,
    name: str | None = None,
    params: SamplingParams | None = None,
    options: RunOptions | None = None,
    progress: Callable[[RunProgress], None] | None = None,
    on_start: Callable[[Runner], None] | None = None,
) -> RunSummary:
    """Run `model` on the eval set `items`, resuming the run `name` if it exists.

    `on_start` receives the runner before it starts (a CLI uses it to wire Ctrl-C to
    `Runner.request_stop`). The model is not closed: the caller owns it.
    """
    params = params or SamplingParams()
    with ws.session() as session:
        run, _ = open_run(
            session,
            name=name or default_run_name(model.name, items),
            set_name=items,
            model=model.name,
            params=params.as_dict(),
        )
    with run_lock(ws, run):
        runner = Runner(ws, run, model, params=params, options=options, progress=progress)
        if on_start is not None:
            on_start(runner)
        return await runner.run()
