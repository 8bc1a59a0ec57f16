"""A cascade: a cheap grader first, the uncertain share escalated to the next.

A verdict of stage i stands when its confidence is at least `thresholds[i]`; otherwise (or when it
has an error or no confidence at all) the sample goes to stage i + 1. The last stage decides the
rest. Each verdict records the stage that decided it; `last_report` counts the calls per stage and
the share escalated, so the cost is visible.

`fit_threshold` picks the first threshold on gold labels: the lowest one at which the cascade's
agreement with gold reaches a target, which escalates the fewest samples that target allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.graders.base import AsyncGrader, Grader, Sample, Verdict, build_grader, grader
from policylab.policy.schema import Policy

__all__ = ["CascadeGrader", "CascadeReport", "ThresholdFit", "fit_threshold"]


@dataclass
class CascadeReport:
    """What one `grade` call cost: samples graded and decided per stage."""

    stages: list[str]
    n: int
    graded: list[int] = field(default_factory=list)
    """Samples each stage graded (its calls)."""
    decided: list[int] = field(default_factory=list)
    """Samples whose final verdict came from each stage."""

    @property
    def escalated_share(self) -> float:
        """Share of samples the first stage passed on."""
        return (self.n - self.decided[0]) / self.n if self.n else 0.0

    def __add__(self, other: CascadeReport) -> CascadeReport:
        """The cost of two `grade` calls of the same cascade (batches of one job)."""
        if other.stages != self.stages:
            raise ValueError(f"cascades differ: {self.stages} and {other.stages}")
        return CascadeReport(
            stages=list(self.stages),
            n=self.n + other.n,
            graded=[a + b for a, b in zip(self.graded, other.graded, strict=True)],
            decided=[a + b for a, b in zip(self.decided, other.decided, strict=True)],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "n": self.n,
            "graded": self.graded,
            "decided": self.decided,
            "escalated_share": self.escalated_share,
        }


@grader("cascade")
class CascadeGrader(AsyncGrader):
    """Stages in order of cost; `thresholds[i]` is the confidence stage i needs to decide.

    `stages` are graders, or recorded specs `{"grader": name, "params": {...}}` (as stored with a
    verdict), built with `policy` when their parameters refer to one.
    """

    id: ClassVar[str] = "cascade"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        stages: Sequence[Grader | Mapping[str, Any]],
        thresholds: Sequence[float],
        policy: Policy | None = None,
    ) -> None:
        built = [s if not isinstance(s, Mapping) else _build(s, policy) for s in stages]
        if len(built) < 2:
            raise PolicylabError("a cascade needs at least two stages")
        if len(thresholds) != len(built) - 1:
            raise PolicylabError(
                f"a cascade of {len(built)} stages needs {len(built) - 1} threshold(s), got {len(thresholds)}"
            )
        if any(not 0.0 <= t <= 1.0 for t in thresholds):
            raise PolicylabError(f"thresholds are confidences in [0, 1], got {list(thresholds)}")
        self.stages: list[Grader] = built
        self.thresholds = [float(t) for t in thresholds]
        self.policy = policy
        self.last_report: CascadeReport | None = None

    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]:
        final: dict[str, Verdict] = {}
        report = CascadeReport(stages=[f"{s.id}@{s.version}" for s in self.stages], n=len(samples))
        pending = list(samples)
        trail: dict[str, list[dict[str, Any]]] = {s.id: [] for s in samples}
        for index, stage in enumerate(self.stages):
            report.graded.append(len(pending))
            if not pending:
                report.decided.append(0)
                continue
            verdicts = await stage.agrade(pending)
            last = index == len(self.stages) - 1
            passed: list[Sample] = []
            decided = 0
            for sample, verdict in zip(pending, verdicts, strict=True):
                if last or _confident(verdict, self.thresholds[index]):
                    verdict.extra = {
                        **verdict.extra,
                        "cascade_stage": index,
                        "cascade_trail": trail[sample.id],
                    }
                    final[sample.id] = verdict
                    decided += 1
                else:
                    trail[sample.id].append(
                        {
                            "stage": index,
                            "grader": stage.id,
                            "behavior": verdict.behavior.value if verdict.behavior else None,
                            "confidence": verdict.confidence,
                            "error": verdict.error,
                        }
                    )
                    passed.append(sample)
            report.decided.append(decided)
            pending = passed
        self.last_report = report
        return [final[s.id] for s in samples]


def _confident(verdict: Verdict, threshold: float) -> bool:
    return (
        verdict.error is None and verdict.confidence is not None and verdict.confidence >= threshold
    )


def _build(spec: Mapping[str, Any], policy: Policy | None) -> Grader:
    name = spec.get("grader")
    if not isinstance(name, str):
        raise PolicylabError(f"a cascade stage spec needs `grader` (a name), got {dict(spec)}")
    built: Grader = build_grader(name, spec.get("params") or {}, policy=policy)
    return built


# -- choosing the threshold --------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdFit:
    """The chosen threshold and the agreement/escalation trade-off it was chosen from."""

    threshold: float
    agreement: float
    escalated_share: float
    target_agreement: float
    reached: bool
    """False when no threshold reaches the target: the threshold then maximises agreement."""
    curve: list[tuple[float, float, float]]
    """(threshold, agreement, escalated share) for every candidate, ascending."""


def fit_threshold(
    gold: Sequence[Behavior],
    first: Sequence[Verdict],
    second: Sequence[Verdict],
    *,
    target_agreement: float,
) -> ThresholdFit:
    """The lowest first-stage threshold whose cascade agrees with `gold` at `target_agreement`.

    `first` and `second` are the two stages' verdicts on the same gold samples, in order. An
    error counts as a disagreement. The agreement is measured on the data the threshold is fitted
    on: validate the fitted cascade on other gold data before relying on it.
    """
    if not len(gold) == len(first) == len(second):
        raise PolicylabError(
            f"gold ({len(gold)}), first ({len(first)}) and second ({len(second)}) differ in length"
        )
    if not gold:
        raise PolicylabError("fit_threshold needs gold samples")
    if not 0.0 < target_agreement <= 1.0:
        raise PolicylabError(f"target_agreement must lie in (0, 1], got {target_agreement}")
    right1 = np.array(
        [v.error is None and v.behavior == g for v, g in zip(first, gold, strict=True)]
    )
    right2 = np.array(
        [v.error is None and v.behavior == g for v, g in zip(second, gold, strict=True)]
    )
    conf = np.array(
        [v.confidence if v.error is None and v.confidence is not None else -1.0 for v in first]
    )
    # Candidates: 0 and each observed confidence (a verdict at exactly the threshold stands).
    candidates = sorted({0.0, *[float(c) for c in conf if c >= 0.0]})
    curve: list[tuple[float, float, float]] = []
    for t in candidates:
        keep = conf >= t
        agreement = float(np.where(keep, right1, right2).mean())
        curve.append((t, agreement, float((~keep).mean())))
    reaching = [c for c in curve if c[1] >= target_agreement]
    if reaching:
        best = min(reaching, key=lambda c: (c[2], c[0]))
        reached = True
    else:
        best = max(curve, key=lambda c: (c[1], -c[2]))
        reached = False
    return ThresholdFit(
        threshold=best[0],
        agreement=best[1],
        escalated_share=best[2],
        target_agreement=target_agreement,
        reached=reached,
        curve=curve,
    )
