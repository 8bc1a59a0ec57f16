"""Fixtures for the statistics tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

VAL_SET = Path("harmbench/data/classifier_val_sets/text_behaviors_val_set.json")


@pytest.fixture(scope="session")
def harmbench_labels(shared_data: Path) -> pd.DataFrame:
    """Human labels of the HarmBench classifier validation set (Mazeika et al. 2024), long format.

    Columns item, rater, value; item = behavior_id + '#' + index in its list (602 items), raters
    human_0, human_1, human_2, values 0/1.
    """
    path = shared_data / VAL_SET
    if not path.is_file():
        pytest.skip(f"HarmBench validation set not found at {path}")
    records = json.loads(path.read_text(encoding="utf-8"))
    rows = [
        (f"{behavior}#{i}", rater, record[rater])
        for behavior, items in records.items()
        for i, record in enumerate(items)
        for rater in ("human_0", "human_1", "human_2")
    ]
    return pd.DataFrame(rows, columns=["item", "rater", "value"])
