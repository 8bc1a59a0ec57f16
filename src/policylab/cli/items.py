"""`policylab items ...`: import eval sets from files, list, show, export and delete them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.data.dedup import DEFAULT_NEAR_THRESHOLD
from policylab.data.images import check_images
from policylab.data.importer import ImportReport, Quarantine, import_items, quarantine_path
from policylab.data.inspect_logs import read_inspect_log
from policylab.data.mapping import FieldMapping, load_category_map
from policylab.data.readers import count_rows, read_rows
from policylab.data.transcripts import read_transcripts
from policylab.policy.loader import load_policy
from policylab.store.items import (
    count_items,
    delete_eval_set,
    export_items,
    import_into_set,
    iter_items,
    list_eval_sets,
)

app = typer.Typer(help="Eval sets: import, list, export.", no_args_is_help=True)

T = TypeVar("T")


class ImportFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"
    HF = "hf"
    TRANSCRIPT = "transcript"
    INSPECT = "inspect"


class ExportFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


def _tracked(rows: Iterable[T], progress: Progress, task: TaskID) -> Iterator[T]:
    for row in rows:
        progress.advance(task)
        yield row


@app.command("import")
@user_errors
def import_(
    file: Path = typer.Argument(
        ..., help="A JSONL, CSV or Parquet file, or a folder saved with datasets' save_to_disk."
    ),
    set_name: str = typer.Option(..., "--set", help="The eval set to import into (made if new)."),
    format: ImportFormat = typer.Option(ImportFormat.AUTO, "--format", help="The file's format."),
    prompt_field: str | None = typer.Option(
        None, "--prompt-field", help="Column holding the prompt text (default: `prompt`)."
    ),
    messages_field: str | None = typer.Option(
        None,
        "--messages-field",
        help="Column holding a conversation in the OpenAI chat format (default: `messages`).",
    ),
    context_field: str | None = typer.Option(
        None,
        "--context-field",
        help="Column with a context passage, put before the prompt in the same user turn.",
    ),
    id_field: str | None = typer.Option(
        None, "--id-field", help="Column holding the item id (default: `id`, else a content hash)."
    ),
    maps: list[str] = typer.Option(
        [],
        "--map",
        help="FIELD=COLUMN, e.g. category=SemanticCategory (fields: categories, "
        "expected_behavior, source, language, tags, split, metadata). Repeatable.",
    ),
    set_fields: list[str] = typer.Option(
        [], "--set-field", help="FIELD=VALUE for every item, e.g. source=harmbench. Repeatable."
    ),
    category_map: Path | None = typer.Option(
        None,
        "--category-map",
        help="YAML or CSV file mapping external category names to policy category ids.",
    ),
    policy_file: Path | None = typer.Option(
        None, "--policy", help="Check category ids against this policy file."
    ),
    expected_from_policy: bool = typer.Option(
        False,
        "--expected-from-policy",
        help="Take expected behaviour from the policy's categories (the strictest if several).",
    ),
    allow_unmapped: bool = typer.Option(
        False,
        "--allow-unmapped",
        help="Keep rows whose category maps to nothing (with no category) instead of rejecting.",
    ),
    drop_duplicates: bool = typer.Option(
        False,
        "--drop-duplicates",
        help="Leave duplicates out (to the quarantine) instead of flagging.",
    ),
    near_threshold: float = typer.Option(
        DEFAULT_NEAR_THRESHOLD,
        "--near-threshold",
        min=0.01,
        max=1.0,
        help="Estimated Jaccard similarity from which an item is a near duplicate.",
    ),
    exact_only: bool = typer.Option(
        False, "--exact-only", help="Look for exact duplicates only (faster on large sets)."
    ),
    hf_split: str | None = typer.Option(
        None, "--hf-split", help="The split of a saved HF DatasetDict."
    ),
    description: str | None = typer.Option(None, "--description", help="A note on a new set."),
    allow_remote_images: bool = typer.Option(
        False,
        "--allow-remote-images",
        help="Keep images given as http(s) URLs unchecked (default: reject them; give files).",
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Import items into an eval set. Rejected rows go to a quarantine file, never lost.

    `--format transcript` reads agent transcripts (JSONL, OpenAI chat format) and `--format
    inspect` Inspect AI logs (.eval or .json); both are imported as they stand, to grade. Images
    are checked on import (type, size, decodable).
    """
    policy = load_policy(policy_file).policy if policy_file else None
    cmap = load_category_map(category_map, policy=policy) if category_map else None
    mapping = FieldMapping.from_options(
        prompt_field=prompt_field,
        messages_field=messages_field,
        context_field=context_field,
        id_field=id_field,
        maps=maps,
        constants=set_fields,
        category_map=cmap,
        expected_from_policy=expected_from_policy,
        allow_unmapped=allow_unmapped,
    )
    fmt = format.value
    if fmt == "auto" and file.suffix.lower() == ".eval":
        fmt = "inspect"
    # Transcripts and Inspect logs carry their own ids, labels and metadata: no column mapping.
    records = {"transcript": read_transcripts, "inspect": read_inspect_log}.get(fmt)
    rows = read_rows(file, format=fmt, hf_split=hf_split) if records is None else None
    total = count_rows(file, format=fmt, hf_split=hf_split) if records is None else None
    ws = open_workspace(workspace)
    report = ImportReport(source=str(file), set_name=set_name)
    columns = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total else TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
    ]
    with (
        Quarantine(quarantine_path(ws.path, set_name), source=str(file)) as quarantine,
        Progress(*columns, console=console, transient=True) as progress,
    ):
        task = progress.add_task(f"Importing {file.name}", total=total)
        stream = (
            _tracked(records(file), progress, task)
            if records is not None
            else import_items(_tracked(rows or [], progress, task), mapping, policy=policy)
        )
        import_into_set(
            ws,
            set_name,
            check_images(
                stream,
                base_dir=file if file.is_dir() else file.parent,
                allow_remote=allow_remote_images,
            ),
            report=report,
            quarantine=quarantine,
            near_threshold=None if exact_only else near_threshold,
            drop_duplicates=drop_duplicates,
            description=description,
            source=str(file),
        )
    _print_report(report)


def _print_report(report: ImportReport) -> None:
    summary = Table(title=f"Import into {report.set_name}", show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("", justify="right")
    summary.add_row("rows read", str(report.rows_read))
    summary.add_row(
        "accepted",
        f"{report.accepted}  ({report.inserted} new, {report.updated} updated, "
        f"{report.unchanged} unchanged)",
    )
    summary.add_row("rejected", str(report.rejected))
    verb = "dropped" if report.dropped_duplicates else "flagged"
    summary.add_row(f"exact duplicates ({verb})", str(report.exact_duplicates))
    summary.add_row(f"near duplicates ({verb})", str(report.near_duplicates))
    console.print(summary)
    if report.rejections:
        reasons = Table(title="Rejected rows by reason")
        for col in ("reason", "rows", "example", "first rows"):
            reasons.add_column(col, overflow="fold")
        for group in report.rejections_by_kind(max_rows=8):
            reasons.add_row(
                group.kind, str(group.count), group.example, ", ".join(map(str, group.rows))
            )
        console.print(reasons)
    if report.by_category:
        cats = Table(title="Accepted items by category")
        cats.add_column("category")
        cats.add_column("items", justify="right")
        for category, n in sorted(report.by_category.items(), key=lambda kv: (-kv[1], kv[0])):
            cats.add_row(category, str(n))
        console.print(cats)
    if report.quarantine is not None:
        console.print(f"Rejected rows written to [bold]{report.quarantine}[/]")


@app.command("list")
@user_errors
def list_(workspace: Path | None = WorkspaceOption) -> None:
    """List the eval sets with their item and duplicate counts."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        sets = list_eval_sets(session)
    if not sets:
        console.print("No eval sets yet: [bold]policylab items import FILE --set NAME[/]")
        return
    table = Table(title="Eval sets")
    for col in ("set", "items", "duplicates", "created", "source", "description"):
        table.add_column(col, justify="right" if col in ("items", "duplicates") else "left")
    for s in sets:
        table.add_row(
            s.name,
            str(s.items),
            str(s.duplicates),
            f"{s.created_at:%Y-%m-%d %H:%M}",
            s.source or "",
            s.description or "",
        )
    console.print(table)


@app.command("show")
@user_errors
def show(
    set_name: str = typer.Argument(..., help="The eval set."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many items to show."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Show the first items of an eval set."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        total = count_items(session, set_name)
        rows = list(islice(iter_items(session, set_name, batch=min(limit, 1000)), limit))
    table = Table(title=f"{set_name}: {len(rows)} of {total} items")
    for col in ("#", "id", "categories", "expected", "prompt"):
        table.add_column(col, overflow="fold")
    for db_id, item in rows:
        prompt = item.prompt.replace("\n", " ")
        table.add_row(
            str(db_id),
            item.id,
            ", ".join(item.categories),
            item.expected_behavior.value if item.expected_behavior else "",
            prompt if len(prompt) <= 100 else prompt[:99] + "…",
        )
    console.print(table)


@app.command("export")
@user_errors
def export(
    set_name: str = typer.Argument(..., help="The eval set."),
    output: Path = typer.Option(..., "--output", "-o", help="The file to write."),
    format: ExportFormat = typer.Option(
        ExportFormat.AUTO, "--format", help="jsonl, csv or parquet (default: from the name)."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Export an eval set to JSONL, CSV or Parquet; the file imports back unchanged."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        n = export_items(session, set_name, output, format=format.value)
    console.print(f"Wrote {n} items to [bold]{output}[/]")


@app.command("delete")
@user_errors
def delete(
    set_name: str = typer.Argument(..., help="The eval set."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Delete an eval set and its items (refused while runs use it)."""
    ws = open_workspace(workspace)
    if not yes:
        typer.confirm(f"Delete eval set {set_name!r} and all its items?", abort=True)
    with ws.session() as session:
        n = delete_eval_set(session, set_name)
    console.print(f"Deleted {set_name} ({n} items)")
