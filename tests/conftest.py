"""Fixtures shared by every test: the real data sets beside the project, and workspaces on each backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policylab.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("POLICYLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def shared_data_dir() -> Path:
    return Path(os.environ.get("POLICYLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The third-party data sets in ../shared/data (never copied into the repository)."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"real data sets not found at {path}: set POLICYLAB_SHARED_DATA to the shared/data folder"
        )
    return path


@pytest.fixture(scope="session")
def example_pack() -> Path:
    path = REPO / "examples" / "policies" / "acme" / "policy.yaml"
    if not path.exists():
        pytest.fail(f"the example policy pack is missing at {path}")
    return path


def _pg_database() -> Iterator[str]:
    import psycopg

    name = f"policylab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server at 127.0.0.1:5432, dropped afterwards."""
    yield from _pg_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace, on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        ws = Workspace.init(tmp_path / ".policylab")
        yield ws
        ws.close()
        return
    for url in _pg_database():
        ws = Workspace.init(tmp_path / ".policylab", db_url=url)
        try:
            yield ws
        finally:
            ws.close()


def _load_mock_server() -> Any:
    import importlib.util
    import sys

    name = "policylab_bench_mock_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "mock_server.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def mock_openai() -> Iterator[Any]:
    """bench/mock_server.py on 127.0.0.1 (a free port) in a background thread, 10 ms per answer.

    `.base_url` is its /v1 URL; `.state.seen` counts requests per prompt; prompts script faults
    (`[[fault:500]]`, see the module).
    """
    server = _load_mock_server().ServerThread().start()
    try:
        yield server
    finally:
        server.stop()


def add_eval_set(ws: Workspace, name: str, conversations: list[Any]) -> list[int]:
    """Insert an eval set whose items are `conversations` (a prompt string, or a list of messages,
    stored as given, even if malformed), with external ids `i0`, `i1`, ...; returns the item ids."""
    import hashlib

    from sqlalchemy import insert, select

    from policylab.store.models import EvalSet, Item

    with ws.session() as session:
        eval_set = EvalSet(name=name)
        session.add(eval_set)
        session.flush()
        rows = [
            {
                "eval_set_id": eval_set.id,
                "external_id": f"i{n}",
                "messages": [{"role": "user", "content": c}] if isinstance(c, str) else c,
                "content_hash": hashlib.sha256(f"{name}/{n}".encode()).hexdigest(),
            }
            for n, c in enumerate(conversations)
        ]
        session.execute(insert(Item), rows)
        query = select(Item.id).where(Item.eval_set_id == eval_set.id).order_by(Item.id)
        return list(session.scalars(query))


@pytest.fixture
def make_eval_set() -> Any:
    """`add_eval_set(ws, name, conversations)` as a fixture, for tests that insert items directly."""
    return add_eval_set


@pytest.fixture(scope="session")
def synthetic() -> Any:
    """tests/results/synthetic.py: small synthetic runs with hand-computed numbers (results,
    report, CLI and dashboard tests)."""
    import importlib.util
    import sys

    name = "policylab_tests_synthetic"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests/results/synthetic.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
