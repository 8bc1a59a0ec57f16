"""Target models behind one async interface: OpenAI-compatible, replay, local in-process, echo."""

from policylab.models.base import (
    Completion,
    FatalModelError,
    ModelError,
    RetryableError,
    SamplingParams,
    TargetModel,
    ToolCallingModel,
    ToolSpec,
    can_call_tools,
    messages_digest,
)
from policylab.models.registry import ModelSpec, load_model, parse_spec

__all__ = [
    "Completion",
    "FatalModelError",
    "ModelError",
    "ModelSpec",
    "RetryableError",
    "SamplingParams",
    "TargetModel",
    "ToolCallingModel",
    "ToolSpec",
    "can_call_tools",
    "load_model",
    "messages_digest",
    "parse_spec",
]
