from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from policylab.campaigns.gold import (
    informative_items,
    quota_for,
    read_gold,
    select_gold_set,
    stratified_sample,
)
from policylab.errors import InputError


def items() -> pd.DataFrame:
    rows = []
    # CYB/refuse/a: 6 items, CYB/comply/a: 2, MED/comply/b: 3, MED/refuse/b: 1
    for cat, beh, src, n in [
        ("CYB", "refuse", "a", 6),
        ("CYB", "comply", "a", 2),
        ("MED", "comply", "b", 3),
        ("MED", "refuse", "b", 1),
    ]:
        rows += [
            {"item": f"{cat}-{beh}-{i}", "category": cat, "expected_behavior": beh, "source": src}
            for i in range(n)
        ]
    return pd.DataFrame(rows)


def test_stratified_sample_takes_each_cells_quota_and_reports_shortfalls() -> None:
    quotas = {("CYB", "refuse", "*"): 4, ("MED", "*", "*"): 2, ("ART", "refuse", "c"): 3}
    sample = stratified_sample(items(), per_cell=1, quotas=quotas, seed=3)
    cells = sample.cells.set_index(["category", "expected_behavior", "source"])
    assert cells.loc[("CYB", "refuse", "a"), ["available", "quota", "taken"]].tolist() == [6, 4, 4]
    assert cells.loc[("CYB", "comply", "a"), ["quota", "taken"]].tolist() == [1, 1]
    assert cells.loc[("MED", "refuse", "b"), ["quota", "taken", "shortfall"]].tolist() == [2, 1, 1]
    assert cells.loc[("ART", "refuse", "c"), ["available", "shortfall"]].tolist() == [0, 3]
    counts = sample.items.groupby(["category", "expected_behavior"]).size().to_dict()
    assert counts == {
        ("CYB", "comply"): 1,
        ("CYB", "refuse"): 4,
        ("MED", "comply"): 2,
        ("MED", "refuse"): 1,
    }
    again = stratified_sample(items(), per_cell=1, quotas=quotas, seed=3)
    assert again.items["item"].tolist() == sample.items["item"].tolist()


def test_the_most_specific_quota_wins() -> None:
    quotas = {("*", "*"): 1, ("CYB", "*"): 2, ("CYB", "refuse"): 5}
    assert quota_for(("CYB", "refuse"), quotas, 9) == 5
    assert quota_for(("CYB", "comply"), quotas, 9) == 2
    assert quota_for(("MED", "comply"), quotas, 9) == 1
    assert quota_for(("MED", "comply"), {}, 9) == 9


def test_informative_items_rank_disagreement_and_uncertainty() -> None:
    verdicts = pd.DataFrame(
        [
            # x: 2 graders split 1-1 (tie): disagreement 0.5; confidences 0.6, 0.8 -> uncertainty 0.3
            ("x", "g1", "refuse", 0.6),
            ("x", "g2", "comply", 0.8),
            # y: all agree, sure: disagreement 0, uncertainty 0.1
            ("y", "g1", "refuse", 0.9),
            ("y", "g2", "refuse", 0.9),
            ("y", "g3", "refuse", 0.9),
            # z: 2-1 split: disagreement 1/3; no confidence -> 0.5 (the mean ignores missing)
            ("z", "g1", "partial", None),
            ("z", "g2", "partial", None),
            ("z", "g3", "refuse", None),
            # w: every grader failed: nobody could judge it
            ("w", "g1", None, None),
        ],
        columns=["item", "grader", "behavior", "confidence"],
    )
    ranked = informative_items(verdicts).set_index("item")
    assert ranked.index.tolist() == ["w", "z", "x", "y"]
    assert ranked.loc["x", "disagreement"] == pytest.approx(0.5)
    assert bool(ranked.loc["x", "tie"])
    assert ranked.loc["x", "uncertainty"] == pytest.approx(0.3)
    assert ranked.loc["z", "score"] == pytest.approx(1 / 3 + 0.5)
    assert ranked.loc["y", "score"] == pytest.approx(0.1)
    assert ranked.loc["w", "score"] == pytest.approx(1.5)


def test_select_gold_set_adds_informative_items_not_already_sampled() -> None:
    frame = items()
    verdicts = pd.DataFrame(
        {
            "item": frame["item"],
            "grader": "g",
            "behavior": "refuse",
            "confidence": [0.99] * (len(frame) - 1) + [0.1],
        }
    )
    sample = select_gold_set(frame, per_cell=0, verdicts=verdicts, n_informative=1)
    assert sample.items["item"].tolist() == [frame["item"].iloc[-1]]
    assert sample.items["reason"].tolist() == ["informative"]


def test_read_gold_reads_flat_and_nested_lines_and_names_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "gold.jsonl"
    good.write_text(
        '{"id": "a", "behavior": "refuse", "category": "CYB"}\n'
        '{"id": "b", "label": {"behavior": "comply", "violation": false}, "source": "x"}\n'
    )
    answers = read_gold(good)
    assert answers["a"].behavior.value == "refuse"
    assert answers["b"].violation is False
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "behavior": "maybe"}\nnot json\n{"id": "a", "behavior": "refuse"}\n'
    )
    with pytest.raises(InputError) as err:
        read_gold(bad)
    text = str(err.value)
    assert "bad.jsonl:1 (behavior)" in text
    assert "bad.jsonl:2" in text
