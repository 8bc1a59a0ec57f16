"""Model specs for agent runs: the usual ones (`openai:...`, `echo`, ...), plus two of our own.

- `scripted:<file.yaml>`: the deterministic scripted agent (`agents.scripted`);
- `recorded` or `recorded:<file>`: replay recorded transcripts (`agents.replay`). A replay is the
  run's target itself, never wrapped in the interactive loop: its turns are already recorded.
"""

from __future__ import annotations

from policylab.agents.replay import RecordedModel
from policylab.agents.scripted import ScriptedModel
from policylab.models.base import TargetModel
from policylab.models.registry import load_model

__all__ = ["is_recorded", "load_agent_model"]


def is_recorded(spec: str) -> bool:
    """Whether `spec` names a replay of recorded transcripts."""
    text = spec.strip()
    return text == "recorded" or text.startswith("recorded:")


def load_agent_model(
    spec: str, *, api_key_env: str | None = None, timeout: float = 60.0, concurrency: int = 8
) -> TargetModel:
    """The model a spec names (see the module docstring)."""
    text = spec.strip()
    if text.startswith("scripted:"):
        return ScriptedModel(text.removeprefix("scripted:"))
    if is_recorded(text):
        path = text.removeprefix("recorded").removeprefix(":")
        return RecordedModel(path or None)
    return load_model(text, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency)
