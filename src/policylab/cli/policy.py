"""`policylab policy ...`: write, check, compile and version policies."""

from __future__ import annotations

import json
import sys
from collections import Counter
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from policylab.agents.tools import TOOL_NAMES
from policylab.cli import policy_impact, policy_import
from policylab.cli._common import (
    WorkspaceOption,
    console,
    err_console,
    open_workspace,
    user_errors,
)
from policylab.errors import InputError, PolicylabError
from policylab.policy.compile import (
    compile_examples,
    compile_grader_prompt,
    compile_guide,
)
from policylab.policy.compile.guide import GuideFormat
from policylab.policy.diff import Change, diff_policies
from policylab.policy.frameworks import load_frameworks
from policylab.policy.lint import has_errors
from policylab.policy.lint import lint as lint_policy
from policylab.policy.loader import LoadedPolicy, load_policy
from policylab.store.policies import add_policy_version, list_policy_versions

app = typer.Typer(help="Write, check, compile and version policies.", no_args_is_help=True)
app.command("import")(policy_import.import_policy)
app.command("impact")(policy_impact.impact)


@app.command("add")
@user_errors
def add(
    file: Path = typer.Argument(..., help="The policy file (its includes are stored with it)."),
    message: str | None = typer.Option(None, "--message", "-m", help="A note for the log."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Store a policy version in the workspace, with its content hash."""
    loaded = load_policy(file)
    ws = open_workspace(workspace)
    with ws.session() as session:
        row, created = add_policy_version(session, loaded, message=message)
        verb = "Added" if created else "Already stored:"
        console.print(
            f"{verb} [bold]{row.policy_id}[/] {row.version}  {row.content_hash[:19]}…  "
            f"({len(loaded.policy.categories)} categories, {len(loaded.policy.rules)} rules, "
            f"{len(loaded.policy.examples)} examples)"
        )


@app.command("log")
@user_errors
def log(
    policy_id: str | None = typer.Argument(None, help="Only this policy."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """List the stored policy versions, newest first."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = list_policy_versions(session, policy_id)
        table = Table(title="Policy versions", show_lines=False)
        for col in ("policy", "version", "hash", "added", "title", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r.policy_id,
                r.version,
                r.content_hash[7:19],
                f"{r.added_at:%Y-%m-%d %H:%M}",
                r.title,
                r.message or "",
            )
    if not rows:
        console.print("No policy versions stored yet: [bold]policylab policy add FILE[/]")
        return
    console.print(table)


# --- lint, diff, compile -------------------------------------------------------------------------


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class CompileTarget(StrEnum):
    GRADER = "grader"
    GUIDE = "guide"
    EXAMPLES = "examples"


class GuideFormatOption(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _load_or_exit(file: Path) -> LoadedPolicy:
    """Load a policy; on bad input, list every problem on stderr in red and exit 1."""
    try:
        return load_policy(file)
    except InputError as exc:
        err_console.print(
            f"error: {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} "
            f"loading {file}:",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for problem in exc.problems:
            err_console.print(
                problem.render(), style="red", markup=False, highlight=False, soft_wrap=True
            )
        raise typer.Exit(1) from exc


def _shown(path: Path | None) -> str:
    """A path relative to the working directory when it is below it, as editors expect."""
    if path is None:
        return "<policy>"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@app.command("lint")
def lint_cmd(
    file: Path = typer.Argument(..., help="The policy file (its includes are checked too)."),
    fmt: OutputFormat = typer.Option(OutputFormat.TEXT, "--format", "-f", help="text or json."),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        min=1,
        help="Grader prompt budget per category (default: the policy's grader_token_budget).",
    ),
    tools: str | None = typer.Option(
        None,
        "--tools",
        help="The tools an agent is given: tool names or groups (files,web,mail,payments), "
        "comma-separated. Action rules naming any other tool are errors (A001).",
    ),
    frameworks: list[Path] = typer.Option(
        [],
        "--frameworks",
        help="A regulatory framework file to check `framework:provision` citations against "
        "(repeatable; the EU AI Act and NIST AI RMF are built in).",
    ),
) -> None:
    """Check a policy for mistakes the schema cannot catch. Exit 1 if any error is found.

    Codes are listed in docs/lint-codes.md.
    """
    loaded = _load_or_exit(file)
    try:
        known = load_frameworks(frameworks)
    except PolicylabError as exc:
        err_console.print(f"error: {exc.render()}", style="bold red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    declared = None
    if tools is not None:
        names = [t.strip() for t in tools.split(",") if t.strip()]
        declared = [n for t in names for n in TOOL_NAMES.get(t, (t,))]
    findings = lint_policy(loaded, token_budget=token_budget, tools=declared, frameworks=known)
    counts = Counter(f.severity.value for f in findings)
    failed = has_errors(findings)
    if fmt is OutputFormat.JSON:
        rows = []
        for f in findings:
            row = f.to_dict()
            row["file"] = _shown(f.location.file) if f.location.file else None
            rows.append(row)
        summary = {k: counts.get(k, 0) for k in ("error", "warning", "info")}
        typer.echo(
            json.dumps({"policy": str(file), "findings": rows, "summary": summary}, indent=2)
        )
        raise typer.Exit(1 if failed else 0)
    for f in findings:
        line = f.render().replace(str(f.location.file), _shown(f.location.file), 1)
        console.print(line, style=_SEVERITY_STYLE[f.severity.value], markup=False, soft_wrap=True)
        if f.hint:
            console.print(f"    hint: {f.hint}", style="dim", markup=False, soft_wrap=True)
    files = len(loaded.files)
    where = f"{files} file{'s' if files != 1 else ''}"
    if not findings:
        console.print(
            f"[bold green]✓[/] {escape(str(file))}: no findings in {where}", soft_wrap=True
        )
    else:
        parts = [
            f"{counts[k]} {k}{'s' if counts[k] != 1 and k != 'info' else ''}"
            for k in ("error", "warning", "info")
            if counts.get(k)
        ]
        mark = "[bold red]✗[/]" if failed else "[bold yellow]![/]"
        console.print(f"{mark} {escape(str(file))}: {', '.join(parts)} in {where}", soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


_SECTION_TITLES = {
    "header": "Header",
    "category": "Categories",
    "rule": "Rules",
    "definition": "Definitions",
    "precedence": "Precedence",
    "ambiguity": "Ambiguity rules",
    "example": "Examples",
    "gate": "Gates",
}


def _value(value: object, limit: int = 100) -> str:
    if isinstance(value, dict):
        for key in ("title", "term", "prompt", "when", "reason"):
            if value.get(key):
                value = value[key]
                break
        else:
            value = json.dumps(value, ensure_ascii=False)
    text = " ".join(str(value).split()) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_line(c: Change) -> Text:
    what = f"{c.object} {c.id}" + (f" {c.field}" if c.field else "")
    line = Text()
    if c.kind == "added":
        line.append("+ ", style="green")
        line.append(what, style="bold")
        line.append(f": {_value(c.new)}")
    elif c.kind == "removed":
        line.append("- ", style="red")
        line.append(what, style="bold")
        line.append(f": {_value(c.old)}")
    elif c.kind == "renamed":
        line.append("→ ", style="magenta")
        line.append(f"{c.object} {c.old} renamed to {c.new}", style="bold")
        line.append(f" (similarity {c.similarity:.2f})")
    else:
        line.append("~ ", style="yellow")
        line.append(what, style="bold")
        line.append(f": {_value(c.old)} → {_value(c.new)}")
    return line


@app.command("diff")
def diff_cmd(
    old: Path = typer.Argument(..., help="The earlier policy file."),
    new: Path = typer.Argument(..., help="The later policy file."),
    fmt: OutputFormat = typer.Option(OutputFormat.TEXT, "--format", "-f", help="text or json."),
) -> None:
    """Show what changed between two policies, behaviour flips and severity changes first."""
    result = diff_policies(_load_or_exit(old).policy, _load_or_exit(new).policy)
    if fmt is OutputFormat.JSON:
        typer.echo(result.model_dump_json(indent=2))
        return
    head = f"{result.old_id} {result.old_version} → {result.new_id} {result.new_version}"
    if result.is_empty:
        console.print(f"{escape(head)}: no changes")
        return
    n, b = len(result.changes), len(result.breaking)
    console.print(
        f"[bold]{escape(head)}[/]: {n} change{'s' if n != 1 else ''}"
        + (f", [bold red]{b} breaking[/]" if b else "")
    )
    if result.breaking:
        console.print(Rule("Breaking: behaviour and severity changes", style="red"))
        for c in result.breaking:
            console.print(_change_line(c), soft_wrap=True)
    for section, changes in result.by_section().items():
        console.print(Rule(_SECTION_TITLES[section]))
        for c in changes:
            console.print(_change_line(c), soft_wrap=True)


@app.command("compile")
def compile_cmd(
    file: Path = typer.Argument(..., help="The policy file."),
    target: CompileTarget = typer.Option(
        ..., "--target", "-t", help="grader (prompt), guide (labelling guide) or examples (JSONL)."
    ),
    category: str | None = typer.Option(
        None, "--category", "-c", help="Only this category and its descendants."
    ),
    guide_format: GuideFormatOption | None = typer.Option(
        None,
        "--guide-format",
        help="For --target guide: markdown or html (default: html when OUT ends in .html).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (default: stdout)."
    ),
) -> None:
    """Compile a policy into a grader prompt, a labelling guide or JSONL training examples."""
    loaded = _load_or_exit(file)
    policy = loaded.policy
    try:
        if target is CompileTarget.GRADER:
            prompt = compile_grader_prompt(policy, category=category)
            text = prompt.text
            note = (
                f"grader prompt, about {prompt.tokens} tokens of a {prompt.budget} budget, "
                f"{len(prompt.omitted)} optional parts left out"
            )
        elif target is CompileTarget.GUIDE:
            html = output is not None and output.suffix.lower() in (".html", ".htm")
            chosen = guide_format or (
                GuideFormatOption.HTML if html else GuideFormatOption.MARKDOWN
            )
            fmt: GuideFormat = "html" if chosen is GuideFormatOption.HTML else "markdown"
            text = compile_guide(policy, fmt=fmt, category=category)
            note = f"labelling guide ({fmt})"
        else:
            rows = list(compile_examples(policy, category=category))
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            note = f"{len(rows)} training rows"
    except PolicylabError as exc:
        err_console.print(
            f"error: {exc.render()}",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"Wrote {note} to {escape(str(output))}")
