"""The demo's gold set, `examples/gold/acme-gold.jsonl`: format, balance, coverage, independence.

`policylab validate` measures the local grader against this file before the demo trusts it, so it
must read cleanly with `read_gold`, answer the eval set's own prompts, keep the class balance its
README states, and share no response with the grader's training data (the seed set and the
example pack's labelled responses): a gold row the grader had learned from would inflate its
agreement. The rules checked here are the ones in `examples/gold/README.md`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.data.dedup import DEFAULT_NEAR_THRESHOLD, shingles
from policylab.graders.io import GoldSample, read_gold
from policylab.graders.training import policy_rows, seed_rows
from policylab.policy import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / "examples" / "gold" / "acme-gold.jsonl"
EVAL = REPO / "examples" / "eval" / "acme-eval.jsonl"

N_ROWS = 150
TARGET = {"comply": 0.40, "partial": 0.25, "refuse": 0.35}
TOLERANCE = 0.10
MIN_SHARE_PER_MODEL_STYLE = 0.20
METADATA = {"model_style", "style", "rationale"}
NON_ANSWERS = {"gibberish", "off-topic", "prompt-echo", "jailbreak-ack-no-content"}
STYLE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*(\+[a-z0-9]+(-[a-z0-9]+)*)*$")
OMITTED = re.compile(r"\[[^\]]*omitted[^\]]*\]")
# A shorter text counts as copied inside a longer one when this share of its character shingles
# reappears there; below this many shingles (about 45 characters) stock phrases such as "I can't
# help with that." would match by chance.
CONTAINED = 0.9
MIN_CONTAINED_SHINGLES = 40

Overlap = Literal["exact", "near", "contained"]

# Enough new text around a copied response that it is no longer a near duplicate, only contained.
WRAPPER = (
    "Thanks for asking about this, it comes up a lot and deserves a careful answer, so here is what "
    "I would say after thinking it over for a while and checking the usual guidance on the topic."
)


@cache
def _normalised(text: str) -> str:
    """Casefolded words joined by single spaces: punctuation, case and layout do not count."""
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


@cache
def _shingles(text: str) -> frozenset[str]:
    return frozenset(shingles(text))


def _overlap(a: str, b: str) -> Overlap | None:
    """How `a` copies `b`, if it does: same normalised text, a near duplicate, or one inside the other.

    Near duplicates use the project's own definition (`policylab.data.dedup`): Jaccard similarity
    of character 5-shingles of the normalised text at or above `DEFAULT_NEAR_THRESHOLD`.
    """
    if _normalised(a) == _normalised(b):
        return "exact"
    sa, sb = _shingles(a), _shingles(b)
    if not sa or not sb:
        return None
    shared = len(sa & sb)
    if shared / len(sa | sb) >= DEFAULT_NEAR_THRESHOLD:
        return "near"
    shorter = min(len(sa), len(sb))
    if shorter >= MIN_CONTAINED_SHINGLES and shared / shorter >= CONTAINED:
        return "contained"
    return None


@pytest.fixture(scope="module")
def gold() -> list[GoldSample]:
    rows, bad = read_gold(GOLD)
    assert not bad, "bad gold lines:\n" + "\n".join(str(b.problem) for b in bad)
    return rows


@pytest.fixture(scope="module")
def eval_rows() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for line in EVAL.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            rows[obj["id"]] = obj
    return rows


@pytest.fixture(scope="module")
def policy(example_pack: Path) -> Policy:
    return load_policy(example_pack).policy


@pytest.fixture(scope="module")
def training_texts(policy: Policy) -> dict[str, str]:
    """Every labelled response the local grader trains on, by source and id."""
    texts = {f"seed {r.id}": r.response for r in seed_rows()}
    texts.update({f"pack {r.id}": r.response for r in policy_rows(policy)})
    return texts


def _eval_row(sample_id: str, eval_rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert sample_id.startswith("gold-"), f"{sample_id}: ids are gold-<eval id>"
    eval_id = sample_id.removeprefix("gold-")
    assert eval_id in eval_rows, f"{sample_id}: {eval_id} is not an id of {EVAL.name}"
    return eval_rows[eval_id]


def test_every_line_reads_as_gold(gold: list[GoldSample]) -> None:
    lines = [ln for ln in GOLD.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) == N_ROWS
    assert len(gold) == N_ROWS


def test_ids_are_unique_and_name_eval_items(
    gold: list[GoldSample], eval_rows: dict[str, dict[str, Any]]
) -> None:
    ids = [g.sample.id for g in gold]
    assert len(set(ids)) == len(ids)
    for g in gold:
        _eval_row(g.sample.id, eval_rows)


def test_rows_answer_the_eval_prompts(
    gold: list[GoldSample], eval_rows: dict[str, dict[str, Any]]
) -> None:
    for g in gold:
        item = _eval_row(g.sample.id, eval_rows)
        expected = [ChatMessage.model_validate(m) for m in item["messages"]]
        assert g.sample.messages == expected, f"{g.sample.id}: conversation differs from the eval"
        assert g.sample.category == item["categories"][0], g.sample.id
        assert g.sample.expected_behavior == Behavior(item["expected_behavior"]), g.sample.id


def test_class_balance_is_near_the_target(gold: list[GoldSample]) -> None:
    counts = Counter(g.behavior.value for g in gold)
    assert set(counts) == set(TARGET)
    for label, target in TARGET.items():
        share = counts[label] / len(gold)
        assert abs(share - target) <= TOLERANCE, f"{label}: {share:.0%}, target {target:.0%}"


def test_every_top_level_category_is_covered(gold: list[GoldSample], policy: Policy) -> None:
    top_level = {c.id for c in policy.categories if "." not in c.id}
    covered = {str(g.sample.category).split(".")[0] for g in gold}
    assert covered == top_level, f"not covered: {sorted(top_level - covered)}"


def test_both_sides_of_every_line_are_covered(
    gold: list[GoldSample], eval_rows: dict[str, dict[str, Any]]
) -> None:
    def side(expected: str) -> str:
        return "allowed" if expected == "comply" else "violating"

    in_eval: dict[str, set[str]] = {}
    for item in eval_rows.values():
        in_eval.setdefault(item["categories"][0], set()).add(side(item["expected_behavior"]))
    in_gold: dict[str, set[str]] = {}
    for g in gold:
        assert g.sample.category is not None, g.sample.id
        assert g.sample.expected_behavior is not None, g.sample.id
        in_gold.setdefault(g.sample.category, set()).add(side(g.sample.expected_behavior.value))
    for category, sides in in_eval.items():
        missing = sides - in_gold.get(category, set())
        assert not missing, f"{category}: no gold row on the {', '.join(sorted(missing))} side"


def test_metadata_follows_the_readme(gold: list[GoldSample]) -> None:
    for g in gold:
        meta = g.sample.metadata
        assert set(meta) == METADATA, f"{g.sample.id}: fields {sorted(meta)}"
        assert meta["model_style"] in {"small", "large"}, g.sample.id
        assert STYLE.match(meta["style"]), f"{g.sample.id}: style {meta['style']!r}"
        assert meta["rationale"].strip(), g.sample.id
    styles = Counter(g.sample.metadata["model_style"] for g in gold)
    for name in ("small", "large"):
        assert styles[name] / len(gold) >= MIN_SHARE_PER_MODEL_STYLE, styles


def test_labels_follow_the_style_rules(
    gold: list[GoldSample], eval_rows: dict[str, dict[str, Any]]
) -> None:
    """Non-answers are refusals, over-refusals refuse benign requests, harmful bodies are omitted."""
    for g in gold:
        tokens = set(g.sample.metadata["style"].split("+"))
        if tokens & NON_ANSWERS:
            assert g.behavior is Behavior.REFUSE, f"{g.sample.id}: a non-answer is `refuse`"
        if "over-refusal" in tokens:
            assert g.behavior is Behavior.REFUSE, g.sample.id
            item = _eval_row(g.sample.id, eval_rows)
            assert item["expected_behavior"] == "comply", f"{g.sample.id}: not a benign request"
        if "harmful-comply-vague" in tokens:
            assert g.behavior is Behavior.COMPLY, g.sample.id
            assert OMITTED.search(g.sample.response), f"{g.sample.id}: harmful body not omitted"


def test_responses_are_distinct(gold: list[GoldSample]) -> None:
    seen: dict[str, str] = {}
    for g in gold:
        key = _normalised(g.sample.response)
        assert key not in seen, f"{g.sample.id} repeats {seen[key]}"
        seen[key] = g.sample.id


def test_no_overlap_with_the_grader_training_data(
    gold: list[GoldSample], training_texts: dict[str, str]
) -> None:
    found = [
        f"{g.sample.id} ~ {source}: {kind}"
        for g in gold
        for source, text in training_texts.items()
        if (kind := _overlap(g.sample.response, text)) is not None
    ]
    assert not found, "gold responses copied from training data:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("edit", "kind"),
    [
        (lambda t: t.upper().replace(",", "").replace(".", " ."), "exact"),
        (
            lambda t: " ".join("banana" if i == 10 else w for i, w in enumerate(t.split(" "))),
            "near",
        ),
        (lambda t: f"{WRAPPER} {t} {WRAPPER}", "contained"),
    ],
    ids=["case-and-punctuation", "one-word", "wrapped"],
)
def test_overlap_check_catches_copies(
    training_texts: dict[str, str], edit: Any, kind: Overlap
) -> None:
    source = training_texts["seed seed-0003"]
    assert len(source) > 300
    copy = edit(source)
    assert copy != source
    assert _overlap(copy, source) == kind


def test_overlap_check_passes_unrelated_texts(training_texts: dict[str, str]) -> None:
    assert _overlap(training_texts["seed seed-0003"], training_texts["seed seed-0002"]) is None
    assert (
        _overlap("I can't help with that.", "I can't help with that, sorry. Anything else?") is None
    )
