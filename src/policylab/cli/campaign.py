"""`policylab campaign ...`: human labelling campaigns, gold sets, exports, coverage, ambiguities."""

from __future__ import annotations

import csv
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from policylab.campaigns.exports import write_argilla, write_jsonl, write_label_studio
from policylab.campaigns.gold import DEFAULT_STRATA, read_gold, select_gold_set
from policylab.campaigns.plots import coverage_heatmap_png
from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.errors import PolicylabError
from policylab.policy.compile.guide import compile_guide
from policylab.stats.coverage import coverage_matrix, coverage_table
from policylab.store.adjudication import adjudication_queue, ambiguities
from policylab.store.campaign_stats import dashboard
from policylab.store.campaigns import (
    AGREEMENT_RULES,
    CampaignSpec,
    create_campaign,
    final_records,
    get_campaign,
    items_frame,
    list_campaigns,
    schema_of,
    set_campaign_status,
    verdicts_frame,
)
from policylab.store.models import PolicyVersion
from policylab.store.policies import get_policy_version, policy_of

app = typer.Typer(help="Human labelling campaigns.", no_args_is_help=True)
adjudicate_app = typer.Typer(help="The adjudication queue.", no_args_is_help=True)
app.add_typer(adjudicate_app, name="adjudicate")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    LABEL_STUDIO = "label-studio"
    ARGILLA = "argilla"


class Method(StrEnum):
    MAJORITY = "majority"
    DAWID_SKENE = "dawid-skene"


class TableFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _policy_ref(ref: str) -> tuple[str, str | None]:
    policy_id, _, version = ref.partition("@")
    return policy_id, version or None


def _read_ids(path: Path) -> list[str]:
    """Item ids from a JSONL file (an `id` or `item` key per line) or a CSV file (same columns)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicylabError(f"cannot read {path}: {exc.strerror}") from exc
    ids: list[str] = []
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            value = row.get("id") or row.get("item")
            if not value:
                raise PolicylabError(f"{path}:{number}: no `id` or `item` column value")
            ids.append(value)
        return ids
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise PolicylabError(f"{path}:{number}: not JSON: {exc}") from exc
        value = row.get("id") or row.get("item") if isinstance(row, dict) else None
        if not isinstance(value, str):
            raise PolicylabError(f"{path}:{number}: no `id` (or `item`) string")
        ids.append(value)
    return ids


def _read_quotas(path: Path, by: list[str]) -> dict[tuple[str, ...], int]:
    """Quotas from a CSV with one column per stratum (`*` matches anything) and `n`."""
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except OSError as exc:
        raise PolicylabError(f"cannot read {path}: {exc.strerror}") from exc
    quotas: dict[tuple[str, ...], int] = {}
    for number, row in enumerate(rows, start=2):
        missing = [c for c in [*by, "n"] if c not in row]
        if missing:
            raise PolicylabError(
                f"{path}:{number}: no column(s) {', '.join(missing)}",
                hint=f"the header must name {', '.join([*by, 'n'])}",
            )
        try:
            n = int(row["n"])
        except ValueError:
            raise PolicylabError(f"{path}:{number}: n must be a whole number") from None
        quotas[tuple(row[c] or "*" for c in by)] = n
    return quotas


@app.command("create")
@user_errors
def create(
    name: str = typer.Argument(..., help="A new campaign's name."),
    policy: str = typer.Option(..., "--policy", help="Stored policy: ID or ID@VERSION."),
    set_name: str | None = typer.Option(None, "--set", help="Label an eval set's prompts."),
    run: str | None = typer.Option(None, "--run", help="Label a run's responses."),
    k: int = typer.Option(3, "--k", min=1, help="Annotators per item."),
    gold: Path | None = typer.Option(None, "--gold", help="Known answers (JSONL) for gold items."),
    gold_from_expected: bool = typer.Option(
        False, "--gold-from-expected", help="Prompt campaigns: items' expected behaviour is gold."
    ),
    gold_share: float = typer.Option(0.1, "--gold-share", help="Share of hidden gold items."),
    qualification: int = typer.Option(0, "--qualification", min=0, help="Qualification items."),
    pass_mark: float = typer.Option(0.8, "--pass-mark", help="Qualification accuracy to pass."),
    reservation_minutes: float = typer.Option(30, "--reservation-minutes", help="Hold time."),
    agreement: str = typer.Option(
        "unanimous", "--agreement", help=f"When labels agree: {' or '.join(AGREEMENT_RULES)}."
    ),
    max_per_annotator: int | None = typer.Option(None, "--max-per-annotator", min=1),
    items: Path | None = typer.Option(
        None, "--items", help="Only these item ids (JSONL or CSV with `id`, e.g. `campaign gold`)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffle and the gold draw."),
    rationale_required: bool = typer.Option(False, "--rationale-required"),
    description: str | None = typer.Option(None, "--description"),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Create a campaign from a stored policy version and an eval set or a run."""
    ws = open_workspace(workspace)
    spec = CampaignSpec(
        name=name,
        k=k,
        gold=read_gold(gold) if gold else {},
        gold_from_expected=gold_from_expected,
        gold_share=gold_share,
        qualification_n=qualification,
        qualification_threshold=pass_mark,
        reservation_seconds=int(reservation_minutes * 60),
        agreement=agreement,
        max_per_annotator=max_per_annotator,
        item_ids=_read_ids(items) if items else None,
        limit=limit,
        seed=seed,
        rationale_required=rationale_required,
        description=description,
    )
    policy_id, version = _policy_ref(policy)
    with ws.session() as session:
        row = get_policy_version(session, policy_id, version)
        made = create_campaign(session, spec, policy=row, set_name=set_name, run_name=run)
    console.print(
        f"Campaign [bold]{name}[/] ({made.campaign.mode}): {made.n_work} items, "
        f"{made.n_gold} hidden gold, {made.n_qualification} qualification; "
        f"{k} annotator(s) per item."
    )
    for warning in made.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print("Next: [bold]policylab serve[/], and add annotators with `policylab user add`.")


@app.command("list")
@user_errors
def list_(workspace: Path | None = WorkspaceOption) -> None:
    """List campaigns."""
    ws = open_workspace(workspace)
    table = Table("name", "mode", "k", "status", "created")
    with ws.session() as session:
        for c in list_campaigns(session):
            table.add_row(c.name, c.mode, str(c.k), c.status, f"{c.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


def _fmt(x: float | None, pattern: str = "{:.3f}") -> str:
    return "n/a" if x is None else pattern.format(x)


@app.command("status")
@user_errors
def status(
    name: str = typer.Argument(..., help="The campaign."),
    set_status: str | None = typer.Option(
        None, "--set", help="Change the status: active, paused or closed."
    ),
    format: TableFormat = typer.Option(TableFormat.TABLE, "--format", help="table or json."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Progress, agreement (alpha, kappa) and each annotator's record."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        if set_status:
            set_campaign_status(session, name, set_status)
        campaign = get_campaign(session, name)
        board = dashboard(session, campaign)
        summary = board.summary()
    if format is TableFormat.JSON:
        console.print_json(json.dumps(summary, default=str))
        return
    p = board.progress
    console.print(
        f"[bold]{name}[/] ({campaign.status}): {p.labels}/{p.labels_needed} labels "
        f"({p.done:.0%}), {p.complete + p.adjudicated}/{p.items} items resolved, "
        f"{p.adjudication} waiting for adjudication, {p.reserved} reserved now"
    )
    if board.agreement is not None:
        s = board.agreement.summary()
        ci = s["alpha_ci"]
        console.print(
            f"Krippendorff's alpha {_fmt(s['krippendorff_alpha'])}"
            + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            + f", Fleiss' kappa {_fmt(s['fleiss_kappa'])}, "
            f"percent agreement {_fmt(s['percent_agreement'], '{:.1%}')}"
        )
    table = Table("annotator", "labels", "skips", "gold accuracy [95%]", "kappa vs rest", "qual.")
    for a in board.annotators:
        gold_cell = (
            f"{_fmt(a.gold_accuracy, '{:.0%}')} [{_fmt(a.gold_low, '{:.0%}')}, "
            f"{_fmt(a.gold_high, '{:.0%}')}] of {a.gold_n}"
            if a.gold_n
            else "no gold yet"
        )
        table.add_row(
            a.name,
            str(a.labels),
            str(a.skips),
            gold_cell,
            _fmt(a.kappa_vs_rest),
            a.qualification or "",
        )
    console.print(table)


@app.command("gold")
@user_errors
def gold(
    set_name: str | None = typer.Option(None, "--set", help="Sample from an eval set."),
    run: str | None = typer.Option(None, "--run", help="Sample from a run's responses."),
    per_cell: int = typer.Option(5, "--per-cell", min=0, help="Items per cell by default."),
    by: str = typer.Option(",".join(DEFAULT_STRATA), "--by", help="Strata columns."),
    quotas: Path | None = typer.Option(
        None, "--quotas", help="CSV: one column per stratum (`*` for any) and `n`."
    ),
    informative: int = typer.Option(
        0, "--informative", min=0, help="Add the N items graders disagree on or are unsure of."
    ),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="Write the chosen item ids here (JSONL)."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Choose a gold set: a stratified sample with quotas, plus the most informative items.

    Pass the output to `policylab campaign create --items FILE` to label it.
    """
    if (set_name is None) == (run is None):
        raise PolicylabError("give --set or --run (one of them)")
    strata = [c.strip() for c in by.split(",") if c.strip()]
    ws = open_workspace(workspace)
    with ws.session() as session:
        frame = items_frame(session, set_name=set_name, run_name=run)
        verdicts = verdicts_frame(session, set_name=set_name, run_name=run) if informative else None
    sample = select_gold_set(
        frame,
        by=strata,
        per_cell=per_cell,
        quotas=_read_quotas(quotas, strata) if quotas else None,
        verdicts=verdicts,
        n_informative=informative,
        seed=seed,
    )
    with out.open("wb") as fh:
        for row in sample.items.to_dict("records"):
            record = {"id": row["item"], "reason": row["reason"]}
            record.update({c: row.get(c) for c in strata})
            if row.get("score") is not None and row["reason"] == "informative":
                record["score"] = float(row["score"])
            fh.write(orjson.dumps(record) + b"\n")
    table = Table(*strata, "available", "quota", "taken", "shortfall")
    for cell in sample.cells.to_dict("records"):
        style = "red" if cell["shortfall"] else None
        table.add_row(
            *[str(cell[c]) for c in strata],
            str(cell["available"]),
            str(cell["quota"]),
            str(cell["taken"]),
            str(cell["shortfall"]),
            style=style,
        )
    console.print(table)
    n_inf = int((sample.items["reason"] == "informative").sum())
    console.print(f"Wrote {len(sample.items)} item ids ({n_inf} informative) to {out}")


@app.command("export")
@user_errors
def export(
    name: str = typer.Argument(..., help="The campaign."),
    out: Path = typer.Option(..., "--out", help="File (jsonl, label-studio) or folder (argilla)."),
    format: ExportFormat = typer.Option(ExportFormat.JSONL, "--format"),
    method: Method = typer.Option(
        Method.MAJORITY, "--method", help="majority (consensus and adjudication) or dawid-skene."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Export the final labels: the gold set as JSONL, or for Label Studio or Argilla."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        campaign = get_campaign(session, name)
        schema = schema_of(campaign)
        records = final_records(session, campaign, method=method.value.replace("-", "_"))
        version = session.get(PolicyVersion, campaign.policy_version_id)
        assert version is not None
        guide = compile_guide(policy_of(version), fmt="markdown")
    if format is ExportFormat.JSONL:
        n = write_jsonl(records, out)
        console.print(f"Wrote {n} labelled items to {out}")
    elif format is ExportFormat.LABEL_STUDIO:
        tasks, config = write_label_studio(records, schema, out)
        console.print(f"Wrote {len(records)} tasks to {tasks} and the labelling config to {config}")
    else:
        folder = write_argilla(records, schema, out, name=name, guidelines=guide)
        console.print(f"Wrote an Argilla dataset ({len(records)} records) to {folder}/")


@app.command("ambiguities")
@user_errors
def ambiguities_cmd(
    name: str | None = typer.Argument(None, help="One campaign (default: all)."),
    format: TableFormat = typer.Option(TableFormat.TABLE, "--format"),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Where adjudicators found the policy ambiguous, by rule: evidence for the next revision."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = ambiguities(session, get_campaign(session, name) if name else None)
    if format is not TableFormat.TABLE:
        console.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    if not rows:
        console.print("No ambiguity flagged yet.")
        return
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.rule_id] = counts.get(r.rule_id, 0) + 1
    table = Table("rule", "flags", "campaign", "item", "adjudicator", "rationale")
    for r in rows:
        label = f"{r.rule_id} {r.title or ''}".strip()
        table.add_row(
            label,
            str(counts[r.rule_id]),
            r.campaign,
            r.item_id,
            r.adjudicator,
            r.rationale + (f" ({r.note})" if r.note else ""),
        )
    console.print(table)


@adjudicate_app.command("list")
@user_errors
def adjudicate_list(
    name: str = typer.Argument(..., help="The campaign."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Items waiting for an adjudicator (adjudicate them in the web app)."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        queue = adjudication_queue(session, get_campaign(session, name))
    table = Table("#", "item", "categories", "why", "labels", "skips")
    for e in queue:
        table.add_row(
            str(e.campaign_item_id),
            e.item_id,
            ", ".join(e.categories),
            e.reason,
            str(e.n_labels),
            str(e.n_skips),
        )
    console.print(table)
    console.print(f"{len(queue)} item(s) waiting.")


@app.command("coverage")
@user_errors
def coverage(
    set_name: str | None = typer.Option(None, "--set", help="An eval set."),
    campaign_name: str | None = typer.Option(None, "--campaign", help="A campaign's items."),
    policy: str | None = typer.Option(
        None, "--policy", help="Taxonomy: stored policy ID[@VERSION] (default: the campaign's)."
    ),
    by: str | None = typer.Option(None, "--by", help="Third dimension: language or source."),
    target: int = typer.Option(10, "--target", min=0, help="Items wanted per cell."),
    rollup: bool = typer.Option(False, "--rollup", help="Count items in ancestor categories."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a heatmap (PNG) here."),
    format: TableFormat = typer.Option(TableFormat.TABLE, "--format"),
    only_gaps: bool = typer.Option(False, "--gaps", help="Show only empty and thin cells."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """How an eval set or a campaign covers the taxonomy: category x expected behaviour."""
    if (set_name is None) == (campaign_name is None):
        raise PolicylabError("give --set or --campaign (one of them)")
    ws = open_workspace(workspace)
    with ws.session() as session:
        campaign = get_campaign(session, campaign_name) if campaign_name else None
        if policy:
            version = get_policy_version(session, *_policy_ref(policy))
        elif campaign is not None:
            found = session.get(PolicyVersion, campaign.policy_version_id)
            assert found is not None
            version = found
        else:
            raise PolicylabError("give --policy ID to know the taxonomy's categories")
        taxonomy = [c.id for c in policy_of(version).categories]
        frame = items_frame(session, set_name=set_name, campaign=campaign)
    table = coverage_table(frame, categories=taxonomy, by=by, target=target, rollup=rollup)
    if plot is not None:
        matrix = coverage_matrix(table)
        goal = coverage_matrix(table, value="target")
        coverage_heatmap_png(matrix, plot, targets=goal)
    shown = table[table["status"].isin(["empty", "thin"])] if only_gaps else table
    if format is TableFormat.JSON:
        console.print_json(shown.to_json(orient="records"))
    elif format is TableFormat.CSV:
        console.print(shown.to_csv(index=False), end="", soft_wrap=True)
    else:
        out = Table(*[str(c) for c in shown.columns])
        colours: dict[str, Any] = {"empty": "red", "thin": "yellow"}
        for row in shown.to_dict("records"):
            out.add_row(*[str(v) for v in row.values()], style=colours.get(str(row["status"])))
        console.print(out)
        gaps = table["status"].value_counts()
        console.print(
            f"{int(gaps.get('empty', 0))} empty and {int(gaps.get('thin', 0))} thin cell(s) "
            f"of {len(table)}" + (f"; heatmap in {plot}" if plot else "")
        )
