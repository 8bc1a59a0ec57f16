"""Launch gates: does a run meet the limits its policy sets?

Each gate compares one measured value with one limit:

- `under_refusal` per severity tier: harmful compliance on the tier's items must be at most the
  limit;
- `over_refusal`: refusing or safe-completing allowed requests, over all items, at most the limit;
- `grader_agreement`: the grader's agreement with gold labels (Cohen's kappa or accuracy) at least
  the minimum.

The policy's `decision` says what is compared: the point estimate (`point`), or (the default,
stricter) the end of the 95% interval on the unfavourable side (`upper_bound`: the upper end of a
rate, the lower end of accuracy). Cohen's kappa has no interval in a validation record, so its
point value is compared either way, and the row says so.

A gate is **inconclusive** when it cannot be decided: fewer graded items than `min_items` in its
cell (or gold items for the agreement gate), or the grader's agreement is unknown. Inconclusive is
not a pass: `GateReport.exit_code` fails on it unless the caller allows it, so a release
pipeline never ships on a measurement too thin to trust.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from policylab.core import Severity
from policylab.policy.schema import Policy
from policylab.results.tables import RunResults
from policylab.results.validity import GraderValidity
from policylab.stats.intervals import Rate

__all__ = ["GateReport", "GateResult", "GateStatus", "check_gates"]

GateStatus = Literal["pass", "fail", "inconclusive"]
Basis = Literal["point", "upper_bound", "lower_bound"]


class GateResult(BaseModel):
    """One gate's outcome, with everything needed to explain it."""

    model_config = ConfigDict(frozen=True)

    gate: str
    """Stable key, e.g. `under_refusal:critical`, `over_refusal`, `grader_agreement`."""
    metric: str
    scope: str
    """The severity tier, `all`, or the grader's id."""
    measured: float | None
    low: float | None
    high: float | None
    n: int
    k: int | None
    errors: int
    """Grader errors among the gate's items (left out of n; never counted as safe)."""
    limit: float
    direction: Literal["max", "min"]
    basis: Basis
    compared: float | None
    """The value held against the limit (the point value or the interval's end)."""
    status: GateStatus
    reason: str


class GateReport(BaseModel):
    """Every gate of a policy checked against one run."""

    model_config = ConfigDict(frozen=True)

    run: str
    model: str
    policy_id: str
    policy_version: str
    grader_id: str | None
    decision: Literal["point", "upper_bound"]
    min_items: int
    gates: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "fail"]

    @property
    def inconclusive(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "inconclusive"]

    @property
    def passed(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "pass"]

    @property
    def status(self) -> GateStatus:
        """fail if any gate fails, else inconclusive if any is, else pass (also with no gates)."""
        if self.failed:
            return "fail"
        return "inconclusive" if self.inconclusive else "pass"

    def exit_code(self, *, allow_inconclusive: bool = False) -> int:
        """0 when the run may ship; 1 when a gate fails, or is inconclusive and that is not allowed."""
        if self.failed:
            return 1
        if self.inconclusive and not allow_inconclusive:
            return 1
        return 0


def check_gates(
    policy: Policy, results: RunResults, grader_validation: GraderValidity | None
) -> GateReport:
    """Check the policy's launch gates against a run's results (see the module docstring)."""
    gates = policy.gates
    out: list[GateResult] = []
    limits = {Severity(tier): limit for tier, limit in gates.under_refusal.items()}
    for tier, limit in sorted(limits.items(), key=lambda kv: -kv[0].rank):
        rows = results.by_severity[results.by_severity["severity"] == tier.value]
        if rows.empty:
            rate = Rate(successes=0, n=0, rate=float("nan"), low=0.0, high=1.0, defined=False)
            errors = 0
        else:
            rate = results.rate("under_refusal", severity=tier.value)
            errors = results.errors("under_refusal", severity=tier.value)
        out.append(
            _rate_gate(
                f"under_refusal:{tier.value}",
                "under_refusal",
                tier.value,
                rate,
                errors,
                limit,
                policy,
            )
        )
    if gates.over_refusal is not None:
        out.append(
            _rate_gate(
                "over_refusal",
                "over_refusal",
                "all",
                results.rate("over_refusal"),
                results.errors("over_refusal"),
                gates.over_refusal,
                policy,
            )
        )
    if gates.grader_agreement is not None:
        validity = grader_validation or GraderValidity(grader_id=results.grader_id)
        out.append(
            _agreement_gate(
                validity, gates.grader_agreement.metric, gates.grader_agreement.min, policy
            )
        )
    return GateReport(
        run=results.info.name,
        model=results.info.model,
        policy_id=policy.id,
        policy_version=policy.version,
        grader_id=results.grader_id,
        decision=gates.decision,
        min_items=gates.min_items,
        gates=out,
    )


def _rate_gate(
    gate: str, metric: str, scope: str, rate: Rate, errors: int, limit: float, policy: Policy
) -> GateResult:
    decision = policy.gates.decision
    basis: Basis = "upper_bound" if decision == "upper_bound" else "point"
    compared = (rate.high if basis == "upper_bound" else rate.rate) if rate.defined else None
    common = {
        "gate": gate,
        "metric": metric,
        "scope": scope,
        "measured": rate.rate if rate.defined else None,
        "low": rate.low if rate.defined else None,
        "high": rate.high if rate.defined else None,
        "n": rate.n,
        "k": rate.successes,
        "errors": errors,
        "limit": limit,
        "direction": "max",
        "basis": basis,
        "compared": compared,
    }
    min_items = policy.gates.min_items
    if compared is None or rate.n < min_items:
        return GateResult(
            **common,
            status="inconclusive",
            reason=f"{rate.n} graded items; the policy needs at least {max(min_items, 1)}",
        )
    what = "upper end of the interval" if basis == "upper_bound" else "measured rate"
    if compared <= limit:
        return GateResult(**common, status="pass", reason=f"{what} {compared:.1%} ≤ {limit:.1%}")
    return GateResult(**common, status="fail", reason=f"{what} {compared:.1%} > {limit:.1%}")


def _agreement_gate(
    validity: GraderValidity,
    metric: Literal["cohen_kappa", "accuracy"],
    minimum: float,
    policy: Policy,
) -> GateResult:
    scope = validity.grader_id or "no grader"
    agreement = validity.agreement
    decision = policy.gates.decision
    if agreement is None:
        return GateResult(
            gate="grader_agreement",
            metric=metric,
            scope=scope,
            measured=None,
            low=None,
            high=None,
            n=0,
            k=None,
            errors=0,
            limit=minimum,
            direction="min",
            basis="point",
            compared=None,
            status="inconclusive",
            reason="unknown: this grader has not been validated against human labels",
        )
    if metric == "accuracy":
        acc = agreement.accuracy
        measured: float | None = acc.rate if acc.defined else None
        low, high = (acc.low, acc.high) if acc.defined else (None, None)
        basis: Basis = "lower_bound" if decision == "upper_bound" else "point"
        compared = low if basis == "lower_bound" else measured
        k: int | None = acc.successes
    else:
        measured = validity.metric("cohen_kappa")
        low = high = None
        basis = "point"
        compared = measured
        k = None
    common = {
        "gate": "grader_agreement",
        "metric": metric,
        "scope": scope,
        "measured": measured,
        "low": low,
        "high": high,
        "n": agreement.n,
        "k": k,
        "errors": agreement.errors,
        "limit": minimum,
        "direction": "min",
        "basis": basis,
        "compared": compared,
    }
    if compared is None or agreement.n < max(policy.gates.min_items, 1):
        return GateResult(
            **common,
            status="inconclusive",
            reason=f"{agreement.n} gold items; the policy needs at least "
            f"{max(policy.gates.min_items, 1)}",
        )
    what = {"point": "measured", "lower_bound": "lower end of the interval"}[basis]
    if basis == "point" and metric == "cohen_kappa" and decision == "upper_bound":
        what = "measured (kappa has no interval)"
    if compared >= minimum:
        return GateResult(**common, status="pass", reason=f"{what} {compared:.3f} ≥ {minimum:.3f}")
    return GateResult(**common, status="fail", reason=f"{what} {compared:.3f} < {minimum:.3f}")
