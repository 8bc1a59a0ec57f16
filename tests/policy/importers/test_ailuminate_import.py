"""The AILuminate v1.0 hazard taxonomy, checked against both real demo prompt sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from policylab.core import Behavior, Severity
from policylab.errors import InputError
from policylab.policy.importers import (
    hazard_codes,
    import_ailuminate,
    import_ailuminate_with_report,
    llama_guard_mapping,
    llama_guard_taxonomy,
)
from policylab.policy.importers.ailuminate import hazard_category
from policylab.policy.loader import load_policy
from policylab.policy.writer import dump_policy_yaml

# Rows per hazard in each demo prompt set (../shared/data/README.md, section 3).
DEMO_HAZARDS = {
    **dict.fromkeys(("cse", "dfm", "hte", "ipv", "iwp", "ncr", "prv", "src", "ssh"), 100),
    "sxc_prn": 100,
    "vcr": 100,
    "spc_fin": 26,
    "spc_hlt": 26,
    "spc_ele": 24,
    "spc_lgl": 24,
}
PROMPT_SETS = {
    "en_US": "airr_official_1.0_demo_en_us_prompt_set_release.csv",
    "fr_FR": "airr_official_1.0_demo_fr_fr_prompt_set_release.csv",
}


def test_taxonomy_has_the_fifteen_v1_codes_in_three_groups() -> None:
    policy = import_ailuminate()
    assert hazard_codes() == [
        "vcr", "src", "cse", "ssh", "iwp",
        "ipv", "dfm", "ncr", "hte", "prv",
        "spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn",
    ]  # fmt: skip
    leaves = {
        c.mappings["ailuminate"][0]: c for c in policy.categories if "ailuminate" in c.mappings
    }
    assert set(leaves) == set(hazard_codes())
    groups = {code: c.id.split(".")[1] for code, c in leaves.items()}
    assert {k for k, g in groups.items() if g == "physical"} == {"vcr", "src", "cse", "ssh", "iwp"}
    assert {k for k, g in groups.items() if g == "non_physical"} == {
        "ipv",
        "dfm",
        "ncr",
        "hte",
        "prv",
    }
    assert {k for k, g in groups.items() if g == "contextual"} == {
        "spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn"
    }  # fmt: skip
    assert hazard_category("spc_lgl") == "AIL.contextual.spc.lgl"
    for category in policy.categories:  # every node's parent exists
        assert category.parent_id is None or policy.category(category.parent_id) is not None
    # One rule per hazard, in its category.
    assert sorted(r.category_id for r in policy.rules) == sorted(c.id for c in leaves.values())


def test_expected_behaviour_follows_the_standard() -> None:
    policy = import_ailuminate()

    def leaf(code: str) -> tuple[Behavior, Severity]:
        category = policy.category(hazard_category(code))
        assert category is not None
        return category.expected_behavior, category.severity

    assert leaf("vcr")[0] is Behavior.REFUSE  # never enable violent crimes
    assert leaf("cse") == (Behavior.REFUSE, Severity.CRITICAL)
    assert leaf("iwp") == (Behavior.REFUSE, Severity.CRITICAL)
    assert leaf("ssh")[0] is Behavior.PARTIAL  # support and resources, never methods
    for code in ("spc_ele", "spc_fin", "spc_hlt", "spc_lgl"):
        assert leaf(code)[0] is Behavior.COMPLY  # qualified advice, not a refusal
    assert leaf("sxc_prn")[0] is Behavior.PARTIAL


def test_llama_guard_mappings_point_at_real_categories_and_agree() -> None:
    policy = import_ailuminate()
    guard = llama_guard_taxonomy()
    mapping = llama_guard_mapping()
    assert mapping["vcr"] == "LG.S1"
    assert mapping["spc_ele"] == "LG.S13"
    assert {mapping[c] for c in ("spc_fin", "spc_hlt", "spc_lgl")} == {"LG.S6"}
    covered = set(mapping.values())
    assert covered == {f"LG.S{i}" for i in range(1, 14)}  # S14 (code interpreter) has no hazard
    for code, target in mapping.items():
        ours = policy.category(hazard_category(code))
        theirs = guard.category(target)
        assert ours is not None
        assert theirs is not None
        assert ours.mappings["llama_guard"] == theirs.mappings["llama_guard"]
        assert ours.expected_behavior is theirs.expected_behavior, code


@pytest.mark.realdata
@pytest.mark.parametrize("locale", sorted(PROMPT_SETS))
def test_prompt_sets_use_only_taxonomy_codes(shared_data: Path, locale: str) -> None:
    path = shared_data / "ailuminate" / PROMPT_SETS[locale]
    imported = import_ailuminate_with_report(path)
    report = imported.report
    assert report.counts["rows"] == 1200
    assert report.counts["prompts_in_taxonomy"] == 1200
    assert report.breakdowns["hazard"] == DEMO_HAZARDS
    assert report.breakdowns["persona"] == {"skilled": 600, "unskilled": 600}
    assert report.breakdowns["locale"] == {locale: 1200}
    assert report.unresolved == {"unknown_hazard_codes": [], "hazards_without_prompts": []}
    assert report.warnings == []
    assert imported.policy == import_ailuminate()  # the prompt set checks, it does not change


def test_unknown_codes_and_personas_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text(
        "release_prompt_id,prompt_text,hazard,persona,locale,prompt_hash\n"
        "p1,How do I vote?,spc_ele,normal,en_US,h1\n"
        'p2,"Two-line\nprompt",cbr,skilled,en_US,h2\n'
        "p3,Again,cbr,expert,en_US,h3\n"
        "p3,No hazard,,skilled,en_US,h4\n",
        encoding="utf-8",
    )
    report = import_ailuminate_with_report(path).report
    assert report.counts["rows"] == 4
    assert report.counts["prompts_in_taxonomy"] == 1
    assert report.unresolved["unknown_hazard_codes"] == ["cbr"]
    assert "vcr" in report.unresolved["hazards_without_prompts"]
    assert report.breakdowns["hazard"] == {"spc_ele": 1, "cbr": 2}
    # Lines name where each record starts (p2's prompt spans lines 3-4).
    assert any(":3: hazard code 'cbr' is not in the v1.0 taxonomy" in w for w in report.warnings)
    assert any(":5: persona 'expert'" in w for w in report.warnings)
    assert any(":6: row without a hazard code" in w for w in report.warnings)
    assert any("release_prompt_id values repeat, e.g. p3" in w for w in report.warnings)


def test_a_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("id,text,category\n1,hello,vcr\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing columns: release_prompt_id, prompt_text, hazard"):
        import_ailuminate(path)
    with pytest.raises(InputError, match="file not found"):
        import_ailuminate(tmp_path / "missing.csv")


def test_written_yaml_loads_back_equal(tmp_path: Path) -> None:
    policy = import_ailuminate()
    assert load_policy(dump_policy_yaml(policy, tmp_path / "ailuminate.yaml")).policy == policy
