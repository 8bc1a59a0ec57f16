"""Tool calls in a transcript, and a policy's action patterns matched against them.

A transcript is a conversation in the OpenAI chat format. Each tool call an assistant message makes
becomes a `Call`: the tool, its parsed arguments, the text of the `tool` message that answers it,
the agent's turn (1 for the first assistant message of the conversation) and the message's index.

An `ActionPattern` matches a call when the tool's name is equal, every argument path has a value
that its regular expression finds (`re.search`), and, when `result` is given, the tool's result
contains that expression too. A `sequence` matches calls in its order, others may come between;
the match is reported at its last call, where the rule breaks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from policylab.chat import ChatMessage
from policylab.errors import PolicylabError
from policylab.policy.schema import ActionPattern, CallPattern

__all__ = [
    "Call",
    "Match",
    "calls_in",
    "compile_regex",
    "describe_pattern",
    "find_matches",
    "pattern_regexes",
    "render_turns",
    "value_text",
    "values_at",
]

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+|\*)\]")


@dataclass(frozen=True)
class Call:
    """One tool call in a conversation, with the result the tool gave."""

    index: int
    """Position of the assistant message that makes the call (0-based, in the conversation)."""
    turn: int
    """The agent's turn: 1 for the conversation's first assistant message, 2 for the next, ..."""
    call_id: str
    tool: str
    arguments: dict[str, Any] | None
    """The parsed JSON arguments; None when they are not a JSON object."""
    raw_arguments: str
    result: str | None = None
    """The text of the `tool` message answering this call; None when nothing answered it."""
    result_index: int | None = None


@dataclass(frozen=True)
class Match:
    """Calls that match an action pattern, in order; the last is where the pattern completes."""

    pattern: ActionPattern
    calls: tuple[Call, ...]

    @property
    def last(self) -> Call:
        return self.calls[-1]


def calls_in(messages: Sequence[ChatMessage]) -> list[Call]:
    """Every tool call in `messages`, in order, each with the result that answers it."""
    results: dict[str, tuple[int, str]] = {}
    for i, m in enumerate(messages):
        if m.role == "tool" and m.tool_call_id and m.tool_call_id not in results:
            results[m.tool_call_id] = (i, m.text)
    out: list[Call] = []
    turn = 0
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        turn += 1
        for tc in m.tool_calls or []:
            raw = tc.function.arguments
            try:
                parsed = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                parsed = None
            answered = results.get(tc.id)
            out.append(
                Call(
                    index=i,
                    turn=turn,
                    call_id=tc.id,
                    tool=tc.function.name,
                    arguments=parsed if isinstance(parsed, dict) else None,
                    raw_arguments=raw,
                    result=answered[1] if answered else None,
                    result_index=answered[0] if answered else None,
                )
            )
    return out


def values_at(data: Any, path: str) -> list[Any]:
    """The values at a dotted path: `to`, `payee.iban`, `items[0].amount`, `items[*].amount`."""
    current = [data]
    for match in _PATH_TOKEN.finditer(path):
        key, index = match.group(1), match.group(2)
        found: list[Any] = []
        for value in current:
            if key is not None:
                if isinstance(value, dict) and key in value:
                    found.append(value[key])
            elif isinstance(value, list):
                if index == "*":
                    found.extend(value)
                elif int(index) < len(value):
                    found.append(value[int(index)])
        current = found
    return current


def value_text(value: Any) -> str:
    """A JSON value as the text a regular expression is matched against."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """`re.compile`, cached; a bad expression raises `PolicylabError` saying what is wrong."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PolicylabError(
            f"regular expression {pattern!r} does not compile: {exc}",
            hint="fix it in the policy (`policylab policy lint` finds these: code A002)",
        ) from exc


def pattern_regexes(pattern: ActionPattern) -> list[tuple[tuple[str | int, ...], str]]:
    """Every regular expression in a pattern, with its path inside the pattern (for messages)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if pattern.sequence is not None:
        for i, step in enumerate(pattern.sequence):
            out += [(("sequence", i, "arguments", k), v) for k, v in step.arguments.items()]
            if step.result is not None:
                out.append((("sequence", i, "result"), step.result))
    else:
        out += [(("arguments", k), v) for k, v in pattern.arguments.items()]
        if pattern.result is not None:
            out.append((("result",), pattern.result))
    if pattern.confirmation is not None:
        out.append((("confirmation",), pattern.confirmation))
    return out


def call_matches(step: CallPattern, call: Call) -> bool:
    """Whether one call matches one step (tool, every argument, the result)."""
    if call.tool != step.tool:
        return False
    if step.arguments:
        if call.arguments is None:
            return False
        for path, regex in step.arguments.items():
            compiled = compile_regex(regex)
            if not any(compiled.search(value_text(v)) for v in values_at(call.arguments, path)):
                return False
    if step.result is not None:
        return (
            call.result is not None and compile_regex(step.result).search(call.result) is not None
        )
    return True


def find_matches(pattern: ActionPattern, calls: Sequence[Call]) -> list[Match]:
    """Each call that completes the pattern, with the earliest calls before it that start it."""
    steps = pattern.steps
    out: list[Match] = []
    for end, call in enumerate(calls):
        if not call_matches(steps[-1], call):
            continue
        chain: list[Call] = []
        position = 0
        for step in steps[:-1]:
            while position < end and not call_matches(step, calls[position]):
                position += 1
            if position >= end:
                break
            chain.append(calls[position])
            position += 1
        if len(chain) == len(steps) - 1:
            out.append(Match(pattern, (*chain, call)))
    return out


def _describe_step(step: CallPattern) -> str:
    args = ", ".join(f"{k} ~ /{v}/" for k, v in step.arguments.items())
    text = f"{step.tool}({args})"
    if step.result is not None:
        text += f" with result ~ /{step.result}/"
    return text


def describe_pattern(pattern: ActionPattern) -> str:
    """A one-line description: `send_payment(amount ~ /.../), only after explicit confirmation`."""
    calls = " then ".join(_describe_step(s) for s in pattern.steps)
    text = f"calling {calls}"
    if pattern.requires_confirmation:
        text += ", unless the user explicitly confirmed it first"
    if pattern.description:
        text = f"{pattern.description.strip()} ({text})"
    return text


def render_turns(messages: Sequence[ChatMessage], *, as_response: bool = False) -> str:
    """A conversation as text, one block per message: `role: text`, `→ tool(arguments)` for the
    agent's calls, `tool (name): result` for their results.

    `as_response` leaves out the first message's `assistant:` label, for text shown after one.
    """
    names = {tc.id: tc.function.name for m in messages for tc in m.tool_calls or []}
    blocks: list[str] = []
    for i, m in enumerate(messages):
        if m.role == "tool":
            tool = names.get(m.tool_call_id or "", "?")
            blocks.append(f"tool ({tool}): {m.text}")
            continue
        label = "" if as_response and i == 0 and m.role == "assistant" else f"{m.role}: "
        text = m.text or ("[image]" if m.content and not m.tool_calls else "")
        if text:
            blocks.append(f"{label}{text}")
        for tc in m.tool_calls or []:
            blocks.append(f"→ {tc.function.name}({tc.function.arguments})")
    return "\n\n".join(blocks)
