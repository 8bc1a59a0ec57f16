"""Scoring a stored run: grader choice, latest verdicts, errors, disagreement; on both backends."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import delete, insert

from policylab.errors import PolicylabError
from policylab.results import choose_grader, graders_in, outcomes
from policylab.store.models import VerdictRecord
from policylab.store.results import load_run
from policylab.store.workspace import Workspace


def test_load_and_score_on_both_backends(workspace: Workspace, synthetic: Any) -> None:
    policy, _ = synthetic.build_case(workspace)
    with workspace.session() as session:
        data, stored_policy = load_run(session, "run-a", with_text=True)
    assert stored_policy is not None
    assert stored_policy.content_hash == policy.content_hash
    assert data.info.model == "model-a"
    assert data.info.items_total == 31
    assert data.info.policy_version == "1.0.0"
    assert len(data.responses) == 31
    assert graders_in(data.verdicts) == {"rules": 30, "llm": 3}
    scored = outcomes(data, policy, grader="rules")
    frame = scored.frame.set_index("external_id")
    assert frame.loc["c2-07", "status"] == "grader_error"
    assert frame.loc["c2-07", "observed"] is None
    assert frame.loc["a1-12", "status"] == "model_error"
    assert frame.loc["a1-00", "expected"] == "comply"  # from the category ADV.1
    assert frame.loc["c2-00", "severity"] == "critical"
    assert frame.loc["c1-00", "rule_ids"] == ["CYB.1.a"]
    assert "Write ransomware" in frame.loc["c1-00", "messages"][0]["content"]
    # rules said comply, llm said refuse on c1-00; they agree on c1-03 and a1-05.
    assert bool(frame.loc["c1-00", "disagreement"])
    assert not bool(frame.loc["c1-03", "disagreement"])
    assert scored.other_graders == ("llm",)


def test_several_graders_need_a_choice(case_ws: Any) -> None:
    ws, policy = case_ws
    with ws.session() as session:
        data, _ = load_run(session, "run-a")
    with pytest.raises(PolicylabError, match="several graders") as info:
        outcomes(data, policy)
    assert "--grader" in (info.value.hint or "")
    with pytest.raises(PolicylabError, match="no verdicts from grader 'judge'"):
        choose_grader(data.verdicts, "judge", run_name="run-a")


def test_latest_verdict_wins_and_missing_verdict_is_an_error(case_ws: Any) -> None:
    ws, policy = case_ws
    with ws.session() as session:
        data, _ = load_run(session, "run-b")
        target = data.responses.set_index("external_id").loc["c1-05"]
        session.execute(
            insert(VerdictRecord),
            [
                {
                    "run_id": data.info.id,
                    "response_id": int(target["response_id"]),
                    "grader_id": "rules",
                    "grader_version": "1.1",
                    "behavior": "comply",
                    "rule_ids": [],
                    "extra": {},
                }
            ],
        )
        # A response whose verdict is gone: it has no verdict at all.
        lost = int(data.responses.set_index("external_id").loc["a1-12", "response_id"])
        session.execute(delete(VerdictRecord).where(VerdictRecord.response_id == lost))
        data, _ = load_run(session, "run-b")
    scored = outcomes(data, policy).frame.set_index("external_id")
    assert scored.loc["c1-05", "observed"] == "comply"
    assert scored.loc["c1-05", "grader_version"] == "1.1"
    assert scored.loc["a1-12", "status"] == "grader_error"
    assert scored.loc["a1-12", "grader_error"] == "not graded by rules"


def test_bad_frames_are_named() -> None:
    import pandas as pd

    from policylab.results import RunData, RunInfo

    info = RunInfo(id=1, name="r", model="m", eval_set="s", status="finished", items_total=0)
    with pytest.raises(PolicylabError, match="responses frame lacks"):
        outcomes(RunData(info, pd.DataFrame(), pd.DataFrame()), None)  # type: ignore[arg-type]


def test_validity_from_a_stored_validation(case_ws: Any) -> None:
    from policylab.stats.classification import grader_agreement
    from policylab.store.models import GraderValidation
    from policylab.store.results import load_validity

    ws, _ = case_ws
    with ws.session() as session:
        data, _ = load_run(session, "run-a")
        unknown = load_validity(session, data.info.id, "rules")
        assert not unknown.known
        assert unknown.grader_version == "1.0"
        gold = ["comply"] * 3 + ["partial"] * 2 + ["refuse"] * 5
        # Nothing predicted partial: its precision is undefined (NaN, stored as null).
        predicted = ["comply"] * 3 + ["refuse", None] + ["refuse"] * 5
        agreement = grader_agreement(gold, predicted)
        # Stored as `policylab validate` stores it: JSON, NaN as null.
        import orjson

        session.add(
            GraderValidation(
                grader_id="rules",
                grader_version="1.0",
                config_hash="x",
                config={},
                gold_name="gold.jsonl",
                gold_hash="y",
                n=10,
                metrics=orjson.loads(agreement.model_dump_json()),
            )
        )
        session.flush()
        known = load_validity(session, data.info.id, "rules")
        assert load_validity(session, data.info.id, "llm").grader_version == "1.0"
        assert not load_validity(session, data.info.id, "llm").known
    assert known.known
    assert known.gold == "gold.jsonl"
    assert known.agreement is not None
    assert known.agreement.accuracy.successes == 8
    partial = next(c for c in known.agreement.per_class if c.label == "partial")
    assert math.isnan(partial.precision)
    assert known.metric("cohen_kappa") == pytest.approx(agreement.cohen_kappa)
