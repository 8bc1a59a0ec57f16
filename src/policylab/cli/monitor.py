"""`policylab monitor ...`: ingest deployment logs, grade them at scale, watch for drift, and find
the traffic no category (and no eval item) covers."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from policylab.chat import ChatMessage
from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.core import Behavior, Severity
from policylab.errors import PolicylabError
from policylab.monitor.categorise import DEFAULT_FIT_THRESHOLD, request_text
from policylab.monitor.clusters import Method, cluster_texts
from policylab.monitor.coverage import DEFAULT_RADIUS, eval_coverage
from policylab.monitor.drift import drift_report
from policylab.monitor.grading import Engine, GradeSpec, iter_graded, make_grader, write_parquet
from policylab.monitor.ingest import parse_timestamp
from policylab.monitor.propose import propose_category
from policylab.policy.loader import load_policy
from policylab.policy.schema import DriftAlerts, Policy
from policylab.policy.writer import dump_policy_yaml
from policylab.stats.intervals import wilson
from policylab.store import monitor as store
from policylab.store.items import iter_items
from policylab.store.models import MonitorGrading
from policylab.store.workspace import Workspace

app = typer.Typer(
    help="Deployment monitoring: ingest logs, grade at scale, drift alerts, taxonomy discovery.",
    no_args_is_help=True,
)

SinceOption = typer.Option(None, "--since", help="Only conversations from this time (ISO 8601).")
SourceOption = typer.Option(None, "--source", help="Only conversations from this source.")
GradingOption = typer.Option(None, "--grading", help="The grading pass to use (default: latest).")


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise PolicylabError(f"--since {value!r}: {exc}", hint="use e.g. 2025-03-01") from exc


def _grading(ws: Workspace, name: str | None) -> MonitorGrading:
    with ws.session() as session:
        if name:
            return store.get_grading(session, name)
        found = store.latest_grading(session)
    if found is None:
        raise PolicylabError(
            "no finished grading pass yet",
            hint="grade the ingested conversations first: `policylab monitor grade --policy FILE`",
        )
    return found


def _policy(file: Path | None, grading: MonitorGrading | None) -> Policy | None:
    if file is not None:
        return load_policy(file).policy
    if grading is not None and isinstance(grading.params.get("policy"), dict):
        return Policy.model_validate(grading.params["policy"])
    return None


def _excerpt(messages: list[dict[str, Any]], limit: int = 110) -> str:
    text = " ".join(request_text([ChatMessage.model_validate(m) for m in messages]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command("ingest")
@user_errors
def ingest(
    file: Path = typer.Argument(..., help="A JSONL or Parquet file of conversations."),
    fmt: str = typer.Option("auto", "--format", help="jsonl, parquet or auto (from the name)."),
    source: str = typer.Option(None, "--source", help="A name for where the logs came from."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Ingest conversation logs: PII redacted and user/session ids hashed before storing."""
    ws = open_workspace(workspace)
    report = store.ingest_file(ws, file, source=source or file.stem, format=fmt)
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    console.print(
        f"Ingested [bold]{report.stored:,}[/] conversations from {escape(str(file))} "
        f"as source [bold]{escape(report.source)}[/] ({report.rows_read:,} rows read, "
        f"{report.already_stored:,} already stored, {report.rejected:,} rejected; "
        f"{rate:,.0f} rows/s)"
    )
    if report.first and report.last:
        console.print(
            f"  time span  {report.first:%Y-%m-%d %H:%M} → {report.last:%Y-%m-%d %H:%M} UTC"
        )
    redacted = ", ".join(f"{k} {v:,}" for k, v in sorted(report.redactions.items()))
    console.print(f"  redacted   {redacted or 'nothing found'}")
    for r in report.rejections[:10]:
        console.print(f"  [red]rejected[/] row {r.row}: {escape(r.reason)}")


@app.command("grade")
@user_errors
def grade(
    grader: str = typer.Option(
        "rules", "--grader", help="rules, local, cascade or another registered grader."
    ),
    policy_file: Path | None = typer.Option(None, "--policy", help="The policy to grade against."),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="For llm and cascade: openai:<model>[@<base_url>]."
    ),
    name: str | None = typer.Option(None, "--name", help="A name for this grading pass."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Write verdicts to this Parquet file."
    ),
    store_results: bool | None = typer.Option(
        None, "--store/--no-store", help="Store verdicts in the workspace (default: unless -o)."
    ),
    ray_address: str | None = typer.Option(None, "--ray-address", help="An existing Ray cluster."),
    no_ray: bool = typer.Option(False, "--no-ray", help="Run in this process, without Ray."),
    cpus: int = typer.Option(2, "--cpus", help="CPUs for the local Ray instance and its workers."),
    categorise: bool = typer.Option(
        True, "--categorise/--no-categorise", help="File conversations under policy categories."
    ),
    fit_threshold: float = typer.Option(DEFAULT_FIT_THRESHOLD, "--fit-threshold"),
    batch_size: int = typer.Option(1024, "--batch-size"),
    source: str | None = SourceOption,
    since: str | None = SinceOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Grade ingested conversations with any grader, on Ray Data (or without, `--no-ray`)."""
    ws = open_workspace(workspace)
    policy = load_policy(policy_file).policy if policy_file else None
    if categorise and policy is None:
        raise PolicylabError(
            "filing conversations under categories needs the policy",
            hint="pass --policy FILE, or --no-categorise",
        )
    keep = store_results if store_results is not None else out is None
    engine: Engine = "local" if no_ray else "ray"
    grader_params: dict[str, Any] = {"judge_model": judge_model} if judge_model else {}
    probe = make_grader(grader, policy, grader_params)
    spec = GradeSpec(
        grader=grader,
        grader_params=grader_params,
        policy=policy.model_dump(mode="json") if policy else None,
        categorise=categorise,
        fit_threshold=fit_threshold,
        embed_threads=1 if engine == "ray" else None,
    )
    name = name or f"{grader}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    started = time.perf_counter()
    behaviors: Counter[str] = Counter()
    with store.exported_conversations(ws, source=source, since=_since(since)) as (path, n):
        if n == 0:
            raise PolicylabError(
                "no conversations to grade",
                hint="ingest logs first: `policylab monitor ingest FILE`",
            )
        grading_id: int | None = None
        if keep:
            with ws.session() as session:
                grading_id = store.create_grading(
                    session,
                    name=name,
                    grader=probe,
                    params={
                        "policy": spec.policy,
                        "fit_threshold": fit_threshold,
                        "categorise": categorise,
                    },
                    policy_id=policy.id if policy else None,
                    policy_hash=policy.content_hash if policy else None,
                    engine=engine,
                ).id

        def batches() -> Any:
            for table in iter_graded(
                path, spec, engine=engine, batch_size=batch_size, address=ray_address, num_cpus=cpus
            ):
                behaviors.update(str(b) for b in table.column("behavior").to_pylist())
                if grading_id is not None:
                    store.write_verdicts(ws, grading_id, table)
                yield table

        if out is not None:
            rows = write_parquet(batches(), out)
        else:
            rows = sum(t.num_rows for t in batches())
    seconds = time.perf_counter() - started
    stats = {"conversations": rows, "seconds": round(seconds, 3), "behaviors": dict(behaviors)}
    if grading_id is not None:
        store.finish_grading(ws, grading_id, stats)
    console.print(
        f"Graded [bold]{rows:,}[/] conversations with [bold]{escape(grader)}[/] on "
        f"{'Ray' if engine == 'ray' else 'this process'} in {seconds:,.1f} s "
        f"({rows / seconds if seconds else 0:,.0f}/s)"
        + (f"; grading [bold]{escape(name)}[/]" if grading_id is not None else "")
    )
    graded = sum(v for k, v in behaviors.items() if k != "None")
    for behavior in Behavior:
        k = behaviors.get(behavior.value, 0)
        console.print(f"  {behavior.value:8} {wilson(k, graded)}")
    if behaviors.get("None"):
        console.print(f"  ungraded {behaviors['None']:,} (no assistant turn, or a grader error)")
    if out is not None:
        console.print(f"  verdicts written to {escape(str(out))}")


@app.command("gradings")
@user_errors
def gradings(workspace: Path | None = WorkspaceOption) -> None:
    """The grading passes, newest first."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = store.list_gradings(session)
    table = Table(title="Grading passes")
    for col in ("name", "grader", "policy", "engine", "conversations", "status", "created"):
        table.add_column(col)
    for g in rows:
        table.add_row(
            g.name,
            f"{g.grader}@{g.grader_version}",
            g.policy_id or "–",
            g.engine,
            f"{g.stats.get('conversations', 0):,}",
            g.status,
            f"{g.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command("drift")
@user_errors
def drift(
    policy_file: Path | None = typer.Option(
        None,
        "--policy",
        help="Thresholds from this policy's `monitoring:` (default: the grading's policy).",
    ),
    grading_name: str | None = GradingOption,
    source: str | None = SourceOption,
    since: str | None = SinceOption,
    show_windows: bool = typer.Option(False, "--windows", help="List every tested window."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """What moved, since when, with example conversations: category and behaviour drift, control
    charts and rate alerts."""
    ws = open_workspace(workspace)
    grading = _grading(ws, grading_name)
    policy = _policy(policy_file, grading)
    monitoring = policy.monitoring if policy is not None else None
    settings = monitoring.drift if monitoring is not None else DriftAlerts()
    rates = monitoring.rates if monitoring is not None else []
    with ws.session() as session:
        frame = store.conversations_frame(
            session, grading_id=grading.id, source=source, since=_since(since)
        )
        report = drift_report(frame, settings=settings, rates=rates, policy=policy)
        example_ids = sorted({i for a in report.alerts for i in a.examples})
        texts = store.conversation_texts(session, example_ids)
    tested = [w for w in report.windows if w.categories is not None]
    console.print(
        f"[bold]Drift[/] over {len(frame):,} conversations (grading {escape(grading.name)}): "
        f"{len(tested)} windows of {settings.window} tested against the {settings.reference} "
        f"before each, {report.skipped} skipped (fewer than {settings.min_window})"
    )
    if show_windows:
        table = Table()
        for col in ("window", "n", "reference", "categories", "behaviours"):
            table.add_column(col)
        for w in report.windows:
            table.add_row(
                f"{w.start:%Y-%m-%d %H:%M}",
                f"{w.n:,}",
                f"{w.reference_n:,}",
                _score(w.categories),
                _score(w.behaviors),
            )
        console.print(table)
    if not report.alerts:
        console.print("[green]No alerts.[/]")
        return
    for alert in report.alerts:
        state = "[bold red]ACTIVE[/]" if alert.active else "[dim]resolved[/]"
        console.print(
            f"{state} {alert.kind.replace('_', ' ')}: [bold]{escape(alert.subject)}[/] since "
            f"{alert.since:%Y-%m-%d %H:%M} UTC ({alert.windows} window{'s' if alert.windows != 1 else ''}, "
            f"until {alert.until:%Y-%m-%d %H:%M})"
        )
        console.print(f"    {escape(alert.detail)}")
        for cid in alert.examples:
            if cid in texts:
                console.print(f"    e.g. #{cid}: {escape(_excerpt(texts[cid]))}")


def _score(result: Any) -> str:
    if result is None:
        return "–"
    mark = " [red]drift[/]" if result.drifted else ""
    name = "p" if result.method == "chi_square" else "JS"
    return f"{name}={result.score:.3g}{mark}"


@app.command("clusters")
@user_errors
def clusters(
    grading_name: str | None = GradingOption,
    min_size: int = typer.Option(
        10, "--min-size", help="Show clusters with at least this many conversations."
    ),
    min_users: int = typer.Option(
        1, "--min-users", help="...and at least this many distinct users (when known)."
    ),
    unsure_below: float = typer.Option(
        0.6, "--unsure-below", help="Also take verdicts less confident than this."
    ),
    method: str = typer.Option("hdbscan", "--method", help="hdbscan or kmeans."),
    limit: int = typer.Option(
        20000, "--limit", help="Cluster at most this many conversations (the most recent)."
    ),
    source: str | None = SourceOption,
    since: str | None = SinceOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Cluster the conversations no category fits (or graders are unsure of) and list the clusters
    large enough to show, named by their distinctive terms."""
    ws = open_workspace(workspace)
    grading = _grading(ws, grading_name)
    with ws.session() as session:
        frame = store.conversations_frame(
            session, grading_id=grading.id, source=source, since=_since(since)
        )
        confident = frame["confidence"].astype(float)
        mask = frame["category"].isna() | (confident < unsure_below)
        chosen = frame[mask].tail(limit)
        messages = store.conversation_texts(session, [int(i) for i in chosen["conversation_id"]])
    ids = [int(i) for i in chosen["conversation_id"]]
    texts = [request_text([ChatMessage.model_validate(m) for m in messages[i]]) for i in ids]
    users = [u if isinstance(u, str) else None for u in chosen["user_hash"]]
    if method not in ("hdbscan", "kmeans"):
        raise PolicylabError(f"--method {method!r}", hint="use hdbscan or kmeans")
    found = cluster_texts(
        texts, ids, users=users, method=cast(Method, method), min_size=min_size, min_users=min_users
    )
    with ws.session() as session:
        rows = store.store_clusters(
            session,
            found,
            kind="discovery",
            params={
                "min_size": min_size,
                "min_users": min_users,
                "method": method,
                "unsure_below": unsure_below,
            },
            grading_id=grading.id,
        )
        shown = [(r.id, r.label, r.size, r.users, r.terms) for r in rows]
    console.print(
        f"{len(chosen):,} conversations no category fits or graders are unsure of; "
        f"{len(shown)} cluster{'s' if len(shown) != 1 else ''} of at least {min_size} shown"
    )
    table = Table()
    for col in ("cluster", "size", "users", "distinctive terms", "example"):
        table.add_column(col)
    for (cid, _label, size, users_n, terms), cluster in zip(shown, found, strict=True):
        example = " ".join(cluster.texts[0].split())[:80] if cluster.texts else ""
        table.add_row(
            str(cid),
            f"{size:,}",
            "–" if users_n is None else str(users_n),
            ", ".join(terms[:6]),
            example,
        )
    console.print(table)
    if shown:
        console.print(
            "Turn one into a draft category: [bold]policylab monitor propose CLUSTER --policy FILE -o DRAFT.yaml[/]"
        )


@app.command("propose")
@user_errors
def propose(
    cluster_id: int = typer.Argument(..., help="A cluster id from `policylab monitor clusters`."),
    policy_file: Path = typer.Option(..., "--policy", help="The policy to extend."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the draft policy."),
    category_id: str | None = typer.Option(
        None, "--id", help="The new category's id (default: from its terms)."
    ),
    expected: Behavior = typer.Option(
        Behavior.REFUSE, "--expected", help="Expected behaviour for requests in it."
    ),
    severity: Severity = typer.Option(Severity.MEDIUM, "--severity"),
    examples: int = typer.Option(
        3, "--examples", help="How many of its conversations become examples."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Write a draft policy with the cluster as a proposed new category, and show the diff."""
    from policylab.cli.policy import OutputFormat, diff_cmd

    ws = open_workspace(workspace)
    policy = load_policy(policy_file).policy
    with ws.session() as session:
        cluster, members = store.get_cluster(session, cluster_id)
        texts = store.conversation_texts(session, members[: max(examples * 3, examples)])
        label, terms, size = cluster.label, list(cluster.terms), cluster.size
    requests = [
        request_text([ChatMessage.model_validate(m) for m in texts[i]])
        for i in members
        if i in texts
    ]
    draft, cid = propose_category(
        policy,
        terms=terms,
        examples=list(dict.fromkeys(requests)),
        cluster_label=label,
        size=size,
        expected_behavior=expected,
        severity=severity,
        category_id=category_id,
        max_examples=examples,
    )
    dump_policy_yaml(draft, out)
    console.print(f"Wrote draft policy {escape(str(out))} with proposed category [bold]{cid}[/]")
    diff_cmd(policy_file, out, fmt=OutputFormat.TEXT)


@app.command("coverage")
@user_errors
def coverage(
    items: str = typer.Option(..., "--items", help="The eval set to measure coverage with."),
    radius: float = typer.Option(
        DEFAULT_RADIUS, "--radius", "-r", help="Cosine distance counted as covered."
    ),
    sample: int = typer.Option(
        20000, "--sample", help="Use at most this many conversations (the most recent)."
    ),
    min_size: int = typer.Option(10, "--min-size"),
    min_users: int = typer.Option(1, "--min-users"),
    source: str | None = SourceOption,
    since: str | None = SinceOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """The share of deployment conversations with an eval item within distance r, and the largest
    uncovered clusters: where the eval set is blind."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        frame = store.conversations_frame(
            session, grading_id=None, source=source, since=_since(since)
        ).tail(sample)
        ids = [int(i) for i in frame["conversation_id"]]
        messages = store.conversation_texts(session, ids)
        item_texts = [request_text(r.messages) for _, r in iter_items(session, items)]
    if not item_texts:
        raise PolicylabError(f"eval set {items!r} has no items")
    texts = [request_text([ChatMessage.model_validate(m) for m in messages[i]]) for i in ids]
    users = [u if isinstance(u, str) else None for u in frame["user_hash"]]
    result = eval_coverage(
        texts, ids, item_texts, radius=radius, users=users, min_size=min_size, min_users=min_users
    )
    console.print(
        f"[bold]{result.covered.rate:.1%}[/] of {len(ids):,} conversations have an item of "
        f"{escape(items)} within distance {radius} ({result.covered})"
    )
    if not result.uncovered:
        console.print("No uncovered cluster large enough to show.")
        return
    table = Table(title="Largest uncovered clusters")
    for col in ("size", "users", "distinctive terms", "example"):
        table.add_column(col)
    for c in result.uncovered[:10]:
        table.add_row(
            f"{c.size:,}",
            "–" if c.users is None else str(c.users),
            ", ".join(c.terms[:6]),
            " ".join(c.texts[0].split())[:80] if c.texts else "",
        )
    console.print(table)
