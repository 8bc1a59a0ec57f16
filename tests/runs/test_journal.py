"""The dispatch journal."""

from __future__ import annotations

from pathlib import Path

from policylab.runs.journal import DispatchJournal, read_open


def test_open_items_are_sent_and_not_done(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    assert read_open(path) == set()
    journal = DispatchJournal(path)
    for item in (1, 2, 3, 4):
        journal.sent(item)
    journal.done([2, 4])
    journal.sent(5)
    journal.close()
    assert read_open(path) == {1, 3, 5}


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    path.write_bytes(b"+1\n+2\n-1\n+")
    assert read_open(path) == {2}


def test_opening_starts_a_fresh_journal_and_close_can_remove_it(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    path.write_bytes(b"+9\n")
    journal = DispatchJournal(path)
    journal.sent(1)
    assert read_open(path) == {1}
    journal.close(remove=True)
    assert not path.exists()
