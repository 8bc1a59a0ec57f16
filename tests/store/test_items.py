from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from policylab.data.importer import (
    Accepted,
    ImportReport,
    ImportResult,
    Quarantine,
    Rejected,
    import_items,
)
from policylab.data.items import ItemRecord
from policylab.data.mapping import FieldMapping
from policylab.data.readers import read_rows
from policylab.errors import PolicylabError
from policylab.store.items import (
    count_items,
    delete_eval_set,
    export_items,
    get_eval_set,
    import_into_set,
    insert_items,
    iter_items,
    list_eval_sets,
)
from policylab.store.models import Item, Run
from policylab.store.workspace import Workspace

RICH = [
    {
        "id": "tool-1",
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        ],
        "categories": ["CYB", "ADV"],
        "expected_behavior": "comply",
        "source": "unit",
        "language": "en",
        "tags": ["tools"],
        "split": "test",
        "metadata": {"difficulty": 2, "nested": {"a": [1, None]}},
    },
    {
        "id": "img-1",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    },
    {
        "id": "transcript-1",
        "messages": [
            {"role": "user", "content": "Say hi"},
            {"role": "assistant", "content": "Hi!"},
        ],
        "tags": ["transcript"],
    },
]


def accepted(records: list[dict[str, Any]]) -> Iterator[ImportResult]:
    for n, data in enumerate(records, start=1):
        yield Accepted(n, ItemRecord.model_validate(data), data)


def prompts(*texts: str, prefix: str = "p") -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "messages": [{"role": "user", "content": t}]}
        for i, t in enumerate(texts)
    ]


def stored(ws: Workspace, set_name: str) -> dict[str, tuple[int, int | None]]:
    """external id -> (database id, duplicate_of)."""
    with ws.session() as s:
        set_id = get_eval_set(s, set_name).id
        rows = s.execute(
            select(Item.external_id, Item.id, Item.duplicate_of).where(Item.eval_set_id == set_id)
        )
        return {e: (i, d) for e, i, d in rows}


def test_items_round_trip_through_the_store(workspace: Workspace) -> None:
    report = import_into_set(workspace, "rich", accepted(RICH))
    assert (report.rows_read, report.inserted, report.rejected) == (3, 3, 0)
    assert report.by_category == {"CYB": 1, "ADV": 1, "(none)": 2}
    with workspace.session() as s:
        back = [record for _, record in iter_items(s, "rich")]
        assert count_items(s, "rich") == 3
    assert [r.model_dump(mode="json") for r in back] == [
        ItemRecord.model_validate(d).model_dump(mode="json") for d in RICH
    ]


def test_iteration_pages_by_id(workspace: Workspace) -> None:
    texts = [f"prompt number {i}" for i in range(7)]
    import_into_set(workspace, "seven", accepted(prompts(*texts)), near_threshold=None)
    with workspace.session() as s:
        pages = list(iter_items(s, "seven", batch=2))
    ids = [db_id for db_id, _ in pages]
    assert ids == sorted(ids)
    assert [r.prompt for _, r in pages] == texts


def test_duplicates_within_and_across_batches(workspace: Workspace) -> None:
    texts = [
        "How do I reset my router password?",  # p0
        "How do I reset my router password?",  # p1 exact of p0, same batch
        "Explain photosynthesis to a child.",  # p2
        "How do I reset my router password??",  # p3 near of p0 (punctuation only), next batch
        "Explain photosynthesis to a child.",  # p4 exact of p2, next batch
        "What is the capital of Peru?",  # p5
        "What is the capital of Peru?",  # p6 exact of p5, same batch (3rd)
    ]
    report = import_into_set(workspace, "dups", accepted(prompts(*texts)), batch_size=3)
    assert (report.inserted, report.exact_duplicates, report.near_duplicates) == (7, 3, 1)
    rows = stored(workspace, "dups")
    assert rows["p0"][1] is None
    assert rows["p1"][1] == rows["p0"][0]
    assert rows["p3"][1] == rows["p0"][0]
    assert rows["p4"][1] == rows["p2"][0]
    assert rows["p6"][1] == rows["p5"][0]
    assert rows["p5"][1] is None
    with workspace.session() as s:
        (summary,) = list_eval_sets(s)
    assert (summary.name, summary.items, summary.duplicates) == ("dups", 7, 4)


def test_duplicates_across_sets_and_dropping_them(workspace: Workspace, tmp_path: Path) -> None:
    import_into_set(workspace, "first", accepted(prompts("alpha beta gamma delta", "unique one")))
    first = stored(workspace, "first")
    second = prompts("alpha beta gamma delta", "alpha beta gamma delta!", "brand new", prefix="q")
    report = import_into_set(workspace, "second", accepted(second))
    assert (report.exact_duplicates, report.near_duplicates) == (1, 1)
    rows = stored(workspace, "second")
    assert rows["q0"][1] == first["p0"][0]
    assert rows["q1"][1] == first["p0"][0]

    q = Quarantine(tmp_path / "q.jsonl", source="third.jsonl")
    third = prompts("alpha beta gamma delta", "Alpha beta gamma delta?", "never seen", prefix="t")
    report = import_into_set(
        workspace, "third", accepted(third), drop_duplicates=True, quarantine=q
    )
    q.close()
    assert (report.inserted, report.dropped_duplicates, report.rejected) == (1, 2, 0)
    assert set(stored(workspace, "third")) == {"t2"}
    lines = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(x["row"], x["kind"]) for x in lines] == [
        (1, "dropped duplicate"),
        (2, "dropped duplicate"),
    ]
    assert lines[0]["reason"] == "dropped as an exact duplicate of first/p0"
    assert lines[1]["reason"] == "dropped as a near (1.00) duplicate of first/p0"
    assert report.quarantine == tmp_path / "q.jsonl"


def test_reimport_is_idempotent_and_updates_labels_only(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,prompt,category\na,first prompt,X\nb,second prompt,Y\n", encoding="utf-8")
    mapping = FieldMapping.from_options(maps=["category=category"])

    def run(**kwargs: Any) -> ImportReport:
        return import_into_set(workspace, "set", import_items(read_rows(path), mapping), **kwargs)

    first = run()
    ids = stored(workspace, "set")
    again = run()
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert again.exact_duplicates == 0  # an item is no duplicate of itself
    assert stored(workspace, "set") == ids
    assert first.inserted == 2

    path.write_text(
        "id,prompt,category\na,first prompt,Z\nb,second prompt CHANGED,Y\nc,third,X\n",
        encoding="utf-8",
    )
    q = Quarantine(tmp_path / "q.jsonl", source=str(path))
    third = run(quarantine=q)
    q.close()
    assert (third.inserted, third.updated, third.unchanged, third.rejected) == (1, 1, 0, 1)
    (rejection,) = third.rejections
    assert (rejection.row, rejection.kind) == (2, "changed conversation")
    assert "already in set 'set' with a different conversation" in rejection.reason
    after = stored(workspace, "set")
    assert after["a"] == ids["a"]
    with workspace.session() as s:
        records = {r.id: r for _, r in iter_items(s, "set")}
    assert records["a"].categories == ["Z"]
    assert records["b"].prompt == "second prompt"  # the stored conversation is kept


def test_export_and_reimport_every_format(workspace: Workspace, tmp_path: Path) -> None:
    import_into_set(workspace, "rich", accepted(RICH))
    with workspace.session() as s:
        original = [r.model_dump(mode="json") for _, r in iter_items(s, "rich")]
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"rich.{fmt}"
        with workspace.session() as s:
            assert export_items(s, "rich", out) == 3
        results = list(import_items(read_rows(out), FieldMapping()))
        assert all(isinstance(r, Accepted) for r in results), results
        report = import_into_set(workspace, f"back-{fmt}", results)
        assert report.exact_duplicates == 3  # the same conversations as set `rich`
        with workspace.session() as s:
            back = [r.model_dump(mode="json") for _, r in iter_items(s, f"back-{fmt}")]
        assert back == original, fmt


def test_delete_a_set(workspace: Workspace) -> None:
    import_into_set(workspace, "a", accepted(prompts("shared prompt text here", "only in a")))
    import_into_set(workspace, "b", accepted(prompts("shared prompt text here", prefix="b")))
    assert stored(workspace, "b")["b0"][1] is not None
    with workspace.session() as s:
        assert delete_eval_set(s, "a") == 2
    with workspace.session() as s:
        assert [x.name for x in list_eval_sets(s)] == ["b"]
        with pytest.raises(PolicylabError, match="no eval set 'a'") as err:
            get_eval_set(s, "a")
        assert "sets: b" in err.value.render()
    assert stored(workspace, "b")["b0"][1] is None  # the pointer went with its target

    with workspace.session() as s:
        s.add(Run(name="r1", eval_set_id=get_eval_set(s, "b").id, model="m"))
    with workspace.session() as s, pytest.raises(PolicylabError, match="has 1 run"):
        delete_eval_set(s, "b")


def test_imports_batch_their_statements(workspace: Workspace) -> None:
    texts = [f"distinct prompt {i} about topic {i * 7919 % 1000}" for i in range(2500)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(workspace.engine, "before_cursor_execute", count)
    try:
        report = import_into_set(workspace, "big", accepted(prompts(*texts)), batch_size=1000)
    finally:
        event.remove(workspace.engine, "before_cursor_execute", count)
    assert report.inserted == 2500
    # 3 batches of a few statements each (PostgreSQL pages 1,000 rows an INSERT), never per row.
    assert statements.count("INSERT") <= 3 * 2 + 1
    assert len(statements) < 30


def test_insert_items_returns_ids_in_order(workspace: Workspace) -> None:
    records = [ItemRecord.from_prompt(f"q{i}", id=f"z{9 - i}") for i in range(10)]
    with workspace.session() as s:
        es = get_eval_set_or_create(s)
        ids = insert_items(s, es, records)
        rows = dict(s.execute(select(Item.id, Item.external_id).where(Item.id.in_(ids))).all())
    assert [rows[i] for i in ids] == [r.id for r in records]


def get_eval_set_or_create(session: Any) -> int:
    from policylab.store.items import get_or_create_eval_set

    es, created = get_or_create_eval_set(session, "direct")
    assert created
    return es.id


def test_rejections_are_counted_and_quarantined(workspace: Workspace, tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "q.jsonl", source="x.csv")
    results: list[ImportResult] = [
        Rejected(1, "missing prompt", "column 'prompt' is empty", {"prompt": ""}),
        *accepted(prompts("fine")),
    ]
    report = import_into_set(workspace, "mixed", results, quarantine=q)
    q.close()
    assert (report.rows_read, report.accepted, report.rejected) == (2, 1, 1)
    assert json.loads((tmp_path / "q.jsonl").read_text())["raw"] == {"prompt": ""}
