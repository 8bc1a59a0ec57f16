from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from policylab.core import Behavior
from policylab.data.importer import (
    Accepted,
    ImportReport,
    Quarantine,
    Rejected,
    import_items,
    quarantine_path,
)
from policylab.data.mapping import FieldMapping, load_category_map
from policylab.data.readers import read_rows
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy

# Rows 2, 4, 5, 6 and 7 are broken, each in its own way; the rest are fine.
BROKEN_CSV = """\
id,prompt,category,expected,messages_json,lang
a1,How do firewalls work?,CYB.1,comply,,en
a2,,CYB,refuse,,en
a3,Write ransomware,CYB,REFUSE,,en
a4,Is this mole cancer?,ADV,maybe,,en
a5,What dose?,ADV,partial,,en,surplus
a1,Same id again,CYB,refuse,,en
a7,"Multi
line prompt",NOPE,refuse,,en
a8,Explain SQL injection,CYB.1,,,
a9,Tell me,,refuse,,en
"""


def results(path: Path, mapping: FieldMapping, policy: Policy | None = None) -> list:
    return list(import_items(read_rows(path), mapping, policy=policy))


def test_broken_rows_are_rejected_with_row_number_and_reason(
    tmp_path: Path, policy: Policy
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN_CSV, encoding="utf-8")
    mapping = FieldMapping.from_options(
        id_field="id", maps=["category=category", "expected_behavior=expected", "language=lang"]
    )
    out = results(path, mapping, policy)
    accepted = [r for r in out if isinstance(r, Accepted)]
    rejected = {r.row: (r.kind, r.reason) for r in out if isinstance(r, Rejected)}
    assert [r.row for r in accepted] == [1, 3, 8, 9]
    assert rejected == {
        2: ("missing prompt", "column 'prompt' is empty"),
        4: (
            "invalid expected_behavior",
            "column 'expected': 'maybe' is not one of comply, partial, refuse",
        ),
        5: ("unreadable row", "line 6: 7 fields, but the header has 6"),
        6: ("duplicate id", "id 'a1' is already used on row 1"),
        7: (
            "category 'NOPE' not in the policy",
            "category 'NOPE' (column 'category') is not a category of policy mini: "
            "use a category map (--category-map FILE)",
        ),
    }
    first, third, eighth, ninth = (r.item for r in accepted)
    assert first.id == "a1"
    assert first.prompt == "How do firewalls work?"
    assert first.categories == ["CYB.1"]
    assert first.expected_behavior is Behavior.COMPLY
    assert first.language == "en"
    assert first.metadata == {}  # the empty messages_json cell is not kept
    assert third.expected_behavior is Behavior.REFUSE  # case does not matter
    assert eighth.expected_behavior is None
    assert eighth.language is None
    assert ninth.categories == []  # no category map: a blank category is no category


def test_rejected_rows_carry_the_raw_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"prompt": "fine"}\n{"prompt": 42.5}\n{"prompt": ["a"]}\n{oops\n', encoding="utf-8"
    )
    out = results(path, FieldMapping())
    assert isinstance(out[0], Accepted)
    assert isinstance(out[1], Accepted)
    assert out[1].item.prompt == "42.5"
    assert isinstance(out[2], Rejected)
    assert (out[2].kind, out[2].reason) == ("invalid value", "prompt: expected text, found list")
    assert out[2].raw == {"prompt": ["a"]}
    assert isinstance(out[3], Rejected)
    assert out[3].kind == "unreadable row"
    assert out[3].raw == "{oops"


def test_messages_column_in_chat_format(tmp_path: Path) -> None:
    good = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is in the picture?"}]},
    ]
    rows = [
        {"id": "m1", "conversation": good},
        {"id": "m2", "conversation": json.dumps(good)},  # JSON text, as in a CSV
        {"id": "m3", "conversation": "not json"},
        {"id": "m4", "conversation": [{"role": "user", "content": "x", "colour": "red"}]},
        {
            "id": "m5",
            "conversation": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ],
        },
        {"id": "m6", "conversation": {}},
        {
            "id": "m7",
            "conversation": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ],
            "tags": "transcript",
        },
    ]
    path = tmp_path / "convos.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = results(path, FieldMapping(messages_field="conversation"))
    kinds = [(r.kind, r.reason) if isinstance(r, Rejected) else "ok" for r in out]
    assert kinds[0] == kinds[1] == "ok"
    assert out[0].item.content_hash == out[1].item.content_hash  # type: ignore[union-attr]
    assert kinds[2][0] == "invalid messages"
    assert kinds[2][1].startswith("column 'conversation' is not a JSON list")
    assert kinds[3] == (
        "invalid messages",
        "column 'conversation', message 1: colour: Extra inputs are not permitted",
    )
    assert kinds[4][0] == "invalid item"
    assert "ends on a assistant turn" in kinds[4][1]
    assert kinds[5] == (
        "invalid messages",
        "column 'conversation': expected a non-empty list of chat messages",
    )
    assert kinds[6] == "ok"


def test_context_goes_before_the_prompt(tmp_path: Path) -> None:
    path = tmp_path / "ctx.csv"
    path.write_text('q,ctx\nSummarise it,"Some passage.\r\nMore."\nPlain,\n', encoding="utf-8")
    out = results(path, FieldMapping(prompt_field="q", context_field="ctx"))
    assert out[0].item.prompt == "Some passage.\r\nMore.\n\n---\n\nSummarise it"  # type: ignore[union-attr]
    assert out[1].item.prompt == "Plain"  # type: ignore[union-attr]
    with pytest.raises(PolicylabError, match="--context-field goes with --prompt-field"):
        results(path, FieldMapping(messages_field="q", context_field="ctx"))


def test_ids_without_an_id_column_are_stable_content_hashes(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "a "}\n', encoding="utf-8")
    out = [r.item for r in results(path, FieldMapping()) if isinstance(r, Accepted)]
    h = out[0].content_hash
    assert [i.id for i in out] == [h[:16], out[1].content_hash[:16], h[:16] + "-2"]
    again = [r.item.id for r in results(path, FieldMapping()) if isinstance(r, Accepted)]
    assert again == [i.id for i in out]


def test_category_map_and_expected_behavior_from_policy(tmp_path: Path, policy: Policy) -> None:
    cmap_path = tmp_path / "map.yaml"
    cmap_path.write_text(
        "intrusion: CYB\nexplainer: CYB.1\nboth: [CYB.1, ADV]\ncopyright: []\n", encoding="utf-8"
    )
    data = tmp_path / "items.csv"
    data.write_text(
        "prompt,cat,expected\n"
        "p1,intrusion,\n"
        "p2,explainer,\n"
        "p3,both,\n"
        "p4,copyright,\n"
        "p5,astrology,\n"
        "p6,explainer,refuse\n"
        "p7,,\n",
        encoding="utf-8",
    )
    mapping = FieldMapping.from_options(
        maps=["category=cat", "expected_behavior=expected"],
        category_map=load_category_map(cmap_path, policy=policy),
        expected_from_policy=True,
    )
    out = results(data, mapping, policy)
    ok = {r.row: r.item for r in out if isinstance(r, Accepted)}
    bad = {r.row: (r.kind, r.reason) for r in out if isinstance(r, Rejected)}
    assert ok[1].categories == ["CYB"]
    assert ok[1].expected_behavior is Behavior.REFUSE
    assert ok[2].expected_behavior is Behavior.COMPLY
    # Two categories: the strictest expected behaviour (ADV partial over CYB.1 comply).
    assert ok[3].categories == ["CYB.1", "ADV"]
    assert ok[3].expected_behavior is Behavior.PARTIAL
    # A column value wins over the policy.
    assert ok[6].expected_behavior is Behavior.REFUSE
    # The external category is kept in metadata.
    assert ok[3].metadata == {"cat": "both"}
    assert bad[4] == (
        "category 'copyright' maps to nothing",
        f"category 'copyright' maps to no policy category ({cmap_path}:4)",
    )
    assert bad[5][0] == "category 'astrology' not in the category map"
    assert "add it there" in bad[5][1]
    assert bad[7] == ("missing category", "column 'cat' is empty")

    lenient = FieldMapping.from_options(
        maps=["category=cat"], category_map=mapping.category_map, allow_unmapped=True
    )
    out = results(data, lenient, policy)
    assert all(isinstance(r, Accepted) for r in out)
    assert out[3].item.categories == []  # type: ignore[union-attr]


def test_policy_requirements_fail_before_reading(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "x.csv"
    path.write_text("prompt\nhi\n", encoding="utf-8")
    with pytest.raises(PolicylabError, match="needs a policy"):
        results(path, FieldMapping(expected_from_policy=True))
    cmap_path = tmp_path / "map.yaml"
    cmap_path.write_text("a: VIO\n", encoding="utf-8")
    with pytest.raises(PolicylabError, match="'a' maps to 'VIO'"):
        results(path, FieldMapping(category_map=load_category_map(cmap_path)), policy)
    cmap_path.write_text("a: CYB\n", encoding="utf-8")
    with pytest.raises(PolicylabError, match="needs a category column"):
        results(path, FieldMapping(category_map=load_category_map(cmap_path)), policy)


def test_constants_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps(
            {
                "prompt": "hi",
                "tags": "a, b",
                "metadata": {"origin": "forum"},
                "score": 0.5,
                "blank": "",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    mapping = FieldMapping.from_options(
        constants=["source=harmbench", "split=test", "categories=CYB,ADV"]
    )
    (result,) = results(path, mapping)
    assert isinstance(result, Accepted)
    item = result.item
    assert (item.source, item.split, item.tags) == ("harmbench", "test", ["a", "b"])
    assert item.categories == ["CYB", "ADV"]
    assert item.metadata == {"origin": "forum", "score": 0.5}


def test_report_groups_rejections_and_quarantine_writes_lines(tmp_path: Path) -> None:
    report = ImportReport(source="f.csv", set_name="s")
    for row in (3, 1, 7):
        report.reject(Rejected(row, "missing prompt", f"row {row} empty", {}))
    report.reject(Rejected(9, "unreadable row", "bad", "x"))
    groups = report.rejections_by_kind(max_rows=2)
    assert [(g.kind, g.count, g.rows, g.example) for g in groups] == [
        ("missing prompt", 3, [3, 1], "row 3 empty"),
        ("unreadable row", 1, [9], "bad"),
    ]
    assert report.rejected == 4
    assert report.accepted == 0

    now = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    path = quarantine_path(tmp_path, "my set/v1", now=now)
    assert path == tmp_path / "quarantine" / "my_set_v1-20250304T050607Z.jsonl"
    with Quarantine(path, source="f.csv") as q:
        q.write(4, "missing prompt", "column 'prompt' is empty", {"prompt": "", "n": 1})
    with Quarantine(quarantine_path(tmp_path, "my set/v1", now=now), source="f.csv") as q2:
        assert q2.path.name == "my_set_v1-20250304T050607Z-2.jsonl"
        assert q2.written == 0
    assert not q2.path.exists()  # nothing rejected, no file
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {
            "source": "f.csv",
            "row": 4,
            "kind": "missing prompt",
            "reason": "column 'prompt' is empty",
            "raw": {"prompt": "", "n": 1},
        }
    ]
