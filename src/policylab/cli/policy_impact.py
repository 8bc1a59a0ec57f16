"""`policylab policy impact`: which stored verdicts a draft policy would flip."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.errors import PolicylabError
from policylab.monitor.categorise import DEFAULT_FIT_THRESHOLD
from policylab.monitor.impact import policy_impact
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy
from policylab.store import monitor as store
from policylab.store.results import run_policy
from policylab.store.runs import find_run


@user_errors
def impact(
    run: str = typer.Option(
        ...,
        "--run",
        help="An eval run, or a deployment grading pass (`policylab monitor gradings`).",
    ),
    draft_file: Path = typer.Option(..., "--draft", help="The draft policy."),
    base_file: Path | None = typer.Option(
        None, "--policy", help="The current policy (default: the run's or grading's)."
    ),
    grader: str | None = typer.Option(
        None, "--grader", help="rules, local, cascade, ... (default: the grading's, else rules)."
    ),
    categorise: bool = typer.Option(
        True, "--categorise/--no-categorise", help="File uncategorised requests by similarity."
    ),
    fit_threshold: float = typer.Option(DEFAULT_FIT_THRESHOLD, "--fit-threshold"),
    examples: int = typer.Option(3, "--examples", help="Examples shown per category."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Re-grade stored responses under a draft policy and show which verdicts flip, by category
    and rule, with examples."""
    draft = load_policy(draft_file).policy
    ws = open_workspace(workspace)
    with ws.session() as session:
        eval_run = find_run(session, run)
        base: Policy | None = load_policy(base_file).policy if base_file else None
        if eval_run is not None:
            grader_name = grader or "rules"
            subjects = store.impact_subjects_for_run(session, run, grader_name)
            base = base or run_policy(session, eval_run)
        else:
            grading = store.find_grading(session, run)
            if grading is None:
                raise PolicylabError(
                    f"no eval run or grading pass called {run!r}",
                    hint="see `policylab runs list` and `policylab monitor gradings`",
                )
            grader_name = grader or grading.grader
            subjects = store.impact_subjects_for_grading(session, grading)
            if base is None and isinstance(grading.params.get("policy"), dict):
                base = Policy.model_validate(grading.params["policy"])
    if base is None:
        raise PolicylabError(
            f"{run!r} is not linked to a policy", hint="pass the current one with --policy FILE"
        )
    if not subjects:
        raise PolicylabError(f"{run!r} has no graded responses to compare")
    report = policy_impact(
        subjects,
        base=base,
        draft=draft,
        grader=grader_name,
        categorise=categorise,
        fit_threshold=fit_threshold,
    )
    n = len(report.flips)
    console.print(
        f"[bold]{base.id} {report.base_version} → {draft.version}[/] with {escape(grader_name)}: "
        f"{n:,} of {report.total:,} verdicts flip ({n / report.total:.1%})"
    )
    if not n:
        return
    table = Table(title="Flips by category (under the draft)")
    for col in ("category", "flips", "to violation", "to compliant", "other"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for category, flips, worse, better in report.by_category():
        table.add_row(category, str(flips), str(worse), str(better), str(flips - worse - better))
    console.print(table)
    rules = Table(title="Flips by rule")
    rules.add_column("rule")
    rules.add_column("flips", justify="right")
    for rule, count in report.by_rule():
        rules.add_row(rule, str(count))
    console.print(rules)
    shown: dict[str, int] = {}
    for flip in report.flips:
        key = flip.after.category or "(none)"
        if shown.get(key, 0) >= examples:
            continue
        shown[key] = shown.get(key, 0) + 1
        before = f"{flip.before.behavior}/{_flag(flip.before.violation)} in {flip.before.category or '(none)'}"
        after = f"{flip.after.behavior}/{_flag(flip.after.violation)} in {key}"
        text = " ".join(flip.request.split())[:100]
        console.print(f"  #{flip.key}: {escape(before)} → [bold]{escape(after)}[/]: {escape(text)}")


def _flag(value: bool | None) -> str:
    return "violation" if value is True else "ok" if value is False else "unknown"
