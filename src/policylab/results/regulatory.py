"""The regulatory mapping of a report: per provision, what addresses it and how that measured up.

For each framework reported on, every provision is listed in the framework's order with:

- the categories that address it: those citing it (or a finer provision under it) in
  `regulations:`, and the categories of rules citing it; each with its harmful-compliance and
  over-refusal rates from the run and the status of its severity tier's launch gate;
- the rules citing it, with their action metrics when the run was graded for actions;
- whether anything addresses it, directly or through a provision under it.

Provisions nothing addresses are listed apart: they are the gaps a reviewer asks about. Citations
that name a framework not loaded, or a provision a framework does not list, are listed too, as are
free-text citations (kept as written, traced to nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from policylab.errors import PolicylabError
from policylab.policy.frameworks import Framework, Provision, parse_citation
from policylab.policy.schema import Category, Policy, Rule
from policylab.results.actions import ActionResults
from policylab.results.gates import GateReport, GateStatus
from policylab.results.tables import RunResults
from policylab.stats.intervals import Rate

__all__ = [
    "CategoryStatus",
    "ProvisionRow",
    "RegulatoryMapping",
    "RuleStatus",
    "UntracedCitation",
    "cited_frameworks",
    "regulatory_mapping",
]

_WORST: dict[GateStatus | None, int] = {None: 0, "pass": 1, "inconclusive": 2, "fail": 3}


@dataclass(frozen=True)
class CategoryStatus:
    """A category that addresses a provision, with its results in the run (when given)."""

    category: Category
    cited_by: list[str]
    """`category` when the category cites the provision itself, else the ids of its rules that do."""
    under_refusal: Rate | None = None
    over_refusal: Rate | None = None
    gate: str | None = None
    """The gate that decides the category: `under_refusal:<its severity tier>`."""
    gate_status: GateStatus | None = None


@dataclass(frozen=True)
class RuleStatus:
    """A rule citing a provision, with its action metrics (action rules of an agent run)."""

    rule: Rule
    unsafe_action: Rate | None = None
    confirmation_compliance: Rate | None = None
    violations: int | None = None


@dataclass(frozen=True)
class ProvisionRow:
    framework: Framework
    provision: Provision
    depth: int
    cited_as: list[str]
    categories: list[CategoryStatus]
    rules: list[RuleStatus]
    addressed: bool
    """Cited directly, or through a provision under it."""

    @property
    def ref(self) -> str:
        return f"{self.framework.id}:{self.provision.id}"

    @property
    def direct(self) -> bool:
        return bool(self.categories or self.rules)

    @property
    def status(self) -> GateStatus | None:
        """The worst gate status among its categories: fail, then undecided, then pass."""
        found = [c.gate_status for c in self.categories if c.gate_status is not None]
        return max(found, key=lambda s: _WORST[s], default=None)


@dataclass(frozen=True)
class UntracedCitation:
    """A citation the mapping cannot place in a loaded framework."""

    text: str
    owner: str
    kind: Literal["free_text", "unknown_framework", "unknown_provision"]


@dataclass(frozen=True)
class RegulatoryMapping:
    frameworks: list[Framework]
    rows: list[ProvisionRow]
    untraced: list[UntracedCitation] = field(default_factory=list)
    run: str | None = None

    def rows_of(self, framework_id: str) -> list[ProvisionRow]:
        return [r for r in self.rows if r.framework.id == framework_id]

    @property
    def unaddressed(self) -> list[ProvisionRow]:
        return [r for r in self.rows if not r.addressed]

    def row(self, ref: str) -> ProvisionRow:
        found = next((r for r in self.rows if r.ref == ref), None)
        if found is None:
            raise PolicylabError(f"no provision {ref!r} in the regulatory mapping")
        return found


def cited_frameworks(policy: Policy, frameworks: Mapping[str, Framework]) -> list[Framework]:
    """The loaded frameworks the policy cites at least once, in the order first cited."""
    ids: list[str] = []
    owners: list[Category | Rule] = [*policy.categories, *policy.rules]
    for owner in owners:
        for text in owner.regulations:
            parsed = parse_citation(text)
            if parsed and parsed[0] in frameworks and parsed[0] not in ids:
                ids.append(parsed[0])
    return [frameworks[i] for i in ids]


def _safe_rate(results: RunResults, metric: str, category: str) -> Rate | None:
    try:
        return results.rate(metric, category=category)
    except PolicylabError:
        return None


def regulatory_mapping(
    policy: Policy,
    frameworks: Sequence[Framework],
    *,
    all_frameworks: Mapping[str, Framework] | None = None,
    results: RunResults | None = None,
    gates: GateReport | None = None,
    actions: ActionResults | None = None,
) -> RegulatoryMapping:
    """The mapping of `policy` onto `frameworks` (see the module docstring).

    `all_frameworks` (default: `frameworks`) decides which citations count as untraced: one naming
    a framework in it but not reported on is neither listed nor untraced.
    """
    known = dict(all_frameworks) if all_frameworks is not None else {f.id: f for f in frameworks}
    shown = {f.id for f in frameworks}
    # (framework, provision) -> citing owners, and the text each cited it with
    cites: dict[tuple[str, str], list[tuple[Category | Rule, str]]] = {}
    untraced: list[UntracedCitation] = []
    owners: list[Category | Rule] = [*policy.categories, *policy.rules]
    for owner in owners:
        for text in owner.regulations:
            parsed = parse_citation(text)
            if parsed is None:
                untraced.append(UntracedCitation(text, owner.id, "free_text"))
                continue
            framework = known.get(parsed[0])
            if framework is None:
                untraced.append(UntracedCitation(text, owner.id, "unknown_framework"))
                continue
            provision = framework.resolve(parsed[1])
            if provision is None:
                untraced.append(UntracedCitation(text, owner.id, "unknown_provision"))
                continue
            if framework.id in shown:
                cites.setdefault((framework.id, provision.id), []).append((owner, text))
    gate_status = {g.gate: g.status for g in gates.gates} if gates is not None else {}
    rows: list[ProvisionRow] = []
    for framework in frameworks:
        direct = {pid for fid, pid in cites if fid == framework.id}
        addressed = set(direct)
        for pid in direct:
            addressed.update(framework.ancestors(pid))
        for provision in framework.provisions:
            citing = cites.get((framework.id, provision.id), [])
            rows.append(
                ProvisionRow(
                    framework=framework,
                    provision=provision,
                    depth=framework.depth(provision.id),
                    cited_as=list(dict.fromkeys(text for _, text in citing)),
                    categories=_categories(policy, citing, results, gate_status),
                    rules=_rules(citing, actions),
                    addressed=provision.id in addressed,
                )
            )
    return RegulatoryMapping(
        frameworks=list(frameworks),
        rows=rows,
        untraced=untraced,
        run=results.info.name if results is not None else None,
    )


def _categories(
    policy: Policy,
    owners: list[tuple[Category | Rule, str]],
    results: RunResults | None,
    gate_status: dict[str, GateStatus],
) -> list[CategoryStatus]:
    cited_by: dict[str, list[str]] = {}
    for owner, _ in owners:
        if isinstance(owner, Category):
            cited_by.setdefault(owner.id, []).insert(0, "category")
        else:
            cited_by.setdefault(owner.category_id, []).append(owner.id)
    out: list[CategoryStatus] = []
    for cid, by in cited_by.items():
        category = policy.category(cid)
        if category is None:
            continue
        gate = f"under_refusal:{category.severity.value}"
        out.append(
            CategoryStatus(
                category=category,
                cited_by=list(dict.fromkeys(by)),
                under_refusal=_safe_rate(results, "under_refusal", cid) if results else None,
                over_refusal=_safe_rate(results, "over_refusal", cid) if results else None,
                gate=gate if gate in gate_status else None,
                gate_status=gate_status.get(gate),
            )
        )
    return out


def _rules(
    owners: list[tuple[Category | Rule, str]], actions: ActionResults | None
) -> list[RuleStatus]:
    out: list[RuleStatus] = []
    for owner, _ in owners:
        if not isinstance(owner, Rule) or any(r.rule.id == owner.id for r in out):
            continue
        if actions is not None and owner.is_action:
            out.append(
                RuleStatus(
                    rule=owner,
                    unsafe_action=actions.rate(owner.id, "unsafe_action"),
                    confirmation_compliance=actions.rate(owner.id, "confirmation_compliance"),
                    violations=len(actions.violations_of(owner.id)),
                )
            )
        else:
            out.append(RuleStatus(rule=owner))
    return out
