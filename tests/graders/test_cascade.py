"""The cascade: escalation by confidence, the cost report, and choosing the threshold on gold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from policylab.chat import user
from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.graders.base import Sample, SyncGrader, Verdict
from policylab.graders.cascade import CascadeGrader, CascadeReport, fit_threshold

C, P, R = Behavior.COMPLY, Behavior.PARTIAL, Behavior.REFUSE


class Scripted(SyncGrader):
    """Answers from a table: sample id -> (behaviour or None for an error, confidence)."""

    id: ClassVar[str] = "scripted"
    version: ClassVar[str] = "1"

    def __init__(self, table: dict[str, tuple[Behavior | None, float | None]]) -> None:
        self.table = table
        self.seen: list[str] = []

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        out = []
        for s in samples:
            self.seen.append(s.id)
            behavior, confidence = self.table[s.id]
            if behavior is None:
                out.append(
                    Verdict(sample_id=s.id, error="boom", grader_id=self.id, grader_version="1")
                )
            else:
                out.append(
                    Verdict(
                        sample_id=s.id,
                        behavior=behavior,
                        confidence=confidence,
                        grader_id=self.id,
                        grader_version="1",
                    )
                )
        return out


def _samples(ids: str) -> list[Sample]:
    return [Sample(id=i, messages=[user("q")], response="r") for i in ids]


def test_uncertain_and_failed_verdicts_go_to_the_next_stage() -> None:
    first = Scripted(
        {"a": (C, 0.95), "b": (R, 0.6), "c": (None, None), "d": (P, None), "e": (R, 0.9)}
    )
    second = Scripted(dict.fromkeys("abcde", (P, 0.99)))
    cascade = CascadeGrader([first, second], [0.9])
    verdicts = cascade.grade(_samples("abcde"))
    assert [v.behavior for v in verdicts] == [C, P, P, P, R]
    assert second.seen == ["b", "c", "d"]
    assert [v.extra["cascade_stage"] for v in verdicts] == [0, 1, 1, 1, 0]
    assert verdicts[1].extra["cascade_trail"] == [
        {"stage": 0, "grader": "scripted", "behavior": "refuse", "confidence": 0.6, "error": None}
    ]
    report = cascade.last_report
    assert report is not None
    assert report.graded == [5, 3]
    assert report.decided == [2, 3]
    assert report.escalated_share == pytest.approx(0.6)


def test_three_stages_and_an_empty_tail() -> None:
    s1 = Scripted({"a": (C, 0.99)})
    s2 = Scripted({})
    s3 = Scripted({})
    cascade = CascadeGrader([s1, s2, s3], [0.5, 0.5])
    assert [v.behavior for v in cascade.grade(_samples("a"))] == [C]
    assert cascade.last_report is not None
    assert cascade.last_report.graded == [1, 0, 0]


def test_cascade_checks_its_arguments() -> None:
    with pytest.raises(PolicylabError, match="at least two"):
        CascadeGrader([Scripted({})], [])
    with pytest.raises(PolicylabError, match="needs 1 threshold"):
        CascadeGrader([Scripted({}), Scripted({})], [0.5, 0.5])
    with pytest.raises(PolicylabError, match="in \\[0, 1\\]"):
        CascadeGrader([Scripted({}), Scripted({})], [1.5])


def _v(behavior: Behavior | None, confidence: float | None = None) -> Verdict:
    if behavior is None:
        return Verdict(sample_id="x", error="e", grader_id="g", grader_version="1")
    return Verdict(
        sample_id="x", behavior=behavior, confidence=confidence, grader_id="g", grader_version="1"
    )


def test_fit_threshold_by_hand() -> None:
    # Stage one is right when confident (0.9, 0.8) and wrong below (0.6, 0.5); stage two is always
    # right except on the last item.
    gold = [C, R, C, R]
    first = [_v(C, 0.9), _v(R, 0.8), _v(R, 0.6), _v(C, 0.5)]
    second = [_v(C), _v(R), _v(C), _v(C)]
    fit = fit_threshold(gold, first, second, target_agreement=0.75)
    # A verdict at the threshold stands. t in {0, 0.5, 0.6}: items 1-3 (or all) stay, 2/4.
    # t=0.8: items 3, 4 escalate: 1 + 1 + 1 + 0 = 3/4 at 50%; t=0.9: 3/4 at 75%.
    assert fit.reached
    assert fit.threshold == pytest.approx(0.8)
    assert fit.agreement == pytest.approx(0.75)
    assert fit.escalated_share == pytest.approx(0.5)
    assert [(c[0], c[1], c[2]) for c in fit.curve] == [
        (0.0, 0.5, 0.0),
        (0.5, 0.5, 0.0),
        (0.6, 0.5, 0.25),
        (0.8, 0.75, 0.5),
        (0.9, 0.75, 0.75),
    ]


def test_fit_threshold_unreachable_target_maximises_agreement() -> None:
    gold = [C, R]
    fit = fit_threshold(gold, [_v(C, 0.9), _v(None)], [_v(R), _v(C)], target_agreement=0.99)
    assert not fit.reached
    assert fit.agreement == pytest.approx(0.5)


def test_fit_threshold_checks_lengths() -> None:
    with pytest.raises(PolicylabError, match="differ in length"):
        fit_threshold([C], [], [], target_agreement=0.9)


def test_reports_of_batches_add_up() -> None:
    a = CascadeReport(stages=["local", "llm"], n=256, graded=[256, 30], decided=[226, 30])
    b = CascadeReport(stages=["local", "llm"], n=44, graded=[44, 6], decided=[38, 6])
    total = a + b
    assert (total.n, total.graded, total.decided) == (300, [300, 36], [264, 36])
    assert total.escalated_share == pytest.approx(36 / 300)
    with pytest.raises(ValueError, match="cascades differ"):
        a + CascadeReport(stages=["rules", "llm"], n=1, graded=[1, 0], decided=[1, 0])
