"""The dispatch journal: which requests were sent and not yet durably answered.

Just before a request for an item first goes out, `+<item id>` is appended to a small file beside
the workspace; after the writer commits responses, `-<item id>` lines follow. Each line is one
`write` system call on an unbuffered, append-only file descriptor (a few microseconds), so it
reaches the operating system before the request reaches the network and survives the process being
killed (`kill -9`), though not a power cut (neither do the last database commits in SQLite's WAL
mode).

After a crash, the items with a `+` and no response in the database are exactly those that were in
flight, or answered but not yet committed: the server may have seen them. The runner reports them
and either asks again or records them as failed (`in_doubt`), as the user chooses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def read_open(path: Path) -> set[int]:
    """Item ids sent and never marked done in the journal at `path` (empty if there is none)."""
    open_ids: set[int] = set()
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return open_ids
    with fh:
        for line in fh:
            sign, digits = line[:1], line[1:].strip()
            if not digits.isdigit():
                continue  # a line torn by the crash: its request was never sent
            if sign == b"+":
                open_ids.add(int(digits))
            elif sign == b"-":
                open_ids.discard(int(digits))
    return open_ids


class DispatchJournal:
    """An append-only record of dispatched and completed items for one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def sent(self, item_id: int) -> None:
        os.write(self._fd, b"+%d\n" % item_id)

    def done(self, item_ids: Iterable[int]) -> None:
        data = b"".join(b"-%d\n" % i for i in item_ids)
        if data:
            os.write(self._fd, data)

    def close(self, *, remove: bool = False) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if remove:
            self.path.unlink(missing_ok=True)
