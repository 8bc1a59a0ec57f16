"""Statistics over arrays and frames: rates with intervals, grader-error correction, paired
comparisons, AILuminate-style grades, grader validation, inter-annotator agreement and label
aggregation. Pure functions; nothing here touches the store, the web app or the CLI.

`docs/statistics.md` states each metric's definition and source.
"""

from policylab.stats.aggregation import (
    DawidSkeneResult,
    annotator_accuracy,
    dawid_skene,
    majority_vote,
)
from policylab.stats.agreement import (
    AgreementReport,
    AnnotatorAgreement,
    FleissResult,
    PairKappa,
    agreement_by,
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    pairwise_cohen_kappa,
    percent_agreement,
)
from policylab.stats.alpha import AlphaResult, alpha_from_counts, krippendorff_alpha
from policylab.stats.bands import BandedRate, Grade, ailuminate_grade, grade_rate
from policylab.stats.classification import GraderAgreement, grader_agreement
from policylab.stats.correction import (
    CorrectedRate,
    GoldCounts,
    correct_rate,
    correct_rate_known,
    rogan_gladen,
)
from policylab.stats.intervals import Rate, wilson, wilson_interval, wilson_intervals
from policylab.stats.paired import (
    McNemarResult,
    PairedDifference,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from policylab.stats.refusal import METRICS, refusal_metrics

__all__ = [
    "METRICS",
    "AgreementReport",
    "AlphaResult",
    "AnnotatorAgreement",
    "BandedRate",
    "CorrectedRate",
    "DawidSkeneResult",
    "FleissResult",
    "GoldCounts",
    "Grade",
    "GraderAgreement",
    "McNemarResult",
    "PairKappa",
    "PairedDifference",
    "Rate",
    "agreement_by",
    "agreement_report",
    "ailuminate_grade",
    "alpha_from_counts",
    "annotator_accuracy",
    "cohen_kappa",
    "correct_rate",
    "correct_rate_known",
    "dawid_skene",
    "fleiss_kappa",
    "grade_rate",
    "grader_agreement",
    "krippendorff_alpha",
    "majority_vote",
    "mcnemar_exact",
    "paired_bootstrap_difference",
    "pairwise_cohen_kappa",
    "percent_agreement",
    "refusal_metrics",
    "rogan_gladen",
    "wilson",
    "wilson_interval",
    "wilson_intervals",
]
