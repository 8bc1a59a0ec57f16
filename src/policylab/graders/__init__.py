"""Graders: one interface (`Grader`) from samples to verdicts, and the built-in graders.

Importing this package registers `rules`, `local`, `llm`, `cascade` and `actions` in `REGISTRY`.
"""

from policylab.graders.actions import ActionGrader
from policylab.graders.base import (
    REGISTRY,
    AsyncGrader,
    Grader,
    Sample,
    SyncGrader,
    Verdict,
    build_grader,
    config_hash,
    grader,
    grader_params,
)
from policylab.graders.cascade import CascadeGrader, fit_threshold
from policylab.graders.llm import LLMJudge
from policylab.graders.local import LocalGrader
from policylab.graders.rules import RulesGrader

__all__ = [
    "REGISTRY",
    "ActionGrader",
    "AsyncGrader",
    "CascadeGrader",
    "Grader",
    "LLMJudge",
    "LocalGrader",
    "RulesGrader",
    "Sample",
    "SyncGrader",
    "Verdict",
    "build_grader",
    "config_hash",
    "fit_threshold",
    "grader",
    "grader_params",
]
