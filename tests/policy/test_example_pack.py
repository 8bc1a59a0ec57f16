"""The example policy pack (examples/policies/acme), its eval set, and the format doc's example.

These are teaching material: the tests hold them to the bar the docs set (both sides of every line,
every rule exercised, harm models, mappings, gates per tier, sober violating examples).
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from policylab.chat import ChatMessage
from policylab.core import Behavior, Severity
from policylab.policy import LoadedPolicy, Policy, load_policy
from policylab.policy.compile.grader import grader_prompts
from policylab.policy.schema import ResponseLabel

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "examples" / "eval" / "acme-eval.jsonl"
SAMPLE = REPO / "examples" / "eval" / "acme-sample.csv"
FORMAT_DOC = REPO / "docs" / "policy-format.md"

MIN_PER_SIDE = 3
DOMAINS = {"VIO", "CYB", "SH", "PRV", "SEX", "HATE", "ADV", "CBRN"}

# The external vocabularies the mappings may use (see docs/policy-format.md, "mappings").
AILUMINATE = {
    "vcr", "src", "cse", "ssh", "iwp", "ipv", "dfm", "ncr", "hte", "prv",
    "spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn",
}  # fmt: skip
LLAMA_GUARD = {f"S{i}" for i in range(1, 15)}
HARMBENCH = {
    "chemical_biological", "copyright", "cybercrime_intrusion", "harassment_bullying", "harmful",
    "illegal", "misinformation_disinformation",
}  # fmt: skip
# The vague quantifiers docs/policy-format.md advises against; the pack's criteria avoid them.
VAGUE = re.compile(
    r"(?<!\w)(generally|usually|may|might|often|typically|some|sometimes|as appropriate|"
    r"reasonable|etc\.)(?!\w)",
    re.IGNORECASE,
)
# The fields of an eval item (examples/eval/acme-eval.jsonl).
EVAL_KEYS = {
    "id",
    "messages",
    "categories",
    "expected_behavior",
    "source",
    "language",
    "tags",
    "split",
}


@pytest.fixture(scope="module")
def loaded(example_pack: Path) -> LoadedPolicy:
    return load_policy(example_pack)


@pytest.fixture(scope="module")
def pack(loaded: LoadedPolicy) -> Policy:
    return loaded.policy


@pytest.fixture(scope="module")
def eval_items() -> list[dict[str, Any]]:
    items = []
    for n, line in enumerate(EVAL.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{EVAL}:{n}: blank line"
        items.append(json.loads(line))
    return items


def subcategories(policy: Policy) -> list[str]:
    return [c.id for c in policy.categories if c.parent_id is not None]


# ---- the pack ------------------------------------------------------------------------------------


def test_pack_loads_with_its_includes(loaded: LoadedPolicy) -> None:
    policy = loaded.policy
    assert policy.id == "acme-assistant"
    assert policy.version == "1.0.0"
    assert policy.grader_token_budget == 600
    assert policy.changelog
    assert policy.changelog[0].version == "1.0.0"
    assert len(policy.owners) >= 1
    names = sorted(f.name for f in loaded.files)
    assert names == sorted(
        [
            "policy.yaml", "violence-weapons.yaml", "cyber.yaml", "self-harm.yaml", "privacy.yaml",
            "sexual.yaml", "hate.yaml", "specialised-advice.yaml", "cbrn.yaml",
        ]
    )  # fmt: skip


def test_pack_has_every_domain_with_two_or_three_subcategories(pack: Policy) -> None:
    top = {c.id for c in pack.categories if c.parent_id is None}
    assert top == DOMAINS
    for domain in top:
        children = pack.children(domain)
        assert 2 <= len(children) <= 3, f"{domain} has {len(children)} subcategories"
        assert all(c.id.startswith(domain + ".") for c in children)


def test_ids_are_unique(pack: Policy) -> None:
    for section in ("categories", "rules", "examples", "ambiguity", "definitions"):
        key = "term" if section == "definitions" else "id"
        ids = Counter(getattr(e, key) for e in getattr(pack, section))
        assert [i for i, n in ids.items() if n > 1] == [], section


def test_every_subcategory_has_three_examples_on_each_side(pack: Policy) -> None:
    short = {}
    for cid in subcategories(pack):
        sides = Counter(e.side for e in pack.examples_for(cid))
        if sides["allowed"] < MIN_PER_SIDE or sides["violating"] < MIN_PER_SIDE:
            short[cid] = dict(sides)
    assert short == {}


def test_every_rule_is_exercised_and_every_example_cites_a_rule_of_its_category(
    pack: Policy,
) -> None:
    used = {rid for e in pack.examples for rid in e.rule_ids}
    assert [r.id for r in pack.rules if r.id not in used] == []
    for ex in pack.examples:
        assert ex.rule_ids, f"example {ex.id} cites no rule"
        assert ex.rationale
        for rid in ex.rule_ids:
            rule = pack.rule(rid)
            assert rule is not None, f"example {ex.id} cites unknown rule {rid}"
            assert rule.category_id == ex.category, f"example {ex.id} cites {rid}"
    assert all(pack.category(r.category_id) is not None for r in pack.rules)
    assert all(pack.rules_for(c) for c in subcategories(pack))


def test_examples_carry_responses_and_good_bad_pairs(pack: Policy) -> None:
    with_response = [e for e in pack.examples if e.response is not None]
    assert len(with_response) >= len(pack.examples) * 0.4
    assert all(e.response_behavior is not None for e in with_response)
    assert any(e.violates for e in with_response)
    assert any(e.violates is False for e in with_response)
    pairs = [
        e for e in pack.examples if {r.label for r in e.responses} == set(ResponseLabel)
    ]  # both a GOOD and a BAD response
    assert {e.category.split(".")[0] for e in pairs} == DOMAINS
    behaviours = Counter(e.expected_behavior for e in pack.examples)
    assert behaviours[Behavior.PARTIAL] >= 15, "safe completions should be well represented"
    assert sum("over-refusal-trap" in e.tags for e in pack.examples) >= 10


def test_response_labels_agree_with_the_expected_behaviour(pack: Policy) -> None:
    for ex in pack.examples:
        if ex.response is not None and ex.response_behavior is not None:
            if ex.response_behavior is Behavior.COMPLY and ex.side == "violating":
                assert ex.violates, f"{ex.id}: a full answer to a violating request must violate"
            if ex.response_behavior is ex.expected_behavior:
                assert not ex.violates, f"{ex.id}: the expected behaviour cannot violate"
        for r in ex.responses:
            if r.label is ResponseLabel.GOOD:
                assert r.behavior is ex.expected_behavior, f"{ex.id}: GOOD response"
            else:
                assert r.behavior is not ex.expected_behavior, f"{ex.id}: BAD response"


def test_violating_responses_in_severe_categories_are_truncated(pack: Policy) -> None:
    """A harmful answer in a high or critical category is described or cut short, never shown."""
    severe = {c.id for c in pack.categories if c.severity in (Severity.HIGH, Severity.CRITICAL)}
    texts: list[tuple[str, str]] = []
    for ex in pack.examples:
        if ex.category not in severe:
            continue
        if ex.response is not None and ex.violates:
            texts.append((ex.id, ex.response))
        for r in ex.responses:
            if r.label is ResponseLabel.BAD and r.behavior is not Behavior.REFUSE:
                texts.append((ex.id, r.text))
    assert texts, "expected violating responses to check"
    assert [i for i, t in texts if "omitted" not in t] == []


def test_every_category_has_a_harm_model_and_mappings(pack: Policy) -> None:
    for cat in pack.categories:
        assert cat.harm_model is not None, cat.id
        assert cat.mappings.get("ailuminate"), f"{cat.id} has no AILuminate mapping"
        assert cat.mappings.get("llama_guard"), f"{cat.id} has no Llama Guard mapping"
        assert set(cat.mappings["ailuminate"]) <= AILUMINATE, cat.id
        assert set(cat.mappings["llama_guard"]) <= LLAMA_GUARD, cat.id
        assert set(cat.mappings.get("harmbench", [])) <= HARMBENCH, cat.id
        assert set(cat.mappings) <= {"ailuminate", "llama_guard", "harmbench", "do_not_answer"}


def test_parent_mappings_cover_their_children(pack: Policy) -> None:
    for cat in pack.categories:
        if cat.parent_id is None:
            continue
        parent = pack.category(cat.parent_id)
        assert parent is not None
        assert parent.severity.rank >= cat.severity.rank, f"{cat.id} is more severe than its parent"
        for namespace, codes in cat.mappings.items():
            missing = set(codes) - set(parent.mappings.get(namespace, []))
            assert missing == set(), f"{parent.id} lacks {namespace} {missing} of {cat.id}"


def test_harm_models_are_consistent_with_behaviour(pack: Policy) -> None:
    for cat in pack.categories:
        hm = cat.harm_model
        assert hm is not None
        if cat.severity is Severity.CRITICAL:
            assert cat.expected_behavior is Behavior.REFUSE, cat.id
            assert hm.reversibility.value == "irreversible", cat.id
        if cat.id.startswith("ADV"):
            assert cat.expected_behavior is Behavior.PARTIAL, "advice is safe-completed"
            assert cat.severity.rank <= Severity.MEDIUM.rank
    absolute = pack.category("SEX.1")
    assert absolute is not None
    assert absolute.severity is Severity.CRITICAL


def test_every_tier_used_has_a_gate(pack: Policy) -> None:
    used = {c.severity for c in pack.categories}
    gates = pack.gates
    assert used - set(gates.under_refusal) == set(), "every tier used needs a gate"
    assert used == set(Severity)
    limits = [gates.under_refusal[s] for s in sorted(used, key=lambda s: s.rank)]
    assert limits == sorted(limits, reverse=True), "a more severe tier needs a tighter gate"
    assert gates.over_refusal is not None
    assert gates.grader_agreement is not None
    assert gates.grader_agreement.metric == "cohen_kappa"
    assert gates.decision == "upper_bound"


def test_precedence_and_ambiguity_name_existing_categories(pack: Policy) -> None:
    ids = {c.id for c in pack.categories}
    for p in pack.precedence:
        assert {p.category, *p.over} <= ids
    for a in pack.ambiguity:
        assert set(a.categories) <= ids
    assert any(not a.categories for a in pack.ambiguity), "expected policy-wide ambiguity rules"


def test_criteria_use_no_vague_quantifiers(pack: Policy) -> None:
    texts: list[tuple[str, str]] = [("scope", pack.scope)]
    texts += [(d.term, d.definition) for d in pack.definitions]
    for c in pack.categories:
        assert c.harm_model is not None
        texts += [(c.id, c.description), (c.id, c.harm_model.mechanism)]
    for r in pack.rules:
        texts += [(r.id, t) for t in (r.title, *r.allowed, *r.violating, *r.escalate, *r.ambiguity)]
    texts += [(a.id, f"{a.when} {a.resolve}") for a in pack.ambiguity]
    texts += [(p.category, p.reason) for p in pack.precedence]
    texts += [(e.id, e.rationale) for e in pack.examples]
    found = [(where, m.group(0)) for where, t in texts for m in [VAGUE.search(t)] if m]
    assert found == []


def test_vague_word_check_catches_vague_words() -> None:
    assert VAGUE.search("Responses may include some detail, etc.")
    assert not VAGUE.search("Someone asks for maybe a summary; something mayhem")


def test_pack_lints_without_errors(loaded: LoadedPolicy) -> None:
    if importlib.util.find_spec("policylab.policy.lint") is None:
        pytest.skip("policylab.policy.lint is not written yet: the lint assertion runs once it is")
    lint_module = importlib.import_module("policylab.policy.lint")
    findings = lint_module.lint(loaded)
    errors = [f.render() for f in findings if f.severity.value == "error"]
    assert errors == []
    # Checks mirroring the pack's own bar: vague words, coverage, harm models, gates, mappings,
    # grader prompt budgets.
    codes = {"V001", "C001", "C002", "C003", "H004", "G001", "G002", "M001", "M002", "T001", "T002"}
    assert [f.render() for f in findings if f.code in codes] == []


def test_every_category_s_grader_prompt_stays_within_its_budget(pack: Policy) -> None:
    """The issue's Done-when: the grader prompt for each example category fits its budget."""
    prompts = grader_prompts(pack)
    assert list(prompts) == [c.id for c in pack.categories]
    over = {cid: p.tokens for cid, p in prompts.items() if p.tokens > pack.grader_token_budget}
    assert over == {}
    # Each shows at least one example on each side of its line, as the guide's shape asks.
    sides = {"allowed", "violating"}
    assert [cid for cid, p in prompts.items() if p.sides_shown() != sides] == []


@pytest.mark.realdata
def test_mappings_use_the_published_vocabularies(pack: Policy, shared_data: Path) -> None:
    """Every harmbench, do_not_answer and ailuminate code is a label of the real data set."""
    harmbench = pd.read_csv(
        shared_data / "harmbench/data/behavior_datasets/harmbench_behaviors_text_all.csv"
    )
    dna = pd.read_csv(shared_data / "do-not-answer/datasets/Instruction/do_not_answer_en.csv")
    ailuminate = pd.read_csv(
        shared_data / "ailuminate/airr_official_1.0_demo_en_us_prompt_set_release.csv"
    )
    known = {
        "harmbench": set(harmbench["SemanticCategory"]),
        "do_not_answer": set(dna["types_of_harm"]),
        "ailuminate": set(ailuminate["hazard"]),
    }
    assert known["ailuminate"] == AILUMINATE
    assert known["harmbench"] == HARMBENCH
    for cat in pack.categories:
        for namespace, codes in known.items():
            unknown = set(cat.mappings.get(namespace, [])) - codes
            assert unknown == set(), f"{cat.id}: {namespace} {unknown}"
    used_dna = {c for cat in pack.categories for c in cat.mappings.get("do_not_answer", [])}
    assert len(used_dna) >= 6


# ---- the eval set --------------------------------------------------------------------------------


def test_eval_items_have_the_documented_shape(
    eval_items: list[dict[str, Any]], pack: Policy
) -> None:
    ids = {c.id for c in pack.categories}
    assert len(eval_items) >= 160
    for item in eval_items:
        where = item.get("id")
        assert set(item) == EVAL_KEYS, where
        assert re.fullmatch(r"acme-\d{4}", str(item["id"])), where
        messages = [ChatMessage.model_validate(m) for m in item["messages"]]
        assert messages, where
        assert messages[-1].role == "user", where
        assert all(m.text.strip() for m in messages), where
        cats = item["categories"]
        assert isinstance(cats, list), where
        assert cats, where
        assert set(cats) <= ids, where
        assert Behavior(item["expected_behavior"]) in Behavior, where
        assert item["source"] == "acme-authored", where
        assert item["language"] in {"en", "fr", "es", "de"}, where
        assert isinstance(item["tags"], list), where
        assert all(isinstance(t, str) for t in item["tags"]), where
        assert item["split"] == "test", where


def test_eval_ids_are_unique_and_sequential(eval_items: list[dict[str, Any]]) -> None:
    ids = [str(i["id"]) for i in eval_items]
    assert len(ids) == len(set(ids))
    assert ids == [f"acme-{n:04d}" for n in range(1, len(ids) + 1)]


def test_eval_covers_both_sides_of_every_subcategory(
    eval_items: list[dict[str, Any]], pack: Policy
) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for item in eval_items:
        side = "allowed" if item["expected_behavior"] == "comply" else "violating"
        for cid in item["categories"]:
            counts[(cid, side)] += 1
    short = {
        cid: (counts[(cid, "allowed")], counts[(cid, "violating")])
        for cid in subcategories(pack)
        if min(counts[(cid, "allowed")], counts[(cid, "violating")]) < MIN_PER_SIDE
    }
    assert short == {}


def test_eval_has_conversations_system_prompts_and_other_languages(
    eval_items: list[dict[str, Any]],
) -> None:
    def roles(item: dict[str, Any]) -> list[str]:
        return [m["role"] for m in item["messages"]]

    assert sum(roles(i).count("user") > 1 for i in eval_items) >= 3
    assert sum(roles(i)[0] == "system" for i in eval_items) >= 3
    languages = Counter(str(i["language"]) for i in eval_items)
    assert sum(n for lang, n in languages.items() if lang != "en") >= 10
    assert {"fr", "es", "de"} <= set(languages)


def test_eval_prompts_are_distinct_from_the_pack_examples(
    eval_items: list[dict[str, Any]], pack: Policy
) -> None:
    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())

    pack_texts = {norm(m.text) for e in pack.examples for m in e.conversation if m.role == "user"}
    eval_texts = [
        norm(m["content"]) for i in eval_items for m in i["messages"] if m["role"] == "user"
    ]
    assert [t for t in eval_texts if t in pack_texts] == []
    assert len(set(eval_texts)) == len(eval_texts), "duplicate prompts in the eval set"


def test_csv_sample_matches_the_eval_set(eval_items: list[dict[str, Any]]) -> None:
    by_id = {str(i["id"]): i for i in eval_items}
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["id", "prompt", "category", "expected_behavior"]
        rows = list(reader)
    assert len(rows) == 20
    for row in rows:
        item = by_id[row["id"]]
        messages = item["messages"]
        assert isinstance(messages, list)
        assert len(messages) == 1
        assert row["prompt"] == messages[0]["content"]
        assert [row["category"]] == item["categories"]
        assert row["expected_behavior"] == item["expected_behavior"]
    sides = Counter(r["expected_behavior"] == "comply" for r in rows)
    assert sides[True] >= 5
    assert sides[False] >= 5


# ---- the format documentation's annotated example ----------------------------------------------


def test_format_doc_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(# file: (\S+)\n.*?)```", FORMAT_DOC.read_text(), re.S)
    assert [name for _, name in blocks] == ["policy.yaml", "domains/cyber.yaml"]
    for text, name in blocks:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    loaded = load_policy(tmp_path / "policy.yaml")
    policy = loaded.policy
    assert [c.id for c in policy.categories] == ["CYB", "CYB.1", "CYB.2"]
    assert policy.children("CYB") == policy.categories[1:]
    rule = policy.rule("CYB.1.a")
    assert rule is not None
    assert rule.category_id == "CYB.1"
    assert [e.side for e in policy.examples] == ["allowed", "violating", "violating", "allowed"]
    assert policy.gates.decision == "upper_bound"
    assert policy.gates.min_items == 30
    if importlib.util.find_spec("policylab.policy.lint") is not None:
        lint_module = importlib.import_module("policylab.policy.lint")
        findings = lint_module.lint(loaded)
        assert [f.render() for f in findings if f.severity.value == "error"] == []
