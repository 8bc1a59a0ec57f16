from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# factory.py (in tests/campaigns) builds the campaigns these tests label.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import Server


@pytest.fixture
def server_factory() -> Iterator[type[Server]]:
    started: list[Server] = []

    class Tracked(Server):
        def start(self) -> Server:
            started.append(self)
            return super().start()

    yield Tracked
    for s in started:
        s.stop()
