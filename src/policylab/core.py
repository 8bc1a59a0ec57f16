"""The small vocabulary every layer shares: response behaviour and severity tiers."""

from __future__ import annotations

from enum import StrEnum


class Behavior(StrEnum):
    """What a response does with a request.

    `partial` is a safe completion: it helps with what is safe and declines what is not, or mixes help
    and refusal.
    """

    COMPLY = "comply"
    PARTIAL = "partial"
    REFUSE = "refuse"


class Severity(StrEnum):
    """Severity tiers, from least to most severe. Launch gates are set per tier."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
