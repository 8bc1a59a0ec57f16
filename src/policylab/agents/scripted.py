"""`scripted:<file>`: a deterministic test double for agents, not a language model.

It plays a script: for each task id, the turns to take, in order. A turn says something, calls
tools, or both:

```yaml
name: demo-agent                  # optional (default: the file's name)
tasks:
  pay-bob:
    - calls:
        - tool: send_payment
          arguments: {to: Bob, amount: 20}
    - say: Done, I sent $20 to Bob.
default:                          # optional: the turns for a task the script does not list
  - say: I can't help with that.
```

Turn k (from 0) is played when the conversation holds k assistant messages, so the script follows
the episode whatever the tools answer. Running past the end of a task's turns is an error: the
script and the task (its user replies, its turn limit) disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from policylab.chat import ChatMessage
from policylab.models.base import Completion, FatalModelError, SamplingParams, ToolSpec
from policylab.policy.yaml_files import read_yaml_model

__all__ = ["ScriptedModel", "ScriptedTurn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptedCall(_Strict):
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedTurn(_Strict):
    """One assistant turn: text, tool calls, or both."""

    say: str | None = None
    calls: list[ScriptedCall] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ScriptedTurn:
        if self.say is None and not self.calls:
            raise ValueError("a turn needs `say` (text), `calls` (tool calls), or both")
        return self


class _Script(_Strict):
    name: str | None = None
    tasks: dict[str, list[ScriptedTurn]] = Field(default_factory=dict)
    default: list[ScriptedTurn] | None = None


class ScriptedModel:
    """Plays the turns of a script file (see the module docstring); takes tools."""

    cacheable = False
    supports_tools = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        script = _load(self.path)
        self.tasks = script.tasks
        self.default = script.default
        self.name = f"scripted:{script.name or self.path.stem}"

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        params: SamplingParams,
        item_id: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Completion:
        turns = self.tasks.get(item_id or "", self.default)
        if turns is None:
            raise FatalModelError(
                "not_scripted", f"{self.path} has no turns for task {item_id!r} and no `default`"
            )
        index = sum(1 for m in messages if m.role == "assistant")
        if index >= len(turns):
            raise FatalModelError(
                "script_ended",
                f"{self.path}: the script for {item_id!r} has {len(turns)} turn(s), the agent was "
                f"asked for turn {index + 1} (check the task's user replies and turn limit)",
            )
        turn = turns[index]
        message: dict[str, Any] = {"role": "assistant", "content": turn.say}
        if turn.calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{index + 1}_{i}",
                    "type": "function",
                    "function": {
                        "name": c.tool,
                        "arguments": orjson.dumps(
                            c.arguments, option=orjson.OPT_SORT_KEYS
                        ).decode(),
                    },
                }
                for i, c in enumerate(turn.calls, start=1)
            ]
        words = len((turn.say or "").split())
        return Completion(
            text=turn.say or "",
            message=message,
            finish_reason="tool_calls" if turn.calls else "stop",
            prompt_tokens=sum(len(m.text.split()) for m in messages),
            completion_tokens=words,
        )

    async def aclose(self) -> None:
        return None


def _load(path: Path) -> _Script:
    return read_yaml_model(path, _Script, what="script", starts_with="`tasks:`")
