from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from policylab.data.readers import UnreadableRow
from policylab.monitor.grading import NO_RESPONSE, GradeSpec, iter_graded
from policylab.monitor.ingest import LogParser, Rejection, hash_id, parse_timestamp
from policylab.store import monitor as store
from policylab.store.workspace import Workspace

SALT = b"s" * 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T12:00:00Z", dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
        ("2025-03-01T14:00:00+02:00", dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
        ("2025-03-01 12:00:00", dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
        (1740830400, dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
        (1740830400000, dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
    ],
)
def test_timestamps(value: object, expected: dt.datetime) -> None:
    assert parse_timestamp(value) == expected


def test_parser_redacts_hashes_and_rejects_with_reasons() -> None:
    parser = LogParser(salt=SALT)
    row = {
        "timestamp": "2025-03-01T12:00:00Z",
        "user_id": "u-1",
        "session_id": "s-1",
        "messages": [
            {"role": "user", "content": "Email me at a.b@example.org"},
            {"role": "assistant", "content": "Done."},
        ],
        "metadata": {"note": "from 10.1.2.3"},
        "region": "eu",
    }
    c = parser.parse(1, row)
    assert not isinstance(c, Rejection)
    assert c.messages[0]["content"] == "Email me at [EMAIL]"
    assert c.user_hash == hash_id("u-1", SALT) != hash_id("u-1", b"t" * 32)
    assert c.session_hash is not None
    assert "s-1" not in c.session_hash
    assert c.extra == {"note": "from [IP]", "region": "eu"}
    assert c.has_response
    assert parser.redactor.counts == {"email": 1, "ip": 1}
    # No id: derived from time and content, so the same row always gets the same id.
    assert c.external_id == parser.parse(2, row).external_id  # type: ignore[union-attr]
    bad = [
        ({"messages": [{"role": "user", "content": "x"}]}, "missing `timestamp`"),
        ({"timestamp": "yesterday", "messages": [{"role": "user", "content": "x"}]}, "`timestamp`"),
        ({"timestamp": 1, "messages": []}, "non-empty list"),
        ({"timestamp": 1, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"timestamp": 1, "messages": "[not json"}, "not JSON"),
    ]
    for n, (raw, reason) in enumerate(bad):
        rejected = parser.parse(n, raw)
        assert isinstance(rejected, Rejection), rejected
        assert reason in rejected.reason
    unreadable = parser.parse(9, UnreadableRow("not valid JSON", "{"))
    assert isinstance(unreadable, Rejection)
    assert unreadable.row == 9


def test_parquet_logs_with_struct_messages(tmp_path: Path, workspace: Workspace) -> None:
    table = pa.Table.from_pylist(
        [
            {
                "id": f"p{i}",
                "timestamp": dt.datetime(2025, 3, 1, i, tzinfo=dt.UTC),
                "messages": [
                    {"role": "user", "content": f"call 555-0{100 + i}", "name": None},
                    {"role": "assistant", "content": "ok", "name": None},
                ],
            }
            for i in range(5)
        ]
    )
    path = tmp_path / "logs.parquet"
    pq.write_table(table, path)
    report = store.ingest_file(workspace, path, source="pq")
    assert (report.rows_read, report.stored, report.rejected) == (5, 5, 0)
    assert report.redactions == {"phone": 5}
    with workspace.session() as session:
        frame = store.conversations_frame(session, grading_id=None, source="pq")
        texts = store.conversation_texts(session, list(frame["conversation_id"]))
    assert len(frame) == 5
    assert all(m[0] == {"role": "user", "content": "call [PHONE]"} for m in texts.values())


def _conversations(path: Path, n: int) -> None:
    rows = []
    for i in range(n):
        messages: list[dict[str, str]] = [{"role": "user", "content": f"question {i}"}]
        if i % 7 != 0:
            answer = "I'm sorry, but I can't help with that." if i % 3 == 0 else "Sure, here it is."
            messages.append({"role": "assistant", "content": answer})
        rows.append({"conversation_id": i, "messages": orjson.dumps(messages).decode()})
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_local_engine_grades_every_row_in_order(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    _conversations(path, 300)
    spec = GradeSpec(grader="rules", categorise=False)
    table = pa.concat_tables(iter_graded(path, spec, engine="local", batch_size=64))
    assert table.column("conversation_id").to_pylist() == list(range(300))
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        if i % 7 == 0:
            assert row["behavior"] is None
            assert row["error"] == NO_RESPONSE
        else:
            assert row["behavior"] == ("refuse" if i % 3 == 0 else "comply")
            assert row["error"] is None


@pytest.mark.slow
def test_ray_engine_gives_the_same_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    _conversations(path, 500)
    spec = GradeSpec(grader="rules", categorise=False)
    local = pa.concat_tables(iter_graded(path, spec, engine="local")).to_pylist()
    ray_rows = pa.concat_tables(
        iter_graded(path, spec, engine="ray", batch_size=100, num_cpus=2)
    ).to_pylist()
    assert sorted(ray_rows, key=lambda r: r["conversation_id"]) == local
