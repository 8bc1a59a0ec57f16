"""The interactive target: a model works as an agent on a task, against the local tools.

An episode: the model gets the conversation so far and the tools (OpenAI function calling). Each
tool call it makes runs against the task's `Environment` and is answered with a `tool` message;
then the model goes on. A turn without a call ends the episode, unless it asks the user something
(its text has a `?`) and the task has a scripted user reply left: that reply is added and the model
goes on. The episode also ends after `max_turns` model turns. Everything said and done is recorded,
in order, as chat messages.

`AgentTarget` wraps this as a `TargetModel`, so the runner (limits, retries, resume) runs agents
like any model: its answer's `transcript` is the whole episode, stored as the response's messages.
A model that does not take tools (echo, local, replay) is asked without them: it can only answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from policylab.agents.tasks import Task, TaskSet
from policylab.agents.tools import Environment, parse_groups
from policylab.chat import ChatMessage, FunctionCall, ToolCall
from policylab.models.base import (
    Completion,
    FatalModelError,
    SamplingParams,
    TargetModel,
    can_call_tools,
)

__all__ = ["AgentTarget", "Episode", "assistant_message", "run_episode"]

Stop = Literal["answered", "max_turns"]


@dataclass
class Episode:
    """One task done by one agent: what it produced after the prompt, and how it ended."""

    task_id: str
    messages: list[ChatMessage]
    stop: Stop
    turns: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    side_effects: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> ChatMessage:
        """The last assistant message."""
        return next(m for m in reversed(self.messages) if m.role == "assistant")


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p]
        return "\n".join(parts)
    return str(content)


def assistant_message(raw: Mapping[str, Any], *, turn: int, taken: set[str]) -> ChatMessage:
    """An assistant message as a server sent it, reduced to the chat format's fields.

    Extra fields (`refusal`, `annotations`, reasoning) are dropped, a refusal without content
    becomes the content, arguments sent as an object become JSON text, and a missing or repeated
    call id gets a fresh one (`taken` holds the ids used so far), so each result finds its call.
    """
    content = _text(raw.get("content"))
    if not content and isinstance(raw.get("refusal"), str):
        content = raw["refusal"]
    calls: list[ToolCall] = []
    for i, tc in enumerate(raw.get("tool_calls") or [], start=1):
        if not isinstance(tc, Mapping):
            continue
        function = tc.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
        call_id = str(tc.get("id") or f"call_{turn}_{i}")
        if call_id in taken:
            call_id = f"{call_id}-{turn}-{i}"
        taken.add(call_id)
        calls.append(
            ToolCall(
                id=call_id,
                function=FunctionCall(name=str(function.get("name") or ""), arguments=arguments),
            )
        )
    if content is None and not calls:
        content = ""
    return ChatMessage(role="assistant", content=content, tool_calls=calls or None)


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return (total or 0) + value


async def run_episode(
    model: TargetModel,
    task: Task,
    *,
    groups: tuple[str, ...],
    max_turns: int,
    params: SamplingParams | None = None,
    conversation: list[ChatMessage] | None = None,
) -> Episode:
    """Run `model` on `task` until it answers or `max_turns` model turns have passed.

    `conversation` replaces the task's own (the stored item's, when run from an eval set). Errors
    of the model propagate: the runner retries the whole episode, in a fresh environment.
    """
    params = params or SamplingParams()
    history = list(conversation if conversation is not None else task.conversation)
    produced: list[ChatMessage] = []
    replies = list(task.user_replies)
    taken = {tc.id for m in history for tc in m.tool_calls or []}
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop: Stop = "max_turns"
    turns = 0
    with Environment(task.setup, parse_groups(groups)) as env:
        specs = env.specs()
        while turns < max_turns:
            turns += 1
            if can_call_tools(model):
                answer = await model.complete(history, params=params, item_id=task.id, tools=specs)
            else:
                answer = await model.complete(history, params=params, item_id=task.id)
            prompt_tokens = _add(prompt_tokens, answer.prompt_tokens)
            completion_tokens = _add(completion_tokens, answer.completion_tokens)
            message = assistant_message(answer.message, turn=turns, taken=taken)
            new = [message]
            for call in message.tool_calls or []:
                result = env.call(call.function.name, call.function.arguments)
                new.append(ChatMessage(role="tool", tool_call_id=call.id, content=result.content))
            if not message.tool_calls:
                # The simulated user answers only a question; a statement ends the episode.
                if not replies or "?" not in message.text:
                    history += new
                    produced += new
                    stop = "answered"
                    break
                new.append(ChatMessage(role="user", content=replies.pop(0)))
            history += new
            produced += new
        effects = env.side_effects()
    return Episode(
        task_id=task.id,
        messages=produced,
        stop=stop,
        turns=turns,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        side_effects=effects,
    )


class AgentTarget:
    """A target model that answers an item by running `model` as an agent on the item's task.

    Tasks are looked up by the item's external id. `tools` (tool groups) and `max_turns` override
    the tasks' own. Not cacheable: an episode is cheap to redo with the local tools, and a cached
    answer would hide a change in a task's setup.
    """

    cacheable = False

    def __init__(
        self,
        model: TargetModel,
        tasks: TaskSet,
        *,
        tools: tuple[str, ...] | None = None,
        max_turns: int | None = None,
    ) -> None:
        self.model = model
        self.tasks = tasks
        self.tools = parse_groups(tools) if tools is not None else None
        self.max_turns = max_turns
        self._by_id = tasks.by_id()
        overrides = [f"tools={'+'.join(self.tools)}"] if self.tools else []
        overrides += [f"max_turns={max_turns}"] if max_turns else []
        self.name = f"agent[{';'.join([model.name, *overrides])}]"

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion:
        task = self._by_id.get(item_id or "")
        if task is None:
            raise FatalModelError(
                "no_task",
                f"no agent task for item {item_id!r}: run the eval set made from the task file",
            )
        episode = await run_episode(
            self.model,
            task,
            groups=self.tasks.groups_for(task, self.tools),
            max_turns=self.tasks.turns_for(task, self.max_turns),
            params=params,
            conversation=messages,
        )
        final = episode.final
        return Completion(
            text=final.text,
            message=final.model_dump(mode="json", exclude_none=True),
            finish_reason="stop" if episode.stop == "answered" else "max_turns",
            prompt_tokens=episode.prompt_tokens,
            completion_tokens=episode.completion_tokens,
            raw={
                "turns": episode.turns,
                "stop": episode.stop,
                "side_effects": episode.side_effects,
            },
            transcript=[m.model_dump(mode="json", exclude_none=True) for m in episode.messages],
        )

    async def aclose(self) -> None:
        await self.model.aclose()
