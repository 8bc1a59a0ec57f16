"""`policylab agent ...`: run a model as an agent against the local tools, and grade its actions."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from policylab.agents.grading import (
    conversations,
    grade_agent_run,
    link_policy,
    transcript_outcomes,
)
from policylab.agents.loop import AgentTarget
from policylab.agents.models import is_recorded, load_agent_model
from policylab.agents.report import AgentReport, render_agent_report
from policylab.agents.tasks import TaskSet, load_tasks
from policylab.agents.tools import GROUPS, TOOL_NAMES, Environment, Setup, parse_groups, tool_names
from policylab.cli._common import WorkspaceOption, console, err_console, open_workspace, user_errors
from policylab.cli.run import print_summary
from policylab.data.importer import Accepted, ImportReport
from policylab.errors import PolicylabError
from policylab.models.base import SamplingParams, TargetModel
from policylab.policy.frameworks import Framework, load_frameworks
from policylab.policy.lint import lint
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy
from policylab.results.actions import ActionResults, action_results
from policylab.results.data import outcomes
from policylab.results.gates import GateReport, check_gates
from policylab.results.regulatory import RegulatoryMapping, cited_frameworks, regulatory_mapping
from policylab.results.tables import RunResults, compute_results
from policylab.runs import RunOptions, RunSummary, run_model
from policylab.store.items import import_into_set
from policylab.store.models import EvalSet
from policylab.store.results import load_run, run_policy
from policylab.store.runs import get_run, open_run
from policylab.store.workspace import Workspace

app = typer.Typer(
    help="Agents: run a model against local tools (files, web, mail, payments), grade its actions.",
    no_args_is_help=True,
)

ToolsOption = typer.Option(
    None,
    "--tools",
    help=f"Tool groups for every task, comma-separated: {','.join(GROUPS)} (default: each task's).",
)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _set_name(tasks: Path) -> str:
    stem = tasks.stem
    return f"{tasks.resolve().parent.name}-{stem}" if stem == "tasks" else stem


def _short(model: str) -> str:
    kind, _, rest = model.partition(":")
    if kind == "openai":
        return rest.split("@", 1)[0]
    return f"{kind}-{Path(rest).stem}" if rest else kind


def _import_tasks(ws: Workspace, set_name: str, tasks: TaskSet) -> ImportReport:
    report = ImportReport(source=str(tasks.path), set_name=set_name)
    results = [Accepted(i, item, {}) for i, item in enumerate(tasks.items(), start=1)]
    return import_into_set(
        ws,
        set_name,
        results,
        report=report,
        near_threshold=None,
        description=tasks.description,
        source=str(tasks.path),
    )


def _warn_unknown_tools(policy_file: Path, groups: tuple[str, ...]) -> None:
    loaded = load_policy(policy_file)
    for finding in lint(loaded, tools=tool_names(groups)):
        if finding.code == "A001":
            err_console.print(f"[yellow]warning:[/] {escape(finding.render())}", soft_wrap=True)


@app.command("run")
@user_errors
def run(
    policy_file: Path = typer.Option(..., "--policy", help="The policy the agent is held to."),
    model_spec: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="openai:<model>[@<url>] (with tool calling), scripted:<file.yaml>, recorded[:<file>], "
        "echo, local:…",
    ),
    tasks_file: Path | None = typer.Option(
        None, "--tasks", help="Task file (YAML): prompts, setups, user replies."
    ),
    set_name: str | None = typer.Option(
        None, "--set", help="Eval set name (default: from the task file's name)."
    ),
    tools: str | None = ToolsOption,
    max_turns: int | None = typer.Option(
        None,
        "--max-turns",
        min=1,
        max=100,
        help="Limit on the agent's turns (default: the tasks').",
    ),
    name: str | None = typer.Option(None, "--name", help="Run name (default: <set>/<model>)."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Episodes at once."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, max=2.0),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed"),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Variable holding the API key (default: OPENAI_API_KEY)."
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds per model request."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Run a model as an agent on each task, against the local tools; store the transcripts as a run.

    Every tool is local and deterministic: a payment lands in a ledger, an email in an outbox, a
    file in a temporary folder. With `--model recorded`, recorded transcripts (items imported with
    `--format transcript|inspect`) are stored as the run instead.
    """
    groups = parse_groups(tools) if tools else None
    recorded = is_recorded(model_spec)
    if tasks_file is None and not (recorded and set_name):
        raise PolicylabError(
            "--tasks FILE is needed to run an agent",
            hint="or replay imported transcripts: --model recorded --set NAME",
        )
    loaded = load_policy(policy_file)
    ws = open_workspace(workspace)
    taskset = load_tasks(tasks_file) if tasks_file is not None else None
    if taskset is not None:
        _warn_unknown_tools(policy_file, groups or GROUPS)
        set_name = set_name or _set_name(taskset.path or Path("tasks"))
        report = _import_tasks(ws, set_name, taskset)
        console.print(
            f"Tasks in [bold]{escape(set_name)}[/]: {report.inserted} new, {report.updated} "
            f"updated, {report.unchanged} unchanged"
        )
    assert set_name is not None
    inner = load_agent_model(
        model_spec, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency
    )
    target: TargetModel
    if recorded or taskset is None:
        target = inner
    else:
        target = AgentTarget(inner, taskset, tools=groups, max_turns=max_turns)
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    run_name = name or f"{set_name}/{_short(inner.name)}"
    with ws.session() as session:
        stored, _ = open_run(
            session, name=run_name, set_name=set_name, model=target.name, params=params.as_dict()
        )
        link_policy(session, stored, loaded)
    summary = asyncio.run(_execute(ws, target, set_name, run_name, params, concurrency))
    print_summary(summary)
    if summary.status == "finished":
        console.print(f"Next: [bold]policylab agent grade {escape(run_name)}[/]")
    if summary.status != "finished":
        raise typer.Exit(1)


async def _execute(
    ws: Workspace,
    target: TargetModel,
    set_name: str,
    run_name: str,
    params: SamplingParams,
    concurrency: int,
) -> RunSummary:
    try:
        return await run_model(
            ws,
            target,
            items=set_name,
            name=run_name,
            params=params,
            options=RunOptions(concurrency=concurrency, use_cache=False),
        )
    finally:
        await target.aclose()


def _frameworks_for(
    policy: Policy, files: list[Path]
) -> tuple[list[Framework], dict[str, Framework]]:
    loaded = load_frameworks(files)
    shown = cited_frameworks(policy, loaded)
    for path in files:
        extra = load_frameworks([path], builtin=False)
        shown += [f for f in extra.values() if f.id not in {s.id for s in shown}]
    return shown, loaded


def _results(
    ws: Workspace, run_name: str, policy: Policy
) -> tuple[RunResults | None, GateReport | None]:
    """The run's behaviour results and gates from its `actions` verdicts, when they can be had."""
    try:
        with ws.session() as session:
            data, _ = load_run(session, run_name)
        scored = outcomes(data, policy, grader="actions")
        results = compute_results(scored, policy)
        return results, check_gates(policy, results, None)
    except (PolicylabError, ValueError, KeyError):
        return None, None


@app.command("grade")
@user_errors
def grade(
    run_name: str = typer.Argument(..., help="The agent run."),
    policy_file: Path | None = typer.Option(
        None, "--policy", help="Grade against this policy (default: the run's)."
    ),
    frameworks: list[Path] = typer.Option(
        [],
        "--frameworks",
        help="A framework file (YAML) for the regulatory mapping; repeatable. The EU AI Act and "
        "NIST AI RMF are built in.",
    ),
    report_file: Path | None = typer.Option(
        None, "--report", "-o", help="Write the report here (.html, or .md for Markdown)."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.TEXT, "--format", "-f", help="text or json."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Check every transcript of an agent run against the policy's action rules; store the verdicts.

    Shows, per action rule, the unsafe-action rate, over-refusal of benign tasks and confirmation
    compliance (95% Wilson intervals), and every call that broke a rule, by transcript and turn.
    """
    ws = open_workspace(workspace)
    with ws.session() as session:
        run = get_run(session, run_name)
        if policy_file is not None:
            loaded_policy = load_policy(policy_file)
            policy = loaded_policy.policy
            link_policy(session, run, loaded_policy)
        else:
            found = run_policy(session, run)
            if found is None:
                raise PolicylabError(
                    f"run {run_name!r} is not linked to a policy", hint="pass --policy FILE"
                )
            policy = found
        if not any(r.is_action for r in policy.rules):
            raise PolicylabError(
                f"policy {policy.id} has no action rules to grade against",
                hint="add rules with `subject: action` and `actions:` (see docs/agents.md)",
            )
        counts = grade_agent_run(session, run, policy)
        actions = action_results(policy, transcript_outcomes(session, run))
        broken = {v.transcript for v in actions.violations}
        shown_transcripts = conversations(session, run, broken) if report_file else {}
        model = run.model
        eval_set = session.get(EvalSet, run.eval_set_id)
        set_name = eval_set.name if eval_set is not None else "?"
    shown, loaded = _frameworks_for(policy, frameworks)
    results, gates = _results(ws, run_name, policy)
    mapping = regulatory_mapping(
        policy, shown, all_frameworks=loaded, results=results, gates=gates, actions=actions
    )
    if fmt is OutputFormat.JSON:
        typer.echo(
            json.dumps(_as_json(run_name, counts.graded, counts.failed, actions, mapping), indent=2)
        )
    else:
        _print(run_name, counts.graded, counts.failed, actions)
    if report_file is not None:
        markdown = report_file.suffix.lower() in (".md", ".markdown")
        report = AgentReport(
            policy=policy,
            run=run_name,
            model=model,
            eval_set=set_name,
            actions=actions,
            regulatory=mapping,
            transcripts={t: shown_transcripts[t] for t in sorted(shown_transcripts)},
        )
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(
            render_agent_report(report, fmt_name="markdown" if markdown else "html"),
            encoding="utf-8",
        )
        if fmt is OutputFormat.TEXT:
            console.print(f"Wrote the report to [bold]{escape(str(report_file))}[/]")


def _rate_text(actions: ActionResults, rule_id: str, metric: str) -> str:
    r = actions.rate(rule_id, metric)
    if not r.defined:
        return "–"
    return f"{r.rate:.1%} [{r.low:.1%}, {r.high:.1%}] ({r.successes}/{r.n})"


def _print(run_name: str, graded: int, failed: int, actions: ActionResults) -> None:
    console.print(
        f"Graded [bold]{graded}[/] transcript(s) of run [bold]{escape(run_name)}[/]"
        + (
            f"; [red]{failed} failed[/] (no transcript: errors, never counted as safe)"
            if failed
            else ""
        )
    )
    table = Table(title="Action rules (95% Wilson intervals)")
    for col in ("rule", "unsafe actions", "over-refusal", "confirmation compliance"):
        table.add_column(col, overflow="fold")
    for rule in actions.rules:
        table.add_row(
            f"{rule.id} {escape(rule.title)}",
            _rate_text(actions, rule.id, "unsafe_action"),
            _rate_text(actions, rule.id, "over_refusal"),
            _rate_text(actions, rule.id, "confirmation_compliance"),
        )
    console.print(table)
    if not actions.violations:
        console.print("[green]No action rule was broken.[/]")
        return
    broke = Table(title="Where the rules broke")
    for col in ("transcript", "turn", "call", "rule", "mapped to"):
        broke.add_column(col, overflow="fold")
    for v in actions.violations:
        why = " (unconfirmed)" if v.reason == "unconfirmed" else ""
        broke.add_row(
            escape(v.transcript),
            str(v.turn),
            escape(f"{v.tool}({v.arguments}){why}"),
            v.rule_id,
            escape(", ".join(v.regulations)),
        )
    console.print(broke)


def _rate_json(actions: ActionResults, rule_id: str, metric: str) -> dict[str, object]:
    r = actions.rate(rule_id, metric)
    return {
        "n": r.n,
        "k": r.successes,
        "rate": r.rate if r.defined else None,
        "low": r.low,
        "high": r.high,
        "errors": actions.errors(rule_id, metric),
    }


def _as_json(
    run_name: str, graded: int, failed: int, actions: ActionResults, mapping: RegulatoryMapping
) -> dict[str, object]:
    return {
        "run": run_name,
        "graded": graded,
        "failed": failed,
        "rules": {
            rule.id: {
                metric: _rate_json(actions, rule.id, metric)
                for metric in ("unsafe_action", "over_refusal", "confirmation_compliance")
            }
            for rule in actions.rules
        },
        "violations": [
            {
                "transcript": v.transcript,
                "turn": v.turn,
                "rule_id": v.rule_id,
                "tool": v.tool,
                "arguments": v.arguments,
                "reason": v.reason,
                "regulations": v.regulations,
            }
            for v in actions.violations
        ],
        "regulatory": {
            "addressed": [r.ref for r in mapping.rows if r.addressed],
            "unaddressed": [r.ref for r in mapping.unaddressed],
        },
    }


@app.command("tools")
def tools_cmd(tools: str | None = ToolsOption) -> None:
    """List the local tools an agent can be given, by group."""
    groups = parse_groups(tools) if tools else GROUPS
    table = Table(title="Local tools")
    for col in ("group", "tool", "what it does"):
        table.add_column(col, overflow="fold")
    with Environment(Setup(), groups) as env:
        described = {s["function"]["name"]: s["function"]["description"] for s in env.specs()}
    for group in groups:
        for name in TOOL_NAMES[group]:
            table.add_row(group, name, described[name])
    console.print(table)
