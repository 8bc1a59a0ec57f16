"""`policylab agreement` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policylab.cli import app

runner = CliRunner()

KEYS = [
    "krippendorff_alpha",
    "alpha_ci",
    "fleiss_kappa",
    "percent_agreement",
    "pairwise_cohen_kappa",
    "n_items",
    "n_raters",
]


def _labels() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(80):
        truth = rng.choice(["comply", "partial", "refuse"])
        for rater in ("ann", "bob", "cat"):
            if rng.random() < 0.15:
                continue
            label = truth if rng.random() < 0.75 else rng.choice(["comply", "partial", "refuse"])
            rows.append({"item": f"i{u}", "rater": rater, "label": label, "category": f"c{u % 2}"})
    return pd.DataFrame(rows)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    _labels().to_csv(path, index=False)
    return path


def _reference_alpha(frame: pd.DataFrame, level: str = "nominal") -> float:
    codes = {"comply": 0, "partial": 1, "refuse": 2}
    wide = frame.pivot(index="rater", columns="item", values="label").apply(
        lambda col: col.map(codes)
    )
    return float(
        krippendorff.alpha(reliability_data=wide.to_numpy(dtype=float), level_of_measurement=level)
    )


def test_json_has_exactly_the_keys(csv_file: Path) -> None:
    result = runner.invoke(app, ["agreement", str(csv_file), "--format", "json", "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == KEYS
    assert data["n_items"] == 80
    assert data["n_raters"] == 3
    assert data["krippendorff_alpha"] == pytest.approx(_reference_alpha(_labels()))
    low, high = data["alpha_ci"]
    assert low < data["krippendorff_alpha"] < high
    assert [(p["rater_a"], p["rater_b"]) for p in data["pairwise_cohen_kappa"]] == [
        ("ann", "bob"),
        ("ann", "cat"),
        ("bob", "cat"),
    ]


def test_jsonl_and_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    renamed = _labels().rename(columns={"item": "prompt_id", "rater": "who", "label": "verdict"})
    renamed.to_json(path, orient="records", lines=True)
    result = runner.invoke(
        app,
        [
            "agreement", str(path), "--item", "prompt_id", "--rater", "who", "--label", "verdict",
            "--format", "json", "--n-boot", "0",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["alpha_ci"] is None
    assert data["krippendorff_alpha"] == pytest.approx(_reference_alpha(_labels()))


def test_ordinal_level_with_order(csv_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "agreement", str(csv_file), "--level", "ordinal", "--order", "comply,partial,refuse",
            "--format", "json", "--n-boot", "0",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = _reference_alpha(_labels(), level="ordinal")
    assert json.loads(result.stdout)["krippendorff_alpha"] == pytest.approx(expected)


def test_table_output(csv_file: Path) -> None:
    result = runner.invoke(app, ["agreement", str(csv_file), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "Krippendorff's alpha (nominal)" in result.stdout
    assert "Fleiss' kappa" in result.stdout
    assert "Cohen's kappa per pair of raters" in result.stdout
    assert "Each rater against the rest" in result.stdout
    assert f"{_reference_alpha(_labels()):.3f}" in result.stdout


def test_by_category(csv_file: Path) -> None:
    result = runner.invoke(
        app, ["agreement", str(csv_file), "--by", "category", "--format", "json", "--n-boot", "0"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"c0", "c1"}
    assert all(list(group) == KEYS for group in data.values())
    assert data["c0"]["n_items"] + data["c1"]["n_items"] == 80
    table = runner.invoke(app, ["agreement", str(csv_file), "--by", "category", "--n-boot", "0"])
    assert "Agreement by category" in table.stdout


def test_missing_column_names_file_column_and_columns(csv_file: Path) -> None:
    result = runner.invoke(app, ["agreement", str(csv_file), "--label", "verdict"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert str(csv_file.name) in message
    assert "no column 'verdict'" in message
    assert "item, rater, label, category" in message


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    result = runner.invoke(app, ["agreement", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "no such file" in " ".join(result.stderr.split())
    other = tmp_path / "labels.xlsx"
    other.write_text("x")
    result = runner.invoke(app, ["agreement", str(other)])
    assert result.exit_code == 1
    assert "unknown file type" in " ".join(result.stderr.split())
