"""Reports of the hand-computed case (tests/results/synthetic.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policylab.policy.schema import Policy
from policylab.report.build import RunInput
from policylab.results import GraderValidity, outcomes
from policylab.store.results import load_run
from policylab.store.workspace import Workspace


@pytest.fixture
def case_ws(tmp_path: Path, synthetic: Any) -> Iterator[tuple[Workspace, Policy]]:
    ws = Workspace.init(tmp_path / ".policylab")
    policy, _ = synthetic.build_case(ws)
    yield ws, policy
    ws.close()


@pytest.fixture
def inputs(case_ws: tuple[Workspace, Policy]) -> tuple[list[RunInput], Policy]:
    ws, policy = case_ws
    with ws.session() as session:
        a, _ = load_run(session, "run-a", with_text=True)
        b, _ = load_run(session, "run-b", with_text=True)
    unknown = GraderValidity(grader_id="rules", grader_version="1.0")
    return [
        RunInput(outcomes(a, policy, grader="rules"), unknown),
        RunInput(outcomes(b, policy), unknown),
    ], policy
