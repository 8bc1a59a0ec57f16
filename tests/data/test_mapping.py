from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from policylab.data.mapping import (
    FieldMapping,
    as_list,
    as_text,
    load_category_map,
    parse_assignments,
    to_json_value,
)
from policylab.errors import InputError, PolicylabError
from policylab.policy.schema import Policy


def test_assignments_parse_and_bad_ones_name_the_option() -> None:
    assert parse_assignments(["a=b", " c = d=e "], option="--map") == {"a": "b", "c": "d=e"}
    with pytest.raises(PolicylabError, match="--set-field 'oops': expected NAME=VALUE"):
        parse_assignments(["oops"], option="--set-field")


def test_options_map_to_targets_with_aliases_and_suggestions() -> None:
    m = FieldMapping.from_options(
        prompt_field="Behavior",
        maps=["category=SemanticCategory", "tag=Tags"],
        constants=["source=harmbench"],
    )
    assert m.prompt_field == "Behavior"
    assert dict(m.fields) == {"categories": "SemanticCategory", "tags": "Tags"}
    assert dict(m.constants) == {"source": "harmbench"}
    with pytest.raises(PolicylabError, match="unknown field 'catgory'") as err:
        FieldMapping.from_options(maps=["catgory=x"])
    assert "did you mean 'category'" in err.value.render()
    with pytest.raises(PolicylabError, match="unknown field 'prompt'"):
        FieldMapping.from_options(constants=["prompt=hello"])
    with pytest.raises(PolicylabError, match="both a column"):
        FieldMapping.from_options(maps=["source=src"], constants=["source=x"])
    with pytest.raises(PolicylabError, match="disagree"):
        FieldMapping.from_options(prompt_field="a", maps=["prompt=b"])


def test_resolve_defaults_to_same_named_columns() -> None:
    r = FieldMapping().resolve(["id", "messages", "categories", "split", "extra_col"])
    assert (r.messages, r.prompt, r.id) == ("messages", None, "id")
    row = {"id": 1, "messages": [], "categories": "X", "split": "test", "extra_col": 2}
    assert r.columns(row) == {"categories": "categories", "split": "split"}
    assert r.consumed(r.columns(row)) == {"id", "messages", "categories", "split"}
    # Same-named columns are looked up in each row: JSONL rows may differ.
    assert r.columns({"messages": [], "tags": "a"}) == {"tags": "tags"}
    r = FieldMapping().resolve(["prompt", "category"])
    assert (r.prompt, r.id) == ("prompt", None)
    assert r.columns({"prompt": "p", "category": "c"}) == {"categories": "category"}
    # An explicit mapping or a constant wins over a same-named column.
    r = FieldMapping.from_options(maps=["category=kind"], constants=["source=x"]).resolve(
        ["prompt", "source", "kind", "categories"]
    )
    assert r.columns({"prompt": "p", "source": "s", "kind": "k", "categories": "c"}) == {
        "categories": "kind"
    }


def test_resolve_names_missing_columns() -> None:
    with pytest.raises(PolicylabError, match="which column holds the prompt") as err:
        FieldMapping().resolve(["question", "id"])
    assert "columns: question, id" in err.value.render()
    with pytest.raises(PolicylabError, match="--prompt-field: no column 'Behaviour'") as err:
        FieldMapping(prompt_field="Behaviour").resolve(["Behavior", "BehaviorID"])
    assert "did you mean 'Behavior'" in err.value.render()
    with pytest.raises(PolicylabError, match="--map categories: no column 'cat'"):
        FieldMapping(prompt_field="p", fields={"categories": "cat"}).resolve(["p"])
    with pytest.raises(PolicylabError, match="not both"):
        FieldMapping(prompt_field="p", messages_field="m").resolve(["p", "m"])


def test_yaml_category_map_with_lines(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "# external -> policy\n"
        "cybercrime: CYB\n"
        "explainers: [CYB.1, ADV]\n"
        "copyright: []\n"
        "elections:\n",
        encoding="utf-8",
    )
    cmap = load_category_map(path, policy=policy)
    assert cmap.lookup("cybercrime").ids == ("CYB",)  # type: ignore[union-attr]
    assert cmap.lookup(" explainers ").ids == ("CYB.1", "ADV")  # type: ignore[union-attr]
    assert cmap.lookup("copyright").ids == ()  # type: ignore[union-attr]
    assert cmap.lookup("elections").ids == ()  # type: ignore[union-attr]
    assert cmap.lookup("unknown") is None
    assert cmap.where("copyright") == f"{path}:4"


def test_category_map_targets_are_checked_against_the_policy(
    tmp_path: Path, policy: Policy
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("a: CYB\nb: [ADV, CYB.2]\nc: VIO\n", encoding="utf-8")
    load_category_map(path)  # well-formed: fine without a policy
    with pytest.raises(InputError) as err:
        load_category_map(path, policy=policy)
    text = err.value.render()
    assert "2 problems in category map" in text
    assert f"{path}:2: 'b' maps to 'CYB.2', which is not a category of policy mini" in text
    assert "did you mean CYB.1, CYB" in text
    assert f"{path}:3: 'c' maps to 'VIO'" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: {x: 1}\n", "1: 'a': expected a category id or a list of them"),
        ("a: [1]\n", "1: 'a': 1 is not a category id"),
        ("a: CYB\nb: cyber\n", "2: 'b' maps to 'cyber', which is not a category id"),
    ],
)
def test_malformed_yaml_category_maps(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_category_map(path)


def test_category_map_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PolicylabError, match="expected a mapping"):
        load_category_map(path)
    other = tmp_path / "map.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(PolicylabError, match=r"\.yaml or a \.csv"):
        load_category_map(other)
    with pytest.raises(PolicylabError, match="no such category map file"):
        load_category_map(tmp_path / "missing.yaml")


def test_csv_category_map_accumulates_targets(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "external,target\ncybercrime,CYB\nexplainers,CYB.1\nexplainers,ADV\ncopyright,\n\n",
        encoding="utf-8",
    )
    cmap = load_category_map(path, policy=policy)
    assert cmap.lookup("explainers").ids == ("CYB.1", "ADV")  # type: ignore[union-attr]
    assert cmap.lookup("copyright").ids == ()  # type: ignore[union-attr]
    assert cmap.where("explainers") == f"{path}:3"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,policy\na,CYB\n", encoding="utf-8")
    with pytest.raises(PolicylabError, match="header must be `external,target`"):
        load_category_map(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text("external,target\na,CYB\nlonely\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{broken}:3: expected `external,target`"):
        load_category_map(broken)


def test_cell_values() -> None:
    assert as_text("  x ") == "x"
    assert as_text("") is None
    assert as_text(float("nan")) is None
    assert as_text(12) == "12"
    assert as_text(True) == "true"
    with pytest.raises(ValueError, match="expected text, found list"):
        as_text([1])
    assert as_list("a, b,,c", comma_separated=True) == ["a", "b", "c"]
    assert as_list("Discrimination, Exclusion", comma_separated=False) == [
        "Discrimination, Exclusion"
    ]
    assert as_list('["x", "y, z"]', comma_separated=True) == ["x", "y, z"]
    assert as_list(("p", None, "q"), comma_separated=False) == ["p", "q"]
    assert as_list(None, comma_separated=True) == []
    with pytest.raises(ValueError, match="not valid JSON"):
        as_list("[oops", comma_separated=False)


def test_any_cell_becomes_json() -> None:
    value = {
        "n": np.int64(3),
        "f": np.float32(0.5),
        "arr": np.array([1, 2]),
        "when": dt.date(2024, 1, 2),
        "nan": float("nan"),
        "dec": Decimal("1.10"),
        "raw": b"\x01\xff",
        "nested": [{"k": (1, 2)}],
        1: "int key",
    }
    assert to_json_value(value) == {
        "n": 3,
        "f": 0.5,
        "arr": [1, 2],
        "when": "2024-01-02",
        "nan": None,
        "dec": "1.10",
        "raw": "01ff",
        "nested": [{"k": [1, 2]}],
        "1": "int key",
    }
