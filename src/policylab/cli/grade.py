"""`policylab grade` (a JSONL file or a stored run) and `policylab validate` (a grader against gold)."""

from __future__ import annotations

import sys
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, err_console, user_errors
from policylab.errors import InputError, PolicylabError
from policylab.graders.base import Grader, Sample, Verdict, config_hash, error_verdict
from policylab.graders.cascade import CascadeReport
from policylab.graders.embeddings import default_cache_dir
from policylab.graders.io import BadLine, read_gold, read_samples, write_verdicts
from policylab.graders.local import LocalGrader
from policylab.graders.presets import DEFAULT_CASCADE_THRESHOLD, make_grader
from policylab.graders.validation import file_digest
from policylab.graders.validation import validate as run_validation
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy
from policylab.store.workspace import Workspace, WorkspaceError


class GraderName(StrEnum):
    RULES = "rules"
    LOCAL = "local"
    LLM = "llm"
    CASCADE = "cascade"


class JudgeFormat(StrEnum):
    CHAT = "chat"
    HARMONY = "harmony"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


GraderOption = typer.Option(GraderName.LOCAL, "--grader", "-g", help="Which grader.")
PolicyOption = typer.Option(
    None, "--policy", "-p", help="Policy file: its examples train `local`, its prompt drives `llm`."
)
JudgeOption = typer.Option(
    None,
    "--judge-model",
    help="The LLM judge for `llm` and `cascade`: openai:<model>\\[@<base_url>].",
)
JudgeFormatOption = typer.Option(
    JudgeFormat.CHAT, "--judge-format", help="`harmony` for gpt-oss-safeguard."
)
ThresholdOption = typer.Option(
    DEFAULT_CASCADE_THRESHOLD,
    "--threshold",
    min=0.0,
    max=1.0,
    help="Cascade: the local grader's confidence needed to decide without the judge.",
)


def _optional_workspace(path: Path | None) -> Workspace | None:
    try:
        return Workspace.open(path)
    except WorkspaceError:
        if path is not None:
            raise
        return None


def _policy(path: Path | None) -> Policy | None:
    return load_policy(path).policy if path else None


def _build(
    name: GraderName,
    *,
    policy: Policy | None,
    judge_model: str | None,
    judge_format: JudgeFormat,
    threshold: float,
    ws: Workspace | None,
) -> Grader:
    return make_grader(
        name.value,
        policy=policy,
        judge_model=judge_model,
        judge_format="harmony" if judge_format is JudgeFormat.HARMONY else "chat",
        threshold=threshold,
        # Embeddings are cached in the workspace, else in the user's cache folder.
        cache_dir=ws.path / "cache" if ws else default_cache_dir(),
    )


def _local_stages(grader: Grader) -> list[LocalGrader]:
    if isinstance(grader, LocalGrader):
        return [grader]
    stages = getattr(grader, "stages", [])
    return [s for s in stages if isinstance(s, LocalGrader)]


def _report_bad_lines(bad: list[BadLine]) -> None:
    err_console.print(f"[bold red]{len(bad)} input line(s) could not be read:[/]")
    for b in bad[:50]:
        err_console.print(f"  {b.problem.render()}", highlight=False, markup=False)
    if len(bad) > 50:
        err_console.print(f"  … and {len(bad) - 50} more")


def _summary(verdicts: list[Verdict], title: str) -> Table:
    counts = Counter(v.behavior.value if v.behavior else "error" for v in verdicts)
    violations = sum(1 for v in verdicts if v.violation)
    table = Table(title=title)
    for col in ("comply", "partial", "refuse", "error", "violations", "total"):
        table.add_column(col, justify="right")
    table.add_row(
        *(str(counts.get(k, 0)) for k in ("comply", "partial", "refuse", "error")),
        str(violations),
        str(len(verdicts)),
    )
    return table


@user_errors
def grade(
    input_file: Path | None = typer.Argument(
        None, help="JSONL: one object per line with id, prompt (or messages) and response."
    ),
    grader_name: GraderName = GraderOption,
    policy_file: Path | None = PolicyOption,
    judge_model: str | None = JudgeOption,
    judge_format: JudgeFormat = JudgeFormatOption,
    threshold: float = ThresholdOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the verdicts (JSONL); `-` for stdout."
    ),
    run_name: str | None = typer.Option(
        None, "--run", help="Grade a stored run in the workspace instead of a file."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Stop on the first bad input line instead of grading the rest."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Grade responses: each gets a behaviour (comply, partial, refuse), a confidence and a violation flag."""
    if (input_file is None) == (run_name is None):
        raise PolicylabError(
            "give an input file or --run RUN_NAME (one of them)",
            hint="policylab grade answers.jsonl -o verdicts.jsonl, or policylab grade --run NAME",
        )
    ws = _optional_workspace(workspace) if input_file is not None else Workspace.open(workspace)
    policy = _policy(policy_file)
    if run_name is not None:
        assert ws is not None
        _grade_run(ws, run_name, grader_name, policy, judge_model, judge_format, threshold)
        return
    assert input_file is not None
    if output is None:
        raise PolicylabError(
            "where should the verdicts go?", hint="add -o OUT.jsonl (or -o - for stdout)"
        )
    samples, bad = read_samples(input_file)
    if bad:
        if strict:
            raise InputError([b.problem for b in bad], what=f"input {input_file}")
        _report_bad_lines(bad)
    grader = _build(
        grader_name,
        policy=policy,
        judge_model=judge_model,
        judge_format=judge_format,
        threshold=threshold,
        ws=ws,
    )
    _fit_with_workspace_gold(grader, ws)
    verdicts, report = _grade_in_batches(grader, samples)
    # Bad lines with a readable id get an error verdict, so they are counted, never lost.
    failed = [
        error_verdict(
            b.id,
            f"invalid input line: {b.problem.message}",
            grader_id=grader.id,
            grader_version=grader.version,
            policy=policy,
        )
        for b in bad
        if b.id is not None
    ]
    everything = verdicts + failed
    if str(output) == "-":
        write_verdicts(sys.stdout, everything)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as fh:
            write_verdicts(fh, everything)
    err_console.print(_summary(everything, f"{grader.id}@{grader.version} on {input_file.name}"))
    if report is not None:
        _print_cascade_cost(report)
    if output and str(output) != "-":
        err_console.print(f"Wrote {len(everything):,} verdicts to [bold]{output}[/]")


def _print_cascade_cost(report: CascadeReport) -> None:
    err_console.print(
        f"cascade: {report.escalated_share:.1%} escalated; calls per stage: "
        + ", ".join(f"{s} {n:,}" for s, n in zip(report.stages, report.graded, strict=True))
    )


def _grading_bar(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


def _grade_in_batches(
    grader: Grader, samples: list[Sample], batch_size: int = 256
) -> tuple[list[Verdict], CascadeReport | None]:
    """Grade with a progress bar, a batch at a time; a cascade's cost summed over the batches."""
    verdicts: list[Verdict] = []
    report: CascadeReport | None = None
    with _grading_bar(f"grading with {grader.id}") as progress:
        task = progress.add_task("grading", total=len(samples))
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            verdicts += grader.grade(batch)
            last = getattr(grader, "last_report", None)
            if isinstance(last, CascadeReport):
                report = last if report is None else report + last
            progress.update(task, completed=start + len(batch))
    return verdicts, report


def _fit_with_workspace_gold(
    grader: Grader, ws: Workspace | None, *, exclude: set[str] | None = None
) -> None:
    """Train local stages on the seed set, the policy and the workspace's human labels."""
    locals_ = _local_stages(grader)
    if not locals_:
        return
    extra = []
    if ws is not None:
        from policylab.store.verdicts import workspace_gold_rows

        with ws.session() as session:
            extra = workspace_gold_rows(session)
        if exclude:
            extra = [r for r in extra if r.response not in exclude]
    with err_console.status("training the local grader…"):
        for stage in locals_:
            stage.fit(extra)


def _grade_run(
    ws: Workspace,
    run_name: str,
    grader_name: GraderName,
    policy: Policy | None,
    judge_model: str | None,
    judge_format: JudgeFormat,
    threshold: float,
) -> None:
    from policylab.store.models import PolicyVersion
    from policylab.store.verdicts import get_run, regrade

    with ws.session() as session:
        run = get_run(session, run_name)
        if policy is None and run.policy_version_id is not None:
            stored = session.get(PolicyVersion, run.policy_version_id)
            if stored is not None:
                policy = Policy.model_validate(stored.content)
    grader = _build(
        grader_name,
        policy=policy,
        judge_model=judge_model,
        judge_format=judge_format,
        threshold=threshold,
        ws=ws,
    )
    _fit_with_workspace_gold(grader, ws)
    with ws.session() as session, _grading_bar(f"grading with {grader.id}") as progress:
        run = get_run(session, run_name)
        task = progress.add_task("grading", total=None)
        cost: list[CascadeReport] = []

        def advance(done: int, total: int) -> None:
            # Called after each batch: a cascade's `last_report` is that batch's cost.
            last = getattr(grader, "last_report", None)
            if isinstance(last, CascadeReport):
                cost.append(last)
            progress.update(task, completed=done, total=total)

        saved, failed = regrade(session, run, grader, progress=advance)
    console.print(
        f"Saved {saved:,} verdicts of [bold]{grader.id}@{grader.version}[/] "
        f"({config_hash(grader)}) for run [bold]{run_name}[/]."
    )
    if cost:
        _print_cascade_cost(sum(cost[1:], cost[0]))
    if failed:
        console.print(
            f"[yellow]{failed:,} responses failed in the run and have no text to grade.[/]"
        )


@user_errors
def validate(
    grader_name: GraderName = typer.Argument(..., help="The grader to validate."),
    gold: Path = typer.Option(
        ..., "--gold", help="JSONL with id, prompt (or messages), response and the gold behavior."
    ),
    policy_file: Path | None = PolicyOption,
    judge_model: str | None = JudgeOption,
    judge_format: JudgeFormat = JudgeFormatOption,
    threshold: float = ThresholdOption,
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json."),
    store: bool = typer.Option(
        True, "--store/--no-store", help="Record the result in the workspace (when there is one)."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Measure a grader against gold labels: accuracy, Cohen's kappa, per-class P/R/F1, confusion matrix."""
    gold_rows, bad = read_gold(gold)
    if bad:
        raise InputError([b.problem for b in bad], what=f"gold file {gold}")
    if not gold_rows:
        raise PolicylabError(
            f"{gold}: no gold rows", hint="each line needs id, prompt, response, behavior"
        )
    ws = _optional_workspace(workspace)
    policy = _policy(policy_file)
    grader = _build(
        grader_name,
        policy=policy,
        judge_model=judge_model,
        judge_format=judge_format,
        threshold=threshold,
        ws=ws,
    )
    # The gold responses are the test: the local grader never trains on them.
    _fit_with_workspace_gold(grader, ws, exclude={g.sample.response for g in gold_rows})
    with err_console.status(f"grading {len(gold_rows):,} gold responses…"):
        result = run_validation(grader, gold_rows)
    metrics = result.metrics()
    stored_id: int | None = None
    if store and ws is not None:
        from policylab.store.verdicts import save_validation

        with ws.session() as session:
            row = save_validation(
                session,
                grader=grader,
                policy_id=policy.id if policy else None,
                policy_hash=policy.content_hash if policy else None,
                gold_name=gold.name,
                gold_hash=file_digest(gold),
                n=len(gold_rows),
                metrics=metrics,
            )
            stored_id = row.id
    if fmt is OutputFormat.JSON:
        payload: dict[str, Any] = {
            "grader": result.grader_id,
            "version": result.grader_version,
            "config_hash": result.config_hash,
            "gold": str(gold),
            "policy_hash": policy.content_hash if policy else None,
            "stored_validation_id": stored_id,
            **metrics,
        }
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    _print_validation(
        result.agreement, f"{result.grader_id}@{result.grader_version} vs {gold.name}"
    )
    if stored_id is not None:
        console.print(f"Stored as validation #{stored_id} in the workspace.")
    elif store:
        console.print("[yellow]No workspace: the result was not stored.[/]")


def _print_validation(agreement: Any, title: str) -> None:
    head = Table(title=title)
    for col in ("n", "accuracy", "Cohen's κ", "error rate"):
        head.add_column(col, justify="right")
    head.add_row(
        str(agreement.n),
        str(agreement.accuracy),
        f"{agreement.cohen_kappa:.3f}",
        str(agreement.error_rate),
    )
    console.print(head)
    per = Table(title="per class")
    for col in ("label", "support", "predicted", "precision", "recall", "F1"):
        per.add_column(col, justify="right")
    for c in agreement.per_class:
        per.add_row(
            c.label,
            str(c.support),
            str(c.predicted),
            f"{c.precision:.3f}",
            f"{c.recall:.3f}",
            f"{c.f1:.3f}",
        )
    console.print(per)
    conf = Table(title="confusion (rows: gold, columns: grader)")
    conf.add_column("gold")
    for col in agreement.confusion_columns:
        conf.add_column(col, justify="right")
    for label, row in zip(agreement.labels, agreement.confusion, strict=True):
        conf.add_row(label, *(str(x) for x in row))
    console.print(conf)
