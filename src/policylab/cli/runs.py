"""`policylab runs ...`: list runs, show one, export its responses."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.cli.run import format_ms
from policylab.store.runs import (
    failed_examples,
    get_run,
    iter_responses,
    list_runs,
    run_counts,
    scope_last_item,
)

app = typer.Typer(help="Runs of target models: list, show, export.", no_args_is_help=True)


@app.command("list")
@user_errors
def list_(workspace: Path | None = WorkspaceOption) -> None:
    """Every run, newest first, with its answers so far."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = list_runs(session)
    if not rows:
        console.print("No runs yet: [bold]policylab run --model SPEC --items SET[/]")
        return
    table = Table(title="Runs")
    for col in ("run", "items", "model", "status", "answered", "failed", "created"):
        table.add_column(col, justify="right" if col in {"answered", "failed"} else "left")
    for r in rows:
        table.add_row(
            r.run.name,
            r.set_name,
            r.run.model,
            r.run.status,
            f"{r.succeeded:,}/{r.items:,}",
            f"{r.failed:,}",
            f"{r.run.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command("show")
@user_errors
def show(
    name: str = typer.Argument(..., help="The run's name."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """A run's settings, counts (by error class), tokens, cost, latency and first failures."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        run = get_run(session, name)
        limit = run.stats.get("limit")
        conn = session.connection()
        last_item = scope_last_item(conn, run.eval_set_id, limit)
        c = run_counts(conn, run.id, run.eval_set_id, last_item=last_item)
        failures = failed_examples(session, run)
    console.print(f"[bold]{run.name}[/]  ({run.status})")
    console.print(f"  model      {run.model}")
    console.print(f"  params     {run.model_config_.get('params') or 'model defaults'}")
    scope = f" (first {limit:,} items)" if limit else ""
    console.print(
        f"  items      {c.total:,}{scope}: {c.succeeded:,} succeeded ({c.cached:,} cached), "
        f"{c.failed:,} failed, {c.remaining:,} remaining"
    )
    if c.errors:
        console.print("  failed     " + ", ".join(f"{k} ×{n:,}" for k, n in c.errors.items()))
    cost = f", cost ${c.cost_usd:,.4f}" if c.cost_usd else ""
    console.print(f"  tokens     {c.prompt_tokens:,} in, {c.completion_tokens:,} out{cost}")
    p50, p95 = format_ms(c.latency_p50_ms), format_ms(c.latency_p95_ms)
    console.print(f"  latency    p50 {p50}, p95 {p95}")
    finished = f"{run.finished_at:%Y-%m-%d %H:%M}" if run.finished_at else "–"
    console.print(f"  created    {run.created_at:%Y-%m-%d %H:%M}, finished {finished}")
    if failures:
        table = Table(title="First failed items", show_lines=False)
        table.add_column("item")
        table.add_column("error")
        for external_id, error in failures:
            table.add_row(external_id, error)
        console.print(table)


@app.command("export")
@user_errors
def export(
    name: str = typer.Argument(..., help="The run's name."),
    output: Path = typer.Option(..., "--output", "-o", help="The JSONL file to write."),
    include_errors: bool = typer.Option(
        False, "--include-errors", help="Also write failed items (with `error`, no `response`)."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Write a run's responses as JSONL: `id`, the prompt `messages`, `response` and metadata.

    The file is in the replay format, so `--model replay:FILE` grades it again without a model.
    """
    ws = open_workspace(workspace)
    count = 0
    with ws.session() as session, output.open("wb") as fh:
        run = get_run(session, name)
        for item, response in iter_responses(session, run, include_errors=include_errors):
            record = {
                "id": item.external_id,
                "messages": item.messages,
                "response": response.text if response.error is None else None,
                "finish_reason": response.finish_reason,
                "usage": {
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": response.completion_tokens,
                },
                "model": run.model,
                "latency_ms": response.latency_ms,
                "cost_usd": response.cost_usd,
                "cached": response.cached,
                "attempts": response.attempts,
            }
            if response.error is not None:
                record["error"] = response.error
            fh.write(orjson.dumps(record) + b"\n")
            count += 1
    console.print(f"Wrote {count:,} responses of [bold]{name}[/] to {output}")
