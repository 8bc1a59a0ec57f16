"""The hand-computed case of tests/results/synthetic.py, built once per test on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policylab.policy.schema import Policy
from policylab.results import Outcomes, outcomes
from policylab.store.results import load_run
from policylab.store.workspace import Workspace


@pytest.fixture
def case_ws(tmp_path: Path, synthetic: Any) -> Iterator[tuple[Workspace, Policy]]:
    ws = Workspace.init(tmp_path / ".policylab")
    policy, _ = synthetic.build_case(ws)
    yield ws, policy
    ws.close()


@pytest.fixture
def case(case_ws: tuple[Workspace, Policy]) -> tuple[Outcomes, Outcomes, Policy]:
    """Runs A and B of the case scored by the `rules` grader."""
    ws, policy = case_ws
    with ws.session() as session:
        a, _ = load_run(session, "run-a", with_text=True)
        b, _ = load_run(session, "run-b")
    return outcomes(a, policy, grader="rules"), outcomes(b, policy), policy
