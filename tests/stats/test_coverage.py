from __future__ import annotations

import pandas as pd
import pytest

from policylab.errors import PolicylabError
from policylab.stats.coverage import coverage_matrix, coverage_table

ITEMS = pd.DataFrame(
    {
        "categories": [["CYB.1"], ["CYB.1"], ["CYB.2"], ["CYB.1", "MED"], []],
        "expected_behavior": ["comply", "comply", "refuse", "comply", "refuse"],
        "language": ["en", "fr", "en", "en", "en"],
    }
)


def test_every_taxonomy_cell_is_listed_with_its_status() -> None:
    table = coverage_table(ITEMS, categories=["CYB", "CYB.1", "CYB.2", "MED"], target=2)
    cells = table.set_index(["category", "expected_behavior"])
    # 4 categories x 3 behaviours, plus the (none) cell of the item without a category
    assert len(table) == 13
    assert cells.loc[("CYB.1", "comply"), ["count", "status"]].tolist() == [3, "ok"]
    assert cells.loc[("CYB.2", "refuse"), ["count", "shortfall", "status"]].tolist() == [
        1,
        1,
        "thin",
    ]
    assert cells.loc[("MED", "comply"), "count"] == 1
    assert cells.loc[("CYB", "refuse"), "status"] == "empty"
    assert cells.loc[("(none)", "refuse"), "count"] == 1


def test_rollup_counts_items_in_their_ancestors() -> None:
    table = coverage_table(ITEMS, categories=["CYB", "CYB.1"], target=1, rollup=True)
    cells = table.set_index(["category", "expected_behavior"])["count"]
    assert cells[("CYB", "comply")] == 3
    assert cells[("CYB", "refuse")] == 1


def test_a_third_dimension_and_per_cell_targets() -> None:
    table = coverage_table(
        ITEMS,
        categories=["CYB.1"],
        behaviors=["comply"],
        by="language",
        by_values=["de"],
        target=1,
        targets={("CYB.1", "comply", "fr"): 3},
    )
    cells = table.set_index(["category", "expected_behavior", "language"])
    assert cells.loc[("CYB.1", "comply", "en"), "count"] == 2
    assert cells.loc[("CYB.1", "comply", "fr"), ["count", "target", "status"]].tolist() == [
        1,
        3,
        "thin",
    ]
    assert cells.loc[("CYB.1", "comply", "de"), "status"] == "empty"
    matrix = coverage_matrix(table)
    assert matrix.loc["CYB.1", "comply"] == 3


def test_missing_columns_are_named() -> None:
    with pytest.raises(PolicylabError, match="language"):
        coverage_table(ITEMS, categories=["CYB"], by="language2")
