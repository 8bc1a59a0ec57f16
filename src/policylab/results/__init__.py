"""From stored runs and verdicts to the numbers a launch decision rests on.

`data.outcomes` scores a run's responses with one grader's verdicts; `tables.compute_results` turns
them into rates with intervals per category, severity tier and overall; `gates.check_gates` checks
the policy's launch gates; `compare.compare_runs` compares two runs on the same items;
`coverage`, `limitations` and `human` add what a report needs around the numbers. Every statistic
comes from `policylab.stats`; nothing here reads the database (see `policylab.store.results`).
"""

from policylab.results.compare import Comparison, compare_runs, tradeoff
from policylab.results.coverage import Coverage, coverage
from policylab.results.data import Outcomes, RunData, RunInfo, choose_grader, graders_in, outcomes
from policylab.results.gates import GateReport, GateResult, GateStatus, check_gates
from policylab.results.human import CampaignData, CampaignSummary, summarise_campaign
from policylab.results.limitations import Limitation, known_limitations
from policylab.results.tables import Counts, RunResults, compute_results
from policylab.results.validity import GraderValidity

__all__ = [
    "CampaignData",
    "CampaignSummary",
    "Comparison",
    "Counts",
    "Coverage",
    "GateReport",
    "GateResult",
    "GateStatus",
    "GraderValidity",
    "Limitation",
    "Outcomes",
    "RunData",
    "RunInfo",
    "RunResults",
    "check_gates",
    "choose_grader",
    "compare_runs",
    "compute_results",
    "coverage",
    "graders_in",
    "known_limitations",
    "outcomes",
    "summarise_campaign",
    "tradeoff",
]
