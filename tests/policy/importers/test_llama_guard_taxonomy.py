"""The Llama Guard 3 categories: the 14 official names, and a policy file that loads back."""

from __future__ import annotations

from pathlib import Path

from policylab.policy.importers import llama_guard_taxonomy
from policylab.policy.loader import load_policy
from policylab.policy.writer import dump_policy_yaml

# From the Llama Guard 3-8B model card (github.com/meta-llama/PurpleLlama, Llama-Guard3/8B).
OFFICIAL = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}


def test_fourteen_categories_with_official_names() -> None:
    policy = llama_guard_taxonomy()
    leaves = {c.mappings["llama_guard"][0]: c for c in policy.categories if c.mappings}
    assert {code: c.title for code, c in leaves.items()} == OFFICIAL
    assert all(c.id == f"LG.{code}" and c.parent_id == "LG" for code, c in leaves.items())
    assert [r.id for r in policy.rules] == [f"LG.{code}.a" for code in OFFICIAL]
    assert all(r.violating for r in policy.rules)


def test_written_yaml_loads_back_equal(tmp_path: Path) -> None:
    policy = llama_guard_taxonomy()
    assert load_policy(dump_policy_yaml(policy, tmp_path / "lg.yaml")).policy == policy
