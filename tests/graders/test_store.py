"""Verdicts of a stored run: saved in bulk with provenance, read back with items and responses,
regraded; human labels become training rows; validations are found by grader and version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy import select

from policylab.core import Behavior
from policylab.graders.base import Sample, SyncGrader, Verdict, config_hash
from policylab.graders.rules import RulesGrader
from policylab.store.models import EvalSet, Item, Response, Run, VerdictRecord
from policylab.store.verdicts import (
    delete_verdicts,
    get_run,
    latest_validation,
    regrade,
    run_samples,
    save_validation,
    verdicts_for_run,
    workspace_gold_rows,
)
from policylab.store.workspace import Workspace


def _seed_run(ws: Workspace) -> None:
    with ws.session() as s:
        es = EvalSet(name="set")
        s.add(es)
        s.flush()
        texts = ["I can't help with that.", "Sure, here you go.", None]
        for i in range(len(texts)):
            item = Item(
                eval_set_id=es.id,
                external_id=f"it-{i}",
                messages=[{"role": "user", "content": f"question {i}"}],
                categories=["CYB.1"] if i == 1 else [],
                expected_behavior="refuse" if i == 1 else None,
                content_hash=f"h{i}",
            )
            s.add(item)
        s.flush()
        run = Run(name="r1", eval_set_id=es.id, model="m")
        s.add(run)
        s.flush()
        for i, item in enumerate(s.scalars(select(Item).order_by(Item.id)).all()):
            s.add(
                Response(
                    run_id=run.id,
                    item_id=item.id,
                    text=texts[i],
                    error="timeout" if texts[i] is None else None,
                )
            )


def test_regrade_saves_and_reads_back(workspace: Workspace) -> None:
    _seed_run(workspace)
    grader = RulesGrader()
    with workspace.session() as s:
        run = get_run(s, "r1")
        samples, failed = run_samples(s, run)
        assert [rs.sample.id for rs in samples] == ["it-0", "it-1"]
        assert samples[1].sample.expected_behavior is Behavior.REFUSE
        assert samples[1].sample.category == "CYB.1"
        assert len(failed) == 1
        saved, not_graded = regrade(s, run, grader)
        assert (saved, not_graded) == (2, 1)
    with workspace.session() as s:
        stored = verdicts_for_run(s, get_run(s, "r1"))
        assert [(v.item_external_id, v.verdict.behavior, v.verdict.violation) for v in stored] == [
            ("it-0", "refuse", None),
            ("it-1", "comply", True),
        ]
        assert stored[1].response_text == "Sure, here you go."
        assert stored[0].verdict.extra["config_hash"] == config_hash(grader)
        assert stored[0].verdict.grader_version == "1"
    # Regrading replaces, never duplicates.
    with workspace.session() as s:
        regrade(s, get_run(s, "r1"), grader)
    with workspace.session() as s:
        assert len(verdicts_for_run(s, get_run(s, "r1"), grader_id="rules")) == 2
        assert delete_verdicts(s, get_run(s, "r1"), grader_id="rules") == 2
        assert verdicts_for_run(s, get_run(s, "r1")) == []


class _Failing(SyncGrader):
    id: ClassVar[str] = "failing"
    version: ClassVar[str] = "1"

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        return [
            Verdict(sample_id=x.id, error="down", grader_id="failing", grader_version="1")
            for x in samples
        ]


def test_error_verdicts_are_stored_without_behaviour(workspace: Workspace) -> None:
    _seed_run(workspace)
    with workspace.session() as s:
        regrade(s, get_run(s, "r1"), _Failing())
    with workspace.session() as s:
        rows = s.scalars(select(VerdictRecord)).all()
        assert [(r.behavior, r.violation, r.error) for r in rows] == [(None, None, "down")] * 2


def test_human_verdicts_become_training_rows(workspace: Workspace) -> None:
    _seed_run(workspace)
    with workspace.session() as s:
        run = get_run(s, "r1")
        first = s.scalars(
            select(Response).where(Response.run_id == run.id).order_by(Response.id)
        ).first()
        assert first is not None
        s.add(
            VerdictRecord(
                response_id=first.id,
                run_id=run.id,
                item_id=first.item_id,
                grader_id="human",
                grader_version="1",
                behavior="refuse",
            )
        )
    with workspace.session() as s:
        rows = workspace_gold_rows(s)
    assert [(r.response, r.behavior, r.source) for r in rows] == [
        ("I can't help with that.", Behavior.REFUSE, "gold:human")
    ]
    assert rows[0].request == "question 0"


def test_latest_validation(workspace: Workspace) -> None:
    grader = RulesGrader()
    with workspace.session() as s:
        assert latest_validation(s, "rules", "1") is None
        for acc in (0.5, 0.7):
            save_validation(
                s,
                grader=grader,
                policy_id=None,
                policy_hash=None,
                gold_name="g.jsonl",
                gold_hash="abc",
                n=10,
                metrics={"accuracy": {"rate": acc}},
            )
    with workspace.session() as s:
        found = latest_validation(s, "rules", "1", config_hash=config_hash(grader))
        assert found is not None
        assert found.metrics["accuracy"]["rate"] == 0.7
        assert latest_validation(s, "rules", "2") is None
        assert latest_validation(s, "rules", "1", config_hash="other") is None
