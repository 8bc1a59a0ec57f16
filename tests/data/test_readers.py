from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from policylab.data.readers import (
    UnreadableRow,
    count_rows,
    detect_format,
    read_csv,
    read_hf,
    read_jsonl,
    read_parquet,
    read_rows,
)
from policylab.errors import PolicylabError


def test_jsonl_row_numbers_are_line_numbers_and_bad_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(
        b'{"prompt": "one"}\n'
        b"\n"
        b'{"prompt": "three"}\r\n'
        b"{not json}\n"
        b"[1, 2]\n"
        b'{"prompt": "caf\xc3\xa9"}'  # no final newline
    )
    rows = list(read_jsonl(path))
    assert [n for n, _ in rows] == [1, 3, 4, 5, 6]
    assert rows[0][1] == {"prompt": "one"}
    assert rows[1][1] == {"prompt": "three"}
    bad = rows[2][1]
    assert isinstance(bad, UnreadableRow)
    assert "not valid JSON" in bad.reason
    assert bad.raw == "{not json}"
    array = rows[3][1]
    assert isinstance(array, UnreadableRow)
    assert array.reason == "expected a JSON object, found list"
    assert rows[4][1] == {"prompt": "café"}


def test_csv_values_may_span_lines_with_crlf_inside(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    # A BOM, CRLF record ends, and a quoted value with CRLF and LF line breaks inside.
    path.write_bytes(
        '\ufeffid,prompt\r\n1,plain\r\n2,"code:\r\nline 2\nline 3"\r\n\r\n3,last\r\n'.encode()
    )
    rows = list(read_csv(path))
    assert rows == [
        (1, {"id": "1", "prompt": "plain"}),
        (2, {"id": "2", "prompt": "code:\r\nline 2\nline 3"}),
        (3, {"id": "3", "prompt": "last"}),
    ]


def test_csv_rows_with_the_wrong_number_of_fields_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('id,prompt,category\n1,a,X\n2,"b\nb",X,extra\n3\n4,d,X\n', encoding="utf-8")
    rows = list(read_csv(path))
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    long = rows[1][1]
    assert isinstance(long, UnreadableRow)
    assert long.reason == "line 3: 4 fields, but the header has 3"
    assert long.raw == {"id": "2", "prompt": "b\nb", "category": "X", "_extra": ["extra"]}
    short = rows[2][1]
    assert isinstance(short, UnreadableRow)
    assert short.reason == "line 5: 1 fields, but the header has 3"
    assert rows[3][1] == {"id": "4", "prompt": "d", "category": "X"}


def test_csv_fields_beyond_the_default_limit_are_read(tmp_path: Path) -> None:
    big = "x" * 300_000  # the csv module's default limit is 131,072
    path = tmp_path / "big.csv"
    path.write_text(f"prompt\n{big}\n", encoding="utf-8")
    assert list(read_csv(path)) == [(1, {"prompt": big})]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty file"), ("a,,b\n1,2,3\n", "distinct, non-empty"), ("a,a\n1,2\n", "distinct")],
)
def test_csv_headers_must_name_every_column(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicylabError, match=message):
        list(read_csv(path))


def test_csv_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("prompt\nok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicylabError) as err:
        list(read_csv(path))
    assert err.value.render() == (
        f"{path}:3: not UTF-8: byte 0xe9 at column 4\n  hint: save the file as UTF-8"
    )


def test_parquet_is_read_batch_by_batch_in_order(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    table = pa.table(
        {
            "id": [f"i{i}" for i in range(2500)],
            "prompt": [f"prompt {i}" for i in range(2500)],
            "tags": [["a", "b"] if i % 2 else [] for i in range(2500)],
        }
    )
    pq.write_table(table, path, row_group_size=700)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    rows = list(read_parquet(path, batch_size=300))
    assert [n for n, _ in rows] == list(range(1, 2501))
    assert rows[0][1] == {"id": "i0", "prompt": "prompt 0", "tags": []}
    assert rows[2499][1] == {"id": "i2499", "prompt": "prompt 2499", "tags": ["a", "b"]}
    assert count_rows(path) == 2500


def test_reading_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n', encoding="utf-8")
    rows = read_rows(path)
    assert next(rows) == (1, {"prompt": "a"})  # a generator: nothing read ahead


def test_hf_dataset_saved_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"prompt": [f"p{i}" for i in range(2100)]}).save_to_disk(single)
    rows = list(read_hf(single, batch_size=1000))
    assert len(rows) == 2100
    assert rows[-1] == (2100, {"prompt": "p2099"})
    assert detect_format(single) == "hf"
    assert count_rows(single) == 2100

    splits = tmp_path / "splits"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"prompt": ["a", "b"]}),
            "test": datasets.Dataset.from_dict({"prompt": ["c"]}),
        }
    ).save_to_disk(splits)
    assert list(read_rows(splits, hf_split="test")) == [(1, {"prompt": "c"})]
    with pytest.raises(PolicylabError, match="splits train, test") as err:
        list(read_rows(splits))
    assert "--hf-split" in err.value.render()
    with pytest.raises(PolicylabError, match="no split 'dev'"):
        list(read_rows(splits, hf_split="dev"))
    with pytest.raises(PolicylabError, match="drop --hf-split"):
        list(read_rows(single, hf_split="train"))


def test_missing_datasets_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    folder = tmp_path / "ds"
    folder.mkdir()
    with pytest.raises(PolicylabError) as err:
        list(read_rows(folder))
    assert "pip install policylab[hf]" in err.value.render()


def test_a_folder_that_is_no_dataset(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    with pytest.raises(PolicylabError, match="save_to_disk"):
        list(read_rows(tmp_path))


def test_formats_come_from_the_name_or_the_option(tmp_path: Path) -> None:
    assert detect_format(Path("a.JSONL")) == "jsonl"
    assert detect_format(Path("a.csv")) == "csv"
    assert detect_format(Path("a.parquet")) == "parquet"
    with pytest.raises(PolicylabError, match="cannot tell the format"):
        detect_format(Path("a.txt"))
    odd = tmp_path / "items.txt"
    odd.write_text("prompt\nhello\n", encoding="utf-8")
    assert list(read_rows(odd, format="csv")) == [(1, {"prompt": "hello"})]
    with pytest.raises(PolicylabError, match="no such file"):
        read_rows(tmp_path / "missing.csv")
    with pytest.raises(PolicylabError, match="unknown format"):
        read_rows(odd, format="xml")
