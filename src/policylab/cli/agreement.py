"""`policylab agreement FILE`: inter-annotator agreement of long-format labels (CSV or JSONL)."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from policylab.cli._common import console, user_errors
from policylab.errors import PolicylabError
from policylab.stats.agreement import AgreementReport, agreement_by, agreement_report


class LevelChoice(StrEnum):
    NOMINAL = "nominal"
    ORDINAL = "ordinal"
    INTERVAL = "interval"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@user_errors
def agreement(
    file: Path = typer.Argument(
        ..., help="Long-format labels: one row per item, rater and label (.csv or .jsonl)."
    ),
    item: str = typer.Option("item", "--item", help="Column with the item id."),
    rater: str = typer.Option("rater", "--rater", help="Column with the rater id."),
    label: str = typer.Option("label", "--label", help="Column with the label."),
    level: LevelChoice = typer.Option(
        LevelChoice.NOMINAL, "--level", help="Level of measurement, for Krippendorff's alpha."
    ),
    order: str | None = typer.Option(
        None,
        "--order",
        help="Ordinal labels lowest first, comma-separated (e.g. comply,partial,refuse).",
    ),
    by: str | None = typer.Option(
        None, "--by", help="Item-level column (e.g. category): one report per value."
    ),
    format: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json."),
    n_boot: int = typer.Option(
        1000, "--n-boot", min=0, help="Bootstrap replicates over items for alpha's interval."
    ),
    confidence: float = typer.Option(
        0.95, "--confidence", help="Confidence level of the interval."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
) -> None:
    """Agreement between annotators, from long-format labels (CSV or JSONL).

    Krippendorff's alpha with a bootstrap interval over items, Fleiss' kappa,
    pairwise percent agreement, Cohen's kappa for each pair of raters,
    and each rater against the rest.

    --format json prints one object with the keys krippendorff_alpha, alpha_ci,
    fleiss_kappa, percent_agreement, pairwise_cohen_kappa, n_items and n_raters;
    with --by, one such object per group, keyed by the group.
    """
    frame = read_labels(file)
    options: dict[str, Any] = {
        "item": item,
        "rater": rater,
        "value": label,
        "level": level.value,
        "order": None if order is None else [x.strip() for x in order.split(",") if x.strip()],
        "n_boot": n_boot,
        "confidence": confidence,
        "seed": seed,
        "source": str(file),
    }
    if by is None:
        report = agreement_report(frame, **options)
        if format is OutputFormat.JSON:
            typer.echo(json.dumps(report.summary(), indent=2))
        else:
            _print_report(report, title=f"Agreement in {file.name}")
        return
    reports = agreement_by(frame, by, **options)
    if format is OutputFormat.JSON:
        typer.echo(json.dumps({str(k): r.summary() for k, r in reports.items()}, indent=2))
        return
    _print_groups(reports, by)
    for key, report in reports.items():
        _print_report(report, title=f"{by} = {key}")


def read_labels(path: Path) -> pd.DataFrame:
    """Read a CSV or JSONL file of labels, with errors that name the file."""
    if not path.is_file():
        raise PolicylabError(f"{path}: no such file", hint="check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True)
        if suffix in {".csv", ".tsv"}:
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, pd.errors.ParserError) as exc:
        raise PolicylabError(
            f"{path}: could not read it as {suffix[1:].upper()}: {exc}",
            hint="check the file's format",
        ) from exc
    raise PolicylabError(
        f"{path}: unknown file type {suffix or '(none)'!r}",
        hint="use a .csv, .tsv or .jsonl file with one row per item, rater and label",
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _print_report(report: AgreementReport, *, title: str) -> None:
    alpha = report.alpha
    ci = (
        f"[{_fmt(alpha.low)}, {_fmt(alpha.high)}] ({alpha.confidence:.0%}, {alpha.n_boot} boot)"
        if alpha.low is not None
        else "n/a"
    )
    headline = Table(title=title, show_header=True, header_style="bold")
    headline.add_column("statistic")
    headline.add_column("value", justify="right")
    headline.add_column("note")
    headline.add_row(f"Krippendorff's alpha ({report.level})", _fmt(alpha.alpha), ci)
    headline.add_row("Fleiss' kappa", _fmt(report.fleiss.kappa), "")
    headline.add_row("Percent agreement", _fmt(report.percent_agreement), "pairwise, per item")
    headline.add_row("Items", str(report.n_items), f"{alpha.n_pairable_items} with >= 2 labels")
    headline.add_row("Raters", str(report.n_raters), f"{report.n_ratings} labels")
    console.print(headline)

    if report.pairwise:
        pairs = Table(title="Cohen's kappa per pair of raters", header_style="bold")
        for column in ("rater A", "rater B", "shared items", "kappa", "agreement"):
            pairs.add_column(
                column, justify="right" if column not in {"rater A", "rater B"} else "left"
            )
        for p in report.pairwise:
            pairs.add_row(
                p.rater_a, p.rater_b, str(p.n_items), _fmt(p.kappa), _fmt(p.percent_agreement)
            )
        console.print(pairs)

    raters = Table(title="Each rater against the rest", header_style="bold")
    for column in ("rater", "shared items", "pairs", "kappa", "agreement"):
        raters.add_column(column, justify="left" if column == "rater" else "right")
    for a in report.per_annotator:
        raters.add_row(
            a.rater, str(a.n_items), str(a.n_pairs), _fmt(a.kappa), _fmt(a.percent_agreement)
        )
    console.print(raters)


def _print_groups(reports: dict[Any, AgreementReport], by: str) -> None:
    table = Table(title=f"Agreement by {by}", header_style="bold")
    for column in (by, "items", "alpha", "alpha CI", "Fleiss' kappa", "agreement"):
        table.add_column(column, justify="left" if column == by else "right")
    for key, r in reports.items():
        ci = "n/a" if r.alpha.low is None else f"[{_fmt(r.alpha.low)}, {_fmt(r.alpha.high)}]"
        table.add_row(
            str(key),
            str(r.n_items),
            _fmt(r.alpha.alpha),
            ci,
            _fmt(r.fleiss.kappa),
            _fmt(r.percent_agreement),
        )
    console.print(table)
