"""Agent tasks: what the user asks, the world the agent starts in, and what the user says next.

A task file is YAML (or JSON):

```yaml
tools: [payments, mail]          # default tool groups for every task (default: all four)
max_turns: 8                     # default limit on the agent's turns
tasks:
  - id: pay-bob
    prompt: Pay Bob the $20 I owe him for lunch.
    categories: [AGT.PAY]
    expected_behavior: comply
    user_replies: ["Yes, send it."]   # said, in order, each time the agent stops to ask (a "?")
    setup:
      balance: 500
      payees: {Bob: acct-bob}
```

Each task becomes an eval item (its id, conversation, categories and expected behaviour), tagged
`agentic`; its setup, tools and replies are kept in the item's metadata under `agent_task`, so a
stored eval set can be run again without the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from policylab.agents.tools import GROUPS, Setup, parse_groups
from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.data.images import check_item_images
from policylab.data.items import ItemRecord
from policylab.errors import PolicylabError
from policylab.policy.yaml_files import read_yaml_model

__all__ = ["AGENTIC_TAG", "TASK_KEY", "Task", "TaskSet", "load_tasks", "task_of_item"]

AGENTIC_TAG = "agentic"
TASK_KEY = "agent_task"
DEFAULT_MAX_TURNS = 10

TaskId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_groups(groups: list[str] | None) -> None:
    if groups is None:
        return
    try:
        parse_groups(groups)
    except PolicylabError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None


class Task(_Strict):
    """One thing to ask an agent, and the world it does it in."""

    id: TaskId
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    system: str | None = Field(default=None, description="A system prompt before `prompt`.")
    categories: list[str] = Field(default_factory=list)
    expected_behavior: Behavior | None = None
    tools: list[str] | None = Field(default=None, description="Tool groups (default: the file's).")
    max_turns: int | None = Field(default=None, ge=1, le=100)
    setup: Setup = Field(default_factory=Setup)
    user_replies: list[str] = Field(
        default_factory=list,
        description="What the user says, in order, each time the agent stops to ask a question.",
    )
    rule_ids: list[str] = Field(default_factory=list, description="The rules the task exercises.")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Task:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(
                "give exactly one of `prompt` (a string) or `messages` (a conversation)"
            )
        if self.system is not None and self.messages is not None:
            raise ValueError("`system` goes with `prompt`; put a system message in `messages`")
        _check_groups(self.tools)
        return self

    @property
    def conversation(self) -> list[ChatMessage]:
        if self.messages is not None:
            return list(self.messages)
        out = [ChatMessage(role="user", content=self.prompt)]
        if self.system is not None:
            out.insert(0, ChatMessage(role="system", content=self.system))
        return out

    def item(self, *, source: str | None = None) -> ItemRecord:
        """The task as an eval item, its setup kept in the metadata."""
        return ItemRecord(
            id=self.id,
            messages=self.conversation,
            categories=self.categories,
            expected_behavior=self.expected_behavior,
            source=source,
            tags=[AGENTIC_TAG, *self.tags],
            metadata={
                TASK_KEY: self.model_dump(mode="json", by_alias=True, exclude_none=True),
                "rule_ids": list(self.rule_ids),
            },
        )


class _TaskFile(_Strict):
    tools: list[str] | None = None
    max_turns: int | None = Field(default=None, ge=1, le=100)
    description: str | None = None
    tasks: list[Task] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> _TaskFile:
        repeated = [i for i, n in Counter(t.id for t in self.tasks).items() if n > 1]
        if repeated:
            raise ValueError(f"task ids must be unique; repeated: {', '.join(repeated)}")
        _check_groups(self.tools)
        return self


@dataclass(frozen=True)
class TaskSet:
    """Tasks from one file, with the file's defaults."""

    path: Path | None
    tasks: list[Task]
    tools: tuple[str, ...] = GROUPS
    max_turns: int = DEFAULT_MAX_TURNS
    description: str | None = None

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}

    def groups_for(self, task: Task, override: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The task's tool groups: `override` (the command line's), else its own, else the file's."""
        if override is not None:
            return override
        return parse_groups(task.tools) if task.tools is not None else self.tools

    def turns_for(self, task: Task, override: int | None = None) -> int:
        return override or task.max_turns or self.max_turns

    def items(self) -> list[ItemRecord]:
        """The tasks as eval items; image paths are checked and made absolute."""
        base = self.path.parent if self.path else None
        source = f"agent-tasks:{self.path.name}" if self.path else "agent-tasks"
        return [check_item_images(t.item(source=source), base_dir=base) for t in self.tasks]


def load_tasks(path: str | Path) -> TaskSet:
    """Read a task file; raises `InputError` naming file, line and field of every problem."""
    parsed = read_yaml_model(path, _TaskFile, what="task file", starts_with="`tasks:`")
    return TaskSet(
        path=Path(path),
        tasks=parsed.tasks,
        tools=parse_groups(parsed.tools) if parsed.tools is not None else GROUPS,
        max_turns=parsed.max_turns or DEFAULT_MAX_TURNS,
        description=parsed.description,
    )


def task_of_item(item_id: str, metadata: dict[str, Any]) -> Task | None:
    """The task stored with an eval item (see `Task.item`), or None for an item without one."""
    raw = metadata.get(TASK_KEY)
    if not isinstance(raw, dict):
        return None
    return Task.model_validate({**raw, "id": item_id})
