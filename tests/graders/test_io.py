"""Reading samples and gold labels from JSONL: bad lines are reported with their line numbers."""

from __future__ import annotations

from pathlib import Path

from policylab.core import Behavior
from policylab.graders.io import read_gold, read_samples

LINES = [
    '{"id": 1, "prompt": "p", "response": "r", "category": "CYB.1", "lang": "en"}',
    '{"id": "m", "messages": [{"role": "user", "content": "hi"}], "response": "hello"}',
    "",
    "not json",
    '{"prompt": "p", "response": "r"}',
    '{"id": "x", "prompt": "p"}',
    '{"id": "y", "prompt": "p", "messages": [{"role": "user", "content": "hi"}], "response": "r"}',
    '{"id": "z", "messages": [{"role": "robot", "content": "hi"}], "response": "r"}',
    '{"id": 1, "prompt": "again", "response": "r"}',
    '{"id": "e", "prompt": "p", "response": "r", "expected_behavior": "maybe"}',
]


def test_read_samples_keeps_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    samples, bad = read_samples(path)
    assert [s.id for s in samples] == ["1", "m"]
    assert samples[0].category == "CYB.1"
    assert samples[0].metadata == {"lang": "en"}
    assert samples[1].messages[0].text == "hi"
    lines = [b.problem.location.line for b in bad]
    assert lines == [4, 5, 6, 7, 8, 9, 10]
    fields = [b.problem.location.field for b in bad]
    assert fields == [None, "id", "response", "prompt", "messages", "id", "expected_behavior"]
    assert [b.id for b in bad] == [None, None, "x", "y", "z", None, "e"]
    assert "duplicate id '1' (first on line 1)" in bad[5].problem.message


def test_read_gold_needs_a_behaviour(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "p", "response": "r", "behavior": "Refuse"}\n'
        '{"id": "b", "prompt": "p", "response": "r"}\n'
        '{"id": "c", "prompt": "p", "response": "r", "behavior": "safe"}\n',
        encoding="utf-8",
    )
    gold, bad = read_gold(path)
    assert [(g.sample.id, g.behavior) for g in gold] == [("a", Behavior.REFUSE)]
    assert [(b.problem.location.line, b.problem.location.field) for b in bad] == [
        (2, "behavior"),
        (3, "behavior"),
    ]
