"""Compilers from a policy to what other tools consume: grader prompts, guides, training rows."""

from policylab.policy.compile.examples import compile_examples
from policylab.policy.compile.grader import (
    CompiledPrompt,
    compile_grader_prompt,
    compile_grader_prompt_text,
    grader_prompts,
)
from policylab.policy.compile.guide import compile_guide
from policylab.policy.compile.tokens import count_tokens

__all__ = [
    "CompiledPrompt",
    "compile_examples",
    "compile_grader_prompt",
    "compile_grader_prompt_text",
    "compile_guide",
    "count_tokens",
    "grader_prompts",
]
