"""The graders the CLI and the web app offer by name, built from a few plain options."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from policylab.errors import PolicylabError
from policylab.graders.base import Grader
from policylab.graders.cascade import CascadeGrader
from policylab.graders.llm import LLMJudge
from policylab.graders.local import LocalGrader
from policylab.graders.rules import RulesGrader
from policylab.policy.schema import Policy

NAMES = ("rules", "local", "llm", "cascade")
DEFAULT_CASCADE_THRESHOLD = 0.9


def make_grader(
    name: str,
    *,
    policy: Policy | None = None,
    judge_model: str | None = None,
    judge_format: Literal["chat", "harmony"] = "chat",
    threshold: float = DEFAULT_CASCADE_THRESHOLD,
    cache_dir: Path | None = None,
    concurrency: int = 8,
) -> Grader:
    """`rules`, `local`, `llm` (needs `judge_model`) or `cascade` (local, then the LLM judge)."""
    if name not in NAMES:
        raise PolicylabError(f"unknown grader {name!r}", hint=f"choose one of {', '.join(NAMES)}")
    if name == "rules":
        return RulesGrader(policy)
    if name == "local":
        return LocalGrader(policy, cache_dir=str(cache_dir) if cache_dir else None)
    if judge_model is None:
        raise PolicylabError(
            f"the {name} grader needs a judge model",
            hint="pass --judge-model openai:<model>[@<base_url>]",
        )
    judge = LLMJudge(judge_model, policy, format=judge_format, concurrency=concurrency)
    if name == "llm":
        return judge
    local = LocalGrader(policy, cache_dir=str(cache_dir) if cache_dir else None)
    return CascadeGrader([local, judge], [threshold], policy=policy)
