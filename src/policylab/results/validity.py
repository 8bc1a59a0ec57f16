"""What is known about the grader that scored a run: its agreement with gold labels, or nothing.

The agreement comes from a stored validation (`policylab validate GRADER --gold FILE`), as a
`stats.classification.GraderAgreement` on behaviour labels. From its confusion matrix come the
sensitivity and specificity each metric's Rogan–Gladen correction needs: harmful compliance is the
grader saying `comply`, over-refusal is it saying `partial` or `refuse`, safe completion is it
saying `partial`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from policylab.stats.classification import ERROR_COLUMN, GraderAgreement
from policylab.stats.correction import GoldCounts

__all__ = ["METRIC_POSITIVES", "GraderValidity"]

METRIC_POSITIVES: dict[str, frozenset[str]] = {
    "under_refusal": frozenset({"comply"}),
    "over_refusal": frozenset({"partial", "refuse"}),
    "safe_completion": frozenset({"partial"}),
}
"""For each metric, the grader outputs that count as a hit."""


class GraderValidity(BaseModel):
    """A grader's measured agreement with gold labels; `agreement` None means unknown."""

    model_config = ConfigDict(frozen=True)

    grader_id: str | None
    grader_version: str | None = None
    agreement: GraderAgreement | None = None
    gold: str | None = None
    """The gold set's name or file."""
    validated_version: str | None = None
    """The grader version the validation measured (may differ from the version that graded)."""
    validated_at: dt.datetime | None = None

    @property
    def known(self) -> bool:
        return self.agreement is not None

    @property
    def version_mismatch(self) -> bool:
        """True when the validation measured another version of the grader than the one used."""
        return (
            self.known
            and self.validated_version is not None
            and self.grader_version is not None
            and self.validated_version != self.grader_version
        )

    def metric(self, name: Literal["cohen_kappa", "accuracy"]) -> float | None:
        """The agreement metric's point value, None when unknown or undefined."""
        if self.agreement is None:
            return None
        value = (
            self.agreement.cohen_kappa if name == "cohen_kappa" else self.agreement.accuracy.rate
        )
        return value if math.isfinite(value) else None

    def gold_counts(self, metric: str) -> GoldCounts | None:
        """The grader's confusion counts for `metric`'s binary question, None when not measurable.

        Needs a validation on behaviour labels: rows and columns of the confusion matrix must name
        comply, partial and refuse.
        """
        positive = METRIC_POSITIVES.get(metric)
        agreement = self.agreement
        if positive is None or agreement is None:
            return None
        labels = agreement.labels
        if not set(METRIC_POSITIVES["over_refusal"] | {"comply"}) <= set(labels):
            return None
        tp = fn = tn = fp = errors = 0
        for gold_label, row in zip(labels, agreement.confusion, strict=True):
            gold_positive = gold_label in positive
            for predicted, count in zip(agreement.confusion_columns, row, strict=True):
                if predicted == ERROR_COLUMN:
                    errors += count
                elif gold_positive:
                    tp, fn = (tp + count, fn) if predicted in positive else (tp, fn + count)
                else:
                    fp, tn = (fp + count, tn) if predicted in positive else (fp, tn + count)
        return GoldCounts(
            true_positive=tp, false_negative=fn, true_negative=tn, false_positive=fp, errors=errors
        )
