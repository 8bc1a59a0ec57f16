"""The local grader's seed set: schema, labelling consistency, class balance and coverage.

The thresholds are the ones stated in `src/policylab/graders/seed/README.md`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import policylab
from policylab.core import Behavior

SEED = Path(policylab.__file__).parent / "graders" / "seed" / "responses.jsonl"
FIELDS = {"id", "domain", "prompt", "response", "behavior", "style", "harmful_request"}
SHARES = {"comply": (0.35, 0.45), "partial": (0.20, 0.30), "refuse": (0.30, 0.40)}
NON_ANSWERS = {"gibberish", "off-topic", "prompt-echo", "jailbreak-ack-no-content"}
STYLE_TOKEN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
LANG_TOKEN = re.compile(r"^lang-([a-z]{2})$")
# Words that are frequent in English and rare in the other languages of the set.
ENGLISH_MARKERS = {"the", "and", "you", "that", "this", "with", "your", "are", "have", "what"}

Row = dict[str, Any]


def _rows() -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(SEED.read_text(encoding="utf-8").splitlines(), start=1):
        assert line.strip(), f"{SEED}:{number}: blank line"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{SEED}:{number}: not valid JSON ({exc})")
        assert isinstance(obj, dict), f"{SEED}:{number}: expected a JSON object"
        obj["_line"] = number
        rows.append(obj)
    return rows


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return _rows()


def _where(row: Row) -> str:
    return f"{SEED}:{row['_line']} ({row.get('id')})"


def _style_tokens(row: Row) -> list[str]:
    return str(row["style"]).split("+")


def _language(row: Row) -> str:
    langs = [m.group(1) for t in _style_tokens(row) if (m := LANG_TOKEN.match(t))]
    return langs[0] if langs else "en"


def test_at_least_650_rows(rows: list[Row]) -> None:
    assert len(rows) >= 650


def test_fields_and_types(rows: list[Row]) -> None:
    behaviors = {b.value for b in Behavior}
    for row in rows:
        keys = set(row) - {"_line"}
        assert keys == FIELDS, f"{_where(row)}: fields {sorted(keys)}, expected {sorted(FIELDS)}"
        for field in ("id", "domain", "prompt", "response", "style"):
            value = row[field]
            assert isinstance(value, str), f"{_where(row)}: {field} must be a string"
            assert value, f"{_where(row)}: {field} is empty"
            assert value.strip() == value, f"{_where(row)}: {field} has surrounding whitespace"
        assert row["behavior"] in behaviors, f"{_where(row)}: behavior {row['behavior']!r}"
        assert isinstance(row["harmful_request"], bool), f"{_where(row)}: harmful_request not bool"
        assert re.fullmatch(r"[a-z][a-z-]*[a-z]", row["domain"]), f"{_where(row)}: domain format"


def test_ids_unique_and_well_formed(rows: list[Row]) -> None:
    ids = [row["id"] for row in rows]
    bad = [i for i in ids if not re.fullmatch(r"seed-\d{4}", i)]
    assert not bad, f"malformed ids: {bad[:5]}"
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_style_tokens(rows: list[Row]) -> None:
    for row in rows:
        tokens = _style_tokens(row)
        assert all(STYLE_TOKEN.match(t) for t in tokens), f"{_where(row)}: style {row['style']!r}"
        assert len([t for t in tokens if t.startswith("lang-")]) <= 1, f"{_where(row)}: two langs"
    distinct = {t for row in rows for t in _style_tokens(row) if not t.startswith("lang-")}
    assert len(distinct) >= 40


def test_no_duplicate_responses(rows: list[Row]) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        key = " ".join(row["response"].split()).casefold()
        assert key not in seen, f"{_where(row)}: same response as {seen[key]}"
        seen[key] = row["id"]


def test_class_balance(rows: list[Row]) -> None:
    counts = Counter(row["behavior"] for row in rows)
    for behavior, (low, high) in SHARES.items():
        share = counts[behavior] / len(rows)
        assert low <= share <= high, f"{behavior}: {share:.3f} outside [{low}, {high}]"


def test_every_behavior_for_harmful_and_benign_requests(rows: list[Row]) -> None:
    cells = Counter((row["behavior"], row["harmful_request"]) for row in rows)
    for behavior in SHARES:
        for harmful in (True, False):
            assert cells[(behavior, harmful)] >= 30, (behavior, harmful, cells[(behavior, harmful)])


def test_domain_coverage(rows: list[Row]) -> None:
    domains = Counter(row["domain"] for row in rows)
    assert len(domains) >= 20
    thin = {d: n for d, n in domains.items() if n < 5}
    assert not thin, f"domains with fewer than 5 rows: {thin}"


def test_non_english_rows(rows: list[Row]) -> None:
    langs = Counter(_language(row) for row in rows)
    non_english = sum(n for lang, n in langs.items() if lang != "en")
    assert non_english >= 30
    assert len(langs) - 1 >= 5, f"only {sorted(langs)}"


def test_non_english_tags_are_not_english_text(rows: list[Row]) -> None:
    for row in rows:
        if _language(row) == "en":
            continue
        words = re.findall(r"[^\W\d_]+", row["response"].casefold())
        english = sum(w in ENGLISH_MARKERS for w in words)
        assert english <= max(1, len(words) // 20), f"{_where(row)}: looks English"


def test_non_answers_are_refusals(rows: list[Row]) -> None:
    for row in rows:
        if NON_ANSWERS & set(_style_tokens(row)):
            assert row["behavior"] == "refuse", f"{_where(row)}: a non-answer must be refuse"


def test_over_refusals_refuse_benign_requests(rows: list[Row]) -> None:
    over = [row for row in rows if "over-refusal" in _style_tokens(row)]
    assert len(over) >= 15
    for row in over:
        assert row["behavior"] == "refuse", f"{_where(row)}"
        assert row["harmful_request"] is False, f"{_where(row)}"


def test_response_lengths(rows: list[Row]) -> None:
    words = [len(row["response"].split()) for row in rows]
    assert max(words) <= 260
    assert sum(w <= 5 for w in words) >= 20
    assert sum(w >= 120 for w in words) >= 20


def test_training_loader_reads_every_row(rows: list[Row]) -> None:
    training = pytest.importorskip("policylab.graders.training")
    loaded = training.seed_rows(SEED)
    assert [r.id for r in loaded] == [row["id"] for row in rows]
    assert [r.behavior.value for r in loaded] == [row["behavior"] for row in rows]
