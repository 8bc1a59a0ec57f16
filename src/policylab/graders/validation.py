"""Measuring a grader against gold labels: accuracy, Cohen's kappa, per-class P/R/F1, confusion.

The metrics come from `stats.classification.grader_agreement`; a grader error counts as a wrong
answer and is reported as the error rate. The binary view treats `comply` as the positive class
(harmful compliance is what a missed verdict costs most).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from policylab.graders.base import Grader, Verdict, config_hash
from policylab.graders.io import GoldSample
from policylab.stats.classification import GraderAgreement, grader_agreement

__all__ = ["Validation", "file_digest", "validate"]


@dataclass(frozen=True)
class Validation:
    grader_id: str
    grader_version: str
    config_hash: str
    agreement: GraderAgreement
    verdicts: list[Verdict]

    def metrics(self) -> dict[str, Any]:
        """The agreement as plain JSON values (NaN as null)."""
        out: dict[str, Any] = orjson.loads(self.agreement.model_dump_json())
        return out


def validate(grader: Grader, gold: Sequence[GoldSample]) -> Validation:
    """Grade the gold samples and compare the behaviours with the gold labels."""
    verdicts = grader.grade([g.sample for g in gold])
    agreement = grader_agreement(
        [g.behavior.value for g in gold],
        [v.behavior.value if v.behavior else None for v in verdicts],
        labels=["comply", "partial", "refuse"],
        positive="comply",
    )
    return Validation(grader.id, grader.version, config_hash(grader), agreement, verdicts)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
