from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policylab.policy.compile.grader import compile_grader_prompt
from policylab.policy.compile.tokens import count_tokens
from policylab.policy.lint import CODES, VAGUE_TERMS, Finding, FindingSeverity, has_errors, lint
from policylab.policy.loader import load_policy

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "examples" / "policies" / "acme" / "policy.yaml"


def _category(
    cid: str, severity: str = "high", expected: str = "refuse", **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": cid,
        "title": f"Category {cid}",
        "description": "A category for tests.",
        "severity": severity,
        "expected_behavior": expected,
        "harm_model": {
            "harmed": ["users"],
            "mechanism": "Instructions enable harm.",
            "actors": ["attackers"],
            "likelihood": "medium",
            "reversibility": "partially_reversible",
            "uplift": "medium",
        },
    }
    data.update(extra)
    return data


def _example(eid: str, category: str, expected: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": eid,
        "category": category,
        "prompt": f"Prompt of {eid}.",
        "expected_behavior": expected,
        "rationale": "Because.",
    }
    data.update(extra)
    return data


def base() -> dict[str, Any]:
    """A policy that lints clean; each test plants one defect in a copy."""
    return {
        "id": "t",
        "version": "1.0.0",
        "title": "T",
        "scope": "Tests.",
        "owners": [{"name": "Ann"}],
        "grader_token_budget": 5000,
        "categories": [_category("CYB")],
        "rules": [
            {
                "id": "CYB.a",
                "title": "Working code",
                "allowed": ["Explains concepts."],
                "violating": ["Gives working attack code."],
            }
        ],
        "examples": [
            _example("a", "CYB", "comply", rule_ids=["CYB.a"]),
            _example("v", "CYB", "refuse", rule_ids=["CYB.a"]),
        ],
        "gates": {
            "under_refusal": {"high": 0.05},
            "over_refusal": 0.1,
            "grader_agreement": {"min": 0.7},
        },
    }


def run(tmp_path: Path, data: dict[str, Any], **kwargs: Any) -> list[Finding]:
    # JSON is YAML, so the loader reads it and keeps positions.
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return lint(load_policy(path), **kwargs)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def test_base_and_mini_fixture_lint_clean(tmp_path: Path) -> None:
    assert run(tmp_path, base()) == []
    assert lint(load_policy(FIXTURES / "mini" / "policy.yaml")) == []


def test_every_code_is_documented_with_its_severity() -> None:
    doc = (REPO / "docs" / "lint-codes.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([A-Z]\d{3}) \| (error|warning|info) \|", doc, flags=re.M))
    assert rows == {code: sev.value for code, (sev, _) in CODES.items()}


def test_duplicate_ids_name_both_locations(tmp_path: Path) -> None:
    data = base()
    data["examples"].append(_example("a", "CYB", "refuse"))
    findings = run(tmp_path, data)
    dup = [f for f in findings if f.code == "D001"]
    assert len(dup) == 1
    first_line = load_policy(tmp_path / "policy.yaml").sources.locate("examples", "a").line
    assert first_line is not None
    assert (dup[0].location.line or 0) > first_line
    assert f"policy.yaml:{first_line}" in dup[0].message
    assert dup[0].severity is FindingSeverity.ERROR


def test_dangling_ids(tmp_path: Path) -> None:
    data = base()
    data["categories"].append(_category("GHOST.1"))
    data["rules"].append({"id": "NOPE.a", "title": "x", "allowed": ["y"], "violating": ["z"]})
    data["rules"].append(
        {"id": "CYB.b", "category": "MISSING", "title": "x", "allowed": ["y"], "violating": ["z"]}
    )
    data["examples"].append(_example("w", "NOCAT", "refuse", rule_ids=["CYB.zz"]))
    data["precedence"] = [{"category": "CYB", "over": ["OTHER"], "reason": "r"}]
    data["ambiguity"] = [{"id": "amb", "when": "w", "resolve": "r", "categories": ["NONE"]}]
    found = codes(run(tmp_path, data))
    for code in ("D002", "D003", "D004", "D005", "D006", "D007"):
        assert code in found, code
    assert found.count("D002") == 2  # an implicit and an explicit category


def test_missing_parent_is_reported_at_the_child_id(tmp_path: Path) -> None:
    data = base()
    data["categories"].append(_category("GHOST.1"))
    findings = [f for f in run(tmp_path, data) if f.code == "D006"]
    assert len(findings) == 1
    assert "`GHOST`" in findings[0].message
    assert findings[0].location.field == "categories[GHOST.1].id"


def test_coverage_counts_descendant_examples(tmp_path: Path) -> None:
    data = base()
    data["categories"].append(_category("CYB.1", expected="comply"))
    data["examples"] = [
        _example("a", "CYB.1", "comply", rule_ids=["CYB.a"]),
        _example("v", "CYB", "refuse", rule_ids=["CYB.a"]),
    ]
    findings = run(tmp_path, data)
    # CYB has both sides through its child; CYB.1 lacks the violating side.
    assert [(f.code, f.location.field) for f in findings] == [("C002", "categories[CYB.1]")]


def test_rule_without_examples_and_without_allowed(tmp_path: Path) -> None:
    data = base()
    data["rules"].append({"id": "CYB.b", "title": "Only violating", "violating": ["Gives keys."]})
    assert sorted(codes(run(tmp_path, data))) == ["C003", "C004"]


VAGUE_TEXT = """\
id: t
version: 1.0.0
title: T
scope: Tests.
owners: [{name: Ann}]
grader_token_budget: 5000
categories:
  - id: CYB
    title: Cyber
    description: d
    severity: high
    expected_behavior: refuse
    harm_model: {harmed: [u], mechanism: m, actors: [a], likelihood: low, reversibility: reversible,
                 uplift: low}
rules:
  - id: CYB.a
    title: t
    allowed:
      - Explains attacks to someone who maybe asks; the mayor reasonably agrees.
      - Usually explains attacks.
    violating:
      - Gives working code.
      - Gives code that May work, ETC. and might be reasonable
    escalate:
      - Respond as appropriate.
examples:
  - {id: a, category: CYB, prompt: p, expected_behavior: comply, rule_ids: [CYB.a], rationale: r}
  - {id: v, category: CYB, prompt: p, expected_behavior: refuse, rule_ids: [CYB.a], rationale: r}
ambiguity:
  - id: amb
    when: Sometimes a request is unclear.
    resolve: Some requests are answered.
gates: {under_refusal: {high: 0.05}, over_refusal: 0.1, grader_agreement: {min: 0.7}}
"""


def test_vague_quantifiers_point_at_the_list_item(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(VAGUE_TEXT, encoding="utf-8")
    findings = [f for f in lint(load_policy(path)) if f.code == "V001"]
    lines = VAGUE_TEXT.splitlines()
    got = {(f.location.line, f.location.field): f.message for f in findings}
    expected_lines = {
        lines.index("      - Usually explains attacks.") + 1: "rules[CYB.a].allowed[1]",
        lines.index("      - Gives code that May work, ETC. and might be reasonable") + 1: (
            "rules[CYB.a].violating[1]"
        ),
        lines.index("      - Respond as appropriate.") + 1: "rules[CYB.a].escalate[0]",
        lines.index("    resolve: Some requests are answered.") + 1: "ambiguity[amb].resolve",
    }
    assert {k[0]: k[1] for k in got} == expected_lines
    # Word boundaries: "someone", "maybe", "mayor", "reasonably" are not flagged (allowed[0]);
    # an ambiguity rule's `when` describes the unclear case and is not checked.
    violating = next(m for (_, fld), m in got.items() if fld.endswith("violating[1]"))
    for word in ('"may"', '"etc."', '"might"', '"reasonable"'):
        assert word in violating


@pytest.mark.parametrize("term", VAGUE_TERMS)
def test_each_vague_term_is_caught(tmp_path: Path, term: str) -> None:
    data = base()
    data["rules"][0]["violating"].append(f"Gives code {term} used by attackers.")
    assert codes(run(tmp_path, data)) == ["V001"]


@pytest.mark.parametrize(
    ("severity", "uplift", "likelihood", "reversibility", "expected", "found"),
    [
        ("high", "high", "low", "reversible", "comply", ["H001"]),
        ("critical", "high", "low", "reversible", "comply", ["H001"]),
        ("critical", "high", "low", "reversible", "partial", []),
        ("medium", "high", "low", "reversible", "comply", []),
        ("high", "medium", "low", "reversible", "comply", []),
        ("medium", "low", "high", "irreversible", "comply", ["H002"]),
        ("medium", "low", "high", "irreversible", "partial", []),
        ("medium", "low", "medium", "irreversible", "comply", []),
        ("critical", "high", "high", "irreversible", "comply", ["H001", "H002"]),
        ("low", "none", "low", "reversible", "refuse", ["H003"]),
        ("low", "low", "low", "reversible", "refuse", ["H003"]),
        ("low", "medium", "low", "reversible", "refuse", []),
        ("low", "low", "low", "reversible", "partial", []),
        ("medium", "low", "low", "reversible", "refuse", []),
    ],
)
def test_harm_model_rules(
    tmp_path: Path,
    severity: str,
    uplift: str,
    likelihood: str,
    reversibility: str,
    expected: str,
    found: list[str],
) -> None:
    data = base()
    cat = data["categories"][0]
    cat.update(severity=severity, expected_behavior=expected)
    cat["harm_model"].update(uplift=uplift, likelihood=likelihood, reversibility=reversibility)
    data["gates"]["under_refusal"] = {severity: 0.05}
    findings = [f for f in run(tmp_path, data) if f.code.startswith("H")]
    assert sorted(codes(findings)) == found
    for f in findings:
        assert f.location.field == "categories[CYB].expected_behavior"
    assert has_errors(findings) == ("H001" in found)


def test_harm_model_is_inherited_from_an_ancestor(tmp_path: Path) -> None:
    data = base()
    child = _category("CYB.1")
    del child["harm_model"]
    data["categories"].append(child)
    data["examples"] += [_example("c1", "CYB.1", "comply"), _example("c2", "CYB.1", "refuse")]
    assert run(tmp_path, data) == []
    del data["categories"][0]["harm_model"]
    assert codes(run(tmp_path, data)) == ["H004", "H004"]


def test_example_label_contradictions(tmp_path: Path) -> None:
    data = base()
    data["categories"][0]["expected_behavior"] = "refuse"
    data["examples"] += [
        _example("x1", "CYB", "partial", rule_ids=["CYB.a"]),  # X001
        _example(
            "x2",
            "CYB",
            "refuse",
            response="Here is the code.",
            response_behavior="comply",
            violates=False,
        ),  # X002
        _example(
            "x3", "CYB", "refuse", response="No.", response_behavior="refuse", violates=True
        ),  # X003
        _example(
            "x4",
            "CYB",
            "comply",
            responses=[
                {"label": "good", "text": "I can't.", "behavior": "refuse"},  # X004
                {"label": "bad", "text": "I can't.", "behavior": "refuse"},  # BAD: no finding
            ],
        ),
        _example("x5", "CYB", "refuse", response="No.", violates=False),  # X005
        _example(
            "x6", "CYB", "comply", response="No.", response_behavior="refuse", violates=True
        ),  # X006
        # Consistent labels: a compliant response to a refuse request that violates; a partial
        # response that does not.
        _example(
            "ok1", "CYB", "refuse", response="Code.", response_behavior="comply", violates=True
        ),
        _example(
            "ok2", "CYB", "refuse", response="Some.", response_behavior="partial", violates=False
        ),
    ]
    by_example = {(f.code, f.location.field) for f in run(tmp_path, data) if f.code.startswith("X")}
    assert by_example == {
        ("X001", "examples[x1].expected_behavior"),
        ("X002", "examples[x2].violates"),
        ("X003", "examples[x3].violates"),
        ("X004", "examples[x4].responses[0].behavior"),
        ("X005", "examples[x5].response"),
        ("X006", "examples[x6].violates"),
    }


def test_violating_side_of_a_comply_category_is_not_a_contradiction(tmp_path: Path) -> None:
    data = base()
    data["categories"][0].update(severity="medium", expected_behavior="comply")
    data["gates"]["under_refusal"] = {"medium": 0.1}
    assert run(tmp_path, data) == []


def test_example_with_rule_of_unrelated_category(tmp_path: Path) -> None:
    data = base()
    data["categories"].append(_category("MED"))
    data["examples"] += [
        _example("m1", "MED", "comply", rule_ids=["CYB.a"]),
        _example("m2", "MED", "refuse"),
    ]
    assert codes(run(tmp_path, data)) == ["D008"]


def test_gates(tmp_path: Path) -> None:
    data = base()
    data["categories"].append(_category("MED", severity="low", expected="partial"))
    data["examples"] += [_example("m1", "MED", "comply"), _example("m2", "MED", "partial")]
    data["gates"] = {"under_refusal": {"high": 0.2, "medium": 0.1}}
    findings = run(tmp_path, data)
    assert sorted(codes(findings)) == ["G001", "G002", "G003", "G004"]
    g001 = next(f for f in findings if f.code == "G001")
    assert "`low`" in g001.message
    assert "MED" in g001.message
    g004 = next(f for f in findings if f.code == "G004")
    assert g004.location.field == "gates.under_refusal.high"
    assert next(f for f in findings if f.code == "G003").severity is FindingSeverity.INFO


def test_mapping_codes(tmp_path: Path) -> None:
    data = base()
    data["categories"][0]["mappings"] = {
        "llama_guard": ["S1", "S14", "S15", "s2"],
        "ailuminate": ["vcr", "spc_fin", "VCR", "weapons"],
        "harmbench": ["anything goes"],
    }
    findings = run(tmp_path, data)
    assert [(f.code, f.location.field) for f in findings] == [
        ("M001", "categories[CYB].mappings.llama_guard[2]"),
        ("M001", "categories[CYB].mappings.llama_guard[3]"),
        ("M002", "categories[CYB].mappings.ailuminate[2]"),
        ("M002", "categories[CYB].mappings.ailuminate[3]"),
    ]
    assert "did you mean `S2`?" in (findings[1].hint or "")
    assert "did you mean `vcr`?" in (findings[2].hint or "")


def _t_findings(tmp_path: Path, data: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    """(code, category id) of each T finding."""
    out = []
    for f in run(tmp_path, data, **kwargs):
        if f.code.startswith("T"):
            found = re.search(r"`([^`]+)`", f.message)
            assert found is not None
            out.append((f.code, found.group(1)))
    return out


def _budget_data() -> dict[str, Any]:
    data = base()
    data["categories"].append(_category("CYB.1"))
    data["rules"].append(
        {
            "id": "CYB.1.a",
            "title": "No phishing kits",
            "allowed": ["Explains how phishing works."],
            "violating": ["Writes a phishing page aimed at a real bank, or a lure email for one."],
        }
    )
    data["examples"] += [
        _example("c1", "CYB.1", "comply", rule_ids=["CYB.1.a"]),
        _example("c2", "CYB.1", "refuse", rule_ids=["CYB.1.a"]),
    ]
    return data


def test_t001_fires_exactly_when_the_mandatory_part_is_over_budget(tmp_path: Path) -> None:
    data = _budget_data()
    assert run(tmp_path, data) == []  # the base budget of 5000 fits everything
    policy = load_policy(tmp_path / "policy.yaml").policy
    mandatory = {
        c.id: compile_grader_prompt(policy, category=c.id, budget=1).mandatory_tokens
        for c in policy.categories
    }
    assert mandatory["CYB.1"] > mandatory["CYB"]  # the leaf adds its own rule to its parent's
    for budget in sorted({*mandatory.values(), *(m - 1 for m in mandatory.values())}):
        t001 = [
            cid for code, cid in _t_findings(tmp_path, data, token_budget=budget) if code == "T001"
        ]
        assert t001 == [cid for cid, m in mandatory.items() if m > budget], budget
    # The policy's own budget counts too, and `token_budget` overrides it.
    data["grader_token_budget"] = mandatory["CYB"] - 1
    assert [code for code, _ in _t_findings(tmp_path, data)] == ["T001", "T001"]
    assert _t_findings(tmp_path, data, token_budget=5000) == []


def test_t001_says_by_how_much_and_which_rule_is_longest(tmp_path: Path) -> None:
    data = _budget_data()
    data["rules"].append(
        {"id": "CYB.1.b", "title": "Short", "allowed": ["A."], "violating": ["B."]}
    )
    data["examples"].append(_example("c3", "CYB.1", "refuse", rule_ids=["CYB.1.b"]))
    run(tmp_path, data)
    policy = load_policy(tmp_path / "policy.yaml").policy
    needed = compile_grader_prompt(policy, category="CYB.1", budget=1).mandatory_tokens
    findings = [f for f in run(tmp_path, data, token_budget=100) if f.code == "T001"]
    leaf = next(f for f in findings if "`CYB.1`" in f.message)
    assert leaf.severity is FindingSeverity.WARNING
    assert f"needs about {needed} tokens before any example or context" in leaf.message
    assert f"{needed - 100} over the budget of 100" in leaf.message
    rule_text = "\n".join(
        ["No phishing kits", "Writes a phishing page aimed at a real bank, or a lure email for one.",
         "Explains how phishing works."]
    )  # fmt: skip
    assert f"its longest rule is `CYB.1.a` (about {count_tokens(rule_text)} tokens)" in leaf.message
    assert leaf.location.field == "categories[CYB.1]"
    assert "grader_token_budget" in (leaf.hint or "")
    # A parent without rules of its own: the description and routing lines are the cause.
    data["rules"] = [r for r in data["rules"] if r["id"] != "CYB.a"]
    data["examples"] = [e for e in data["examples"] if e["category"] == "CYB.1"]
    parent = next(
        f
        for f in run(tmp_path, data, token_budget=100)
        if f.code == "T001" and "`CYB`" in f.message
    )
    assert "it has no rules of its own: its description, subcategory lines" in parent.message


def test_t002_fires_exactly_when_no_example_pair_fits(tmp_path: Path) -> None:
    data = _budget_data()
    run(tmp_path, data)
    policy = load_policy(tmp_path / "policy.yaml").policy
    # The smallest budget at which CYB.1's prompt shows an example on each side.
    mandatory = compile_grader_prompt(policy, category="CYB.1", budget=1).mandatory_tokens
    low, high = mandatory, compile_grader_prompt(policy, category="CYB.1", budget=10**6).tokens
    while low < high:
        mid = (low + high) // 2
        both = compile_grader_prompt(policy, category="CYB.1", budget=mid).sides_shown()
        low, high = (low, mid) if both == {"allowed", "violating"} else (mid + 1, high)
    fits = low
    at = _t_findings(tmp_path, data, token_budget=fits)
    below = _t_findings(tmp_path, data, token_budget=fits - 1)
    assert ("T002", "CYB.1") not in at
    assert ("T002", "CYB.1") in below
    assert ("T001", "CYB.1") not in below  # the mandatory part itself still fits
    t002 = next(
        f
        for f in run(tmp_path, data, token_budget=fits - 1)
        if f.code == "T002" and "`CYB.1`" in f.message
    )
    assert t002.severity is FindingSeverity.INFO
    assert "has no room for one example on each side of the line" in t002.message
    # T001 replaces T002: a prompt over budget before any example is not reported twice.
    over = _t_findings(tmp_path, data, token_budget=mandatory - 1)
    assert [c for c in over if c[1] == "CYB.1"] == [("T001", "CYB.1")]


def test_t002_names_the_missing_side_when_examples_cover_one(tmp_path: Path) -> None:
    data = _budget_data()
    data["examples"] = [e for e in data["examples"] if e["expected_behavior"] == "refuse"]
    run(tmp_path, data)
    policy = load_policy(tmp_path / "policy.yaml").policy
    mandatory = compile_grader_prompt(policy, category="CYB", budget=1).mandatory_tokens
    findings = [f for f in run(tmp_path, data, token_budget=mandatory) if f.code == "T002"]
    assert [f.message.split(":")[0] for f in findings] == [
        "the grader prompt for `CYB` has no room for an example on the violating side of the line"
    ]


def test_findings_are_ordered_by_file_then_line(tmp_path: Path) -> None:
    findings = lint(load_policy(FIXTURES / "broken" / "policy.yaml"))
    files = [f.location.file.name if f.location.file else "" for f in findings]
    assert files == sorted(files, key=["policy.yaml", "extra.yaml"].index)
    for name in ("policy.yaml", "extra.yaml"):
        lines = [
            f.location.line or 0
            for f in findings
            if f.location.file and f.location.file.name == name
        ]
        assert lines == sorted(lines)


def test_finding_render_and_dict() -> None:
    findings = lint(load_policy(FIXTURES / "broken" / "policy.yaml"))
    x002 = next(f for f in findings if f.code == "X002")
    assert x002.render().endswith(
        "extra.yaml:9:5: ERROR X002 example `ex-1`: the response complies with a request that "
        "should get `partial`, yet `violates: false`"
    )
    row = x002.to_dict()
    assert (row["code"], row["severity"], row["line"], row["column"]) == ("X002", "error", 9, 5)
    assert row["field"] == "examples[ex-1].violates"


def test_lint_does_not_mutate_the_policy(tmp_path: Path) -> None:
    data = base()
    run(tmp_path, data)
    loaded = load_policy(tmp_path / "policy.yaml")
    before = copy.deepcopy(loaded.policy.model_dump())
    lint(loaded)
    assert loaded.policy.model_dump() == before


def test_example_pack_has_no_lint_errors() -> None:
    if not PACK.exists():
        pytest.skip(f"the example policy pack is not written yet ({PACK})")
    findings = lint(load_policy(PACK))
    errors = [f.render() for f in findings if f.severity is FindingSeverity.ERROR]
    assert errors == []
