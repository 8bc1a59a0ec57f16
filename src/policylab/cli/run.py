"""`policylab run`: have a target model answer an eval set, with a progress bar; resumable."""

from __future__ import annotations

import asyncio
import signal
from enum import StrEnum
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from policylab.cli._common import WorkspaceOption, console, err_console, open_workspace, user_errors
from policylab.models.base import SamplingParams, TargetModel
from policylab.models.registry import load_model
from policylab.runs import Runner, RunOptions, RunProgress, RunSummary, run_model
from policylab.store.workspace import Workspace


class InDoubtChoice(StrEnum):
    RETRY = "retry"
    SKIP = "skip"


class _RateColumn(ProgressColumn):
    """Items per second, from Rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "–/s", style="progress.data.speed")


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=err_console,
        transient=False,
    )


def _detail(p: RunProgress) -> str:
    parts = []
    if p.failed:
        parts.append(f"[red]{p.failed:,} failed[/]")
    if p.cached:
        parts.append(f"{p.cached:,} cached")
    if p.retries:
        parts.append(f"{p.retries:,} retries")
    tokens = p.prompt_tokens + p.completion_tokens
    if tokens:
        parts.append(f"{tokens:,} tok")
    if p.cost_usd:
        parts.append(f"${p.cost_usd:,.4f}")
    return "  ".join(parts)


async def _execute(
    ws: Workspace,
    model: TargetModel,
    *,
    items: str,
    name: str | None,
    params: SamplingParams,
    options: RunOptions,
    show_progress: bool,
) -> RunSummary:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    bar = _progress_bar()
    task: TaskID | None = None

    def on_progress(p: RunProgress) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("answering", total=p.total or None, detail="")
        bar.update(task, completed=p.done, total=p.total or None, detail=_detail(p))

    def on_start(runner: Runner) -> None:
        def on_signal() -> None:
            if runner.stopping and main is not None:
                main.cancel()
                return
            runner.request_stop()
            err_console.print(
                "[yellow]stopping:[/] finishing the requests in flight "
                "(press Ctrl-C again to stop at once)"
            )

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

    try:
        if show_progress:
            bar.start()
        return await run_model(
            ws,
            model,
            items=items,
            name=name,
            params=params,
            options=options,
            progress=on_progress if show_progress else None,
            on_start=on_start,
        )
    finally:
        bar.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await model.aclose()


def format_ms(value: float | None) -> str:
    """A latency for people: `–`, `0.42 ms`, `12.3 ms` or `1,204 ms`."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def print_summary(summary: RunSummary) -> None:
    """The outcome of a run, for people."""
    c = summary.counts
    s = summary.session
    colour = {"finished": "green", "interrupted": "yellow"}.get(summary.status, "red")
    console.print(
        f"Run [bold]{summary.run}[/]: [{colour}]{summary.status}[/] "
        f"after {summary.elapsed_s:,.1f} s"
    )
    console.print(
        f"  items      {c.total:,} in scope: [green]{c.succeeded:,} succeeded[/] "
        f"({c.cached:,} from the cache), "
        f"{'[red]' if c.failed else ''}{c.failed:,} failed{'[/]' if c.failed else ''}, "
        f"{c.remaining:,} remaining"
    )
    if c.errors:
        classes = ", ".join(f"{kind} ×{n:,}" for kind, n in c.errors.items())
        console.print(f"  failed     {classes}")
    console.print(
        f"  session    {s.done:,} items done, {s.requests:,} requests, {s.retries:,} retries"
    )
    cost = f"   cost ${c.cost_usd:,.4f}" if c.cost_usd else ""
    console.print(f"  tokens     {c.prompt_tokens:,} in, {c.completion_tokens:,} out{cost}")
    console.print(
        f"  latency    p50 {format_ms(c.latency_p50_ms)}, p95 {format_ms(c.latency_p95_ms)}"
    )
    if summary.in_doubt:
        console.print(
            f"  [yellow]resumed:[/] {summary.in_doubt:,} item(s) had been sent when the previous "
            "session stopped, with no stored answer; they were "
            + (
                "asked again (the server may have answered them twice)"
                if summary.in_doubt_action == "retry"
                else "recorded as failed (in_doubt), not asked again"
            )
        )
    if summary.bad_items:
        shown = ", ".join(summary.bad_items[:5])
        console.print(
            f"  [red]bad items:[/] messages not in the chat format (e.g. {shown}); "
            "fix them in the source file and import it again"
        )
    if summary.status == "stopped":
        console.print(
            f"[red]stopped:[/] {summary.stop_reason}\n"
            f"Nothing more was recorded; fix the cause and run the same command to continue "
            f"({c.remaining:,} remaining)."
        )
    elif summary.status == "interrupted":
        console.print(
            f"[yellow]interrupted[/] with {c.remaining:,} item(s) remaining: "
            "run the same command to resume."
        )
    elif c.failed:
        console.print(
            "Failed items are asked again when you run the same command "
            "(--no-retry-failed keeps them); `policylab runs show` lists them."
        )


@user_errors
def run(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="openai:<model>\\[@<base_url>], replay:<file.jsonl>, local:smollm2, or echo.",
    ),
    items: str = typer.Option(..., "--items", help="The eval set to answer."),
    name: str | None = typer.Option(
        None, "--name", help="The run's name (default <set>/<model>); the same name resumes."
    ),
    concurrency: int = typer.Option(64, "--concurrency", "-c", min=1, help="Requests in flight."),
    rpm: float | None = typer.Option(
        None, "--rpm", min=0.001, help="Requests per minute, at most."
    ),
    tpm: float | None = typer.Option(None, "--tpm", min=1, help="Tokens per minute, at most."),
    max_attempts: int = typer.Option(
        6, "--max-attempts", min=1, help="Attempts per item on 429, 5xx and timeouts."
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds per request."),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="Sampling temperature (default: the model's)."
    ),
    top_p: float | None = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Nucleus sampling."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Longest answer, in tokens (local models: 96)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Sampling seed, where the model takes one."
    ),
    stop: list[str] | None = typer.Option(None, "--stop", help="A stop sequence (repeatable)."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Answer only the first N items of the set."
    ),
    price_in: float | None = typer.Option(
        None, "--price-in", min=0.0, help="USD per 1M prompt tokens, for cost accounting."
    ),
    price_out: float | None = typer.Option(
        None, "--price-out", min=0.0, help="USD per 1M completion tokens."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Ask the model even when the response cache has the answer."
    ),
    retry_failed: bool = typer.Option(
        True, "--retry-failed/--no-retry-failed", help="Ask again for items that failed before."
    ),
    in_doubt: InDoubtChoice = typer.Option(
        InDoubtChoice.RETRY,
        "--in-doubt",
        help="Items sent just before a crash, with no stored answer: ask again (retry) "
        "or record them as failed so no request is ever repeated (skip).",
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Environment variable holding the API key (OPENAI_API_KEY)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Have a model answer an eval set. Run the same command again to resume after a stop or crash.

    Responses are written to the workspace as they arrive; answers come from the response cache
    when the same model was asked the same conversation with the same parameters before. Exit code
    0 when every item has an answer, 1 otherwise.
    """
    ws = open_workspace(workspace)
    params = SamplingParams(
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=tuple(stop) if stop else None,
    )
    options = RunOptions(
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        max_attempts=max_attempts,
        use_cache=not no_cache,
        retry_failed=retry_failed,
        in_doubt=in_doubt.value,
        limit=limit,
        price_in=price_in,
        price_out=price_out,
    )
    target = load_model(model, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency)
    try:
        summary = asyncio.run(
            _execute(
                ws,
                target,
                items=items,
                name=name,
                params=params,
                options=options,
                show_progress=progress,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        err_console.print(
            "[yellow]stopped at once:[/] answers already received are saved; "
            "run the same command to resume"
        )
        raise typer.Exit(1) from None
    finally:
        ws.close()
    print_summary(summary)
    if summary.status != "finished" or summary.counts.failed:
        raise typer.Exit(1)
