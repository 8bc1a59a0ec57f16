"""The Model Spec's example conversations: `<role>` turns and graded candidate replies.

A block is a conversation, optionally followed by a `<comparison>` of candidate assistant replies,
each annotated `<!-- GOOD -->`, `<!-- BAD: why -->` or `<!-- OK: why -->`. Tags nested inside a
turn (such as `<untrusted>` or `<settings>`) are part of its text. An assistant turn with a
`recipient` is a call to that tool; the `<tool name=...>` turn after it is the tool's answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from policylab.chat import ChatMessage, FunctionCall, Role, ToolCall

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "assistant": "assistant",
}
_TAG = re.compile(
    r"<(?P<close>/)?(?P<tag>system|developer|user|assistant|tool|comparison)\b(?P<attrs>[^>]*)>"
)
_ATTR = re.compile(r'([A-Za-z_][\w-]*)="([^"]*)"')
_COMMENT = re.compile(r"\A[ \t]*<!--(?P<text>.*?)-->", re.S)
_LABEL = re.compile(
    r"^\s*(?P<label>GOOD|BAD|OK)(?:\[#(?P<ref>[^\]\s]+)\])?(?![A-Za-z])\s*:?\s*(?P<why>.*)$", re.S
)


@dataclass
class Turn:
    role: str
    attrs: dict[str, str]
    content: str
    annotation: str | None
    comparison: int  # 0 outside `<comparison>`, else which one (1, 2, ...)
    line: int  # 1-based, relative to the block's first line


@dataclass
class Candidate:
    """A reply from a `<comparison>`: `label` is GOOD, BAD or OK as the spec writes it, `ref` the
    anchor of the section it is judged against (`BAD[#chain_of_command]`)."""

    label: str
    ref: str | None
    why: str
    text: str
    recipient: str | None
    line: int


@dataclass
class Conversation:
    messages: list[ChatMessage]
    candidates: list[Candidate]
    problems: list[tuple[int, str]]  # (line relative to the block, message)


def parse_turns(body: str) -> tuple[list[Turn], list[tuple[int, str]]]:
    """The turns of one block in order, and problems (unclosed tags, stray text) by line."""
    turns: list[Turn] = []
    problems: list[tuple[int, str]] = []
    pos = 0
    comparison = 0
    comparisons = 0

    def line_of(offset: int) -> int:
        return body.count("\n", 0, offset) + 1

    while True:
        m = _TAG.search(body, pos)
        stray = body[pos : m.start() if m else len(body)].strip()
        if stray and stray != "[...]":  # `[...]` is the spec's mark for elided turns
            problems.append((line_of(pos), f"text outside any turn: {stray[:60]!r}"))
        if not m:
            break
        tag = m.group("tag")
        if tag == "comparison":
            if m.group("close"):
                comparison = 0
            else:
                comparisons += 1
                comparison = comparisons
            pos = m.end()
            continue
        if m.group("close"):
            problems.append((line_of(m.start()), f"closing </{tag}> without an opening tag"))
            pos = m.end()
            continue
        close = _matching_close(body, tag, m.end())
        if close is None:
            problems.append((line_of(m.start()), f"<{tag}> is never closed"))
            break
        content = body[m.end() : close[0]]
        annotation = None
        c = _COMMENT.match(content)
        if c:
            annotation = " ".join(c.group("text").split())
            content = content[c.end() :]
        attrs = dict(_ATTR.findall(m.group("attrs")))
        turns.append(Turn(tag, attrs, content.strip(), annotation, comparison, line_of(m.start())))
        pos = close[1]
    return turns, problems


def _matching_close(body: str, tag: str, start: int) -> tuple[int, int] | None:
    """Where `</tag>` closes the turn opened just before `start`, allowing nested `<tag>`s."""
    pattern = re.compile(rf"<(/)?{tag}\b[^>]*>")
    depth = 1
    for m in pattern.finditer(body, start):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return m.start(), m.end()
    return None


def to_conversation(turns: list[Turn]) -> Conversation:
    """Chat messages for the conversation, and the graded replies of its last `<comparison>`.

    A comparison in the middle of a conversation grades an earlier turn; its GOOD reply (or its OK
    one) is what the conversation continues from, so it becomes an assistant message.
    """
    builder = _Builder()
    last = max((t.comparison for t in turns), default=0)
    i = 0
    while i < len(turns):
        turn = turns[i]
        if not turn.comparison:
            builder.add(turn)
            i += 1
            continue
        group = [t for t in turns[i:] if t.comparison == turn.comparison]
        i += len(group)
        graded = [c for t in group if (c := builder.candidate(t)) is not None]
        if turn.comparison == last:
            builder.candidates = graded
            continue
        chosen = next((c for c in graded if c.label == "GOOD"), None)
        chosen = chosen or next((c for c in graded if c.label == "OK"), None)
        if chosen is None:
            builder.problem(turn.line, "a <comparison> mid-conversation has no GOOD reply to go on")
            continue
        recipient = {"recipient": chosen.recipient} if chosen.recipient else {}
        builder.add(Turn("assistant", recipient, chosen.text, None, 0, chosen.line))
    return Conversation(builder.messages, builder.candidates, builder.problems)


class _Builder:
    def __init__(self) -> None:
        self.messages: list[ChatMessage] = []
        self.candidates: list[Candidate] = []
        self.problems: list[tuple[int, str]] = []
        self.calls: list[ToolCall] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def candidate(self, turn: Turn) -> Candidate | None:
        if turn.role != "assistant":
            self.problem(turn.line, f"a <{turn.role}> turn inside <comparison>: left out")
            return None
        m = _LABEL.match(turn.annotation or "")
        if not m:
            self.problem(turn.line, "a candidate reply without a GOOD/BAD/OK annotation")
            return None
        return Candidate(
            m.group("label"),
            m.group("ref"),
            m.group("why").strip(),
            turn.content,
            turn.attrs.get("recipient"),
            turn.line,
        )

    def add(self, turn: Turn) -> None:
        if not turn.content:
            self.problem(turn.line, f"an empty <{turn.role}> turn: left out")
            return
        recipient = turn.attrs.get("recipient")
        if turn.role == "assistant" and recipient:
            call = ToolCall(
                id=f"call_{len(self.calls) + 1}",
                function=FunctionCall(
                    name=recipient, arguments=json.dumps({"input": turn.content})
                ),
            )
            self.calls.append(call)
            self.messages.append(ChatMessage(role="assistant", tool_calls=[call]))
        elif turn.role == "tool":
            name = turn.attrs.get("name")
            answered = next((c for c in reversed(self.calls) if c.function.name == name), None)
            answered = answered or (self.calls[-1] if self.calls else None)
            if answered is None:
                self.problem(turn.line, "a <tool> turn with no assistant call before it: left out")
                return
            self.messages.append(
                ChatMessage(role="tool", content=turn.content, name=name, tool_call_id=answered.id)
            )
        else:
            self.messages.append(ChatMessage(role=_ROLES[turn.role], content=turn.content))
